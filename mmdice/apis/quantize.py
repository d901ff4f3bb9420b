"""Post-training static int8 quantization of mmdice models for CPU inference.

The model's deploy form is exported to ONNX (:func:`export_onnx`, the DiCE ops
as standard operators), read by OpenVINO, and quantized by NNCF's post-training
quantization (per-channel symmetric int8 weights, per-tensor int8 activations
with ranges from calibration images: min-max statistics, fast bias correction).
The calibration images come from a folder and go through the config's test
pipeline (without annotation loading) and the model's data preprocessor, i.e.
exactly what the model sees at test time. The result is an OpenVINO IR
(``.xml`` + ``.bin``), written atomically.

OpenVINO with NNCF was chosen by measurement over onnxruntime's
``quantize_static`` (QDQ): see benchmarks/RESULTS.md, "int8".
"""
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from mmdice.utils.tool_inputs import InputFileError, OutputFileError, check_output_file

__all__ = [
    'IMAGE_EXTENSIONS', 'QuantizationError', 'list_calibration_images', 'test_pipeline_of',
    'calibration_inputs', 'quantize_onnx', 'compile_int8', 'first_conv_and_last_matmul',
    'high_precision_scope', 'run_openvino'
]

#: File endings read as calibration images.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

#: Annotation loaders dropped from the test pipeline (calibration images have no labels).
_ANNOTATION_TRANSFORMS = ('LoadAnnotations', )


class QuantizationError(ValueError):
    """The runtime could not quantize the model; the message says what failed."""


def list_calibration_images(folder: str, num: Optional[int] = None) -> List[str]:
    """The image files directly in ``folder`` (sorted by name), at most ``num``;
    InputFileError if the folder is missing, not a folder, or has no image."""
    if not osp.exists(folder):
        raise InputFileError(f'calibration folder {folder} does not exist')
    if not osp.isdir(folder):
        raise InputFileError(f'calibration folder {folder} is not a folder')
    files = sorted(name for name in os.listdir(folder)
                   if name.lower().endswith(IMAGE_EXTENSIONS)
                   and osp.isfile(osp.join(folder, name)))
    if not files:
        raise InputFileError(f'calibration folder {folder} has no images '
                             f'(files ending in {", ".join(IMAGE_EXTENSIONS)})')
    if num is not None:
        if num < 1:
            raise InputFileError(f'--calib-num must be at least 1, got {num}')
        files = files[:num]
    return [osp.join(folder, name) for name in files]


def test_pipeline_of(cfg) -> list:
    """The config's test pipeline (``test_pipeline``, else the test or val
    dataloader's), without annotation loading."""
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        for loader in ('test_dataloader', 'val_dataloader'):
            dataset = (cfg.get(loader) or {}).get('dataset', {})
            while 'pipeline' not in dataset and 'dataset' in dataset:
                dataset = dataset['dataset']
            if 'pipeline' in dataset:
                pipeline = dataset['pipeline']
                break
    if pipeline is None:
        raise InputFileError('the config has no test pipeline (test_pipeline, or '
                             'test_dataloader.dataset.pipeline) to prepare calibration images')
    return [dict(step) for step in pipeline if step.get('type') not in _ANNOTATION_TRANSFORMS]


def calibration_inputs(cfg,
                       model: torch.nn.Module,
                       paths: Sequence[str],
                       size: Optional[Tuple[int, int]] = None,
                       progress: bool = True) -> List[torch.Tensor]:
    """Each image of ``paths`` through the test pipeline and ``model``'s data
    preprocessor: a list of (1, C, H, W) float tensors, resized (bilinear) to
    ``size`` (H, W) where they differ from it. InputFileError names an image
    that cannot be read."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    pipeline = Compose(test_pipeline_of(cfg))
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        print(f'preparing {len(paths)} calibration images')
        bar = ProgressBar(len(paths))
    inputs = []
    for path in paths:
        try:
            results = pipeline(dict(img_path=path, img_id=0))
        except Exception as error:  # noqa: BLE001 - any decoder error means unreadable
            lines = str(error).strip().splitlines()
            reason = f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__
            raise InputFileError(f'cannot read calibration image {path}: {reason}') from error
        if results is None:
            raise InputFileError(f'cannot read calibration image {path}: the pipeline dropped it')
        with torch.no_grad():
            data = model.data_preprocessor(pseudo_collate([results]), False)
        tensor = data['inputs'].float()
        if size is not None and tuple(tensor.shape[-2:]) != tuple(size):
            tensor = F.interpolate(tensor, size=tuple(size), mode='bilinear', align_corners=False)
        inputs.append(tensor.contiguous())
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    return inputs


def first_conv_and_last_matmul(ov_model) -> Dict[str, List[str]]:
    """Names of the OpenVINO model's first Convolution (the stem) and of its
    last MatMul (a classifier's fully connected layer), where present."""
    ops = list(ov_model.get_ordered_ops())
    convs = [op.get_friendly_name() for op in ops if op.get_type_name() == 'Convolution']
    matmuls = [op.get_friendly_name() for op in ops if op.get_type_name() == 'MatMul']
    return {'first_conv': convs[:1], 'classifier': matmuls[-1:]}


def high_precision_scope(ov_model, keep: Sequence[str]) -> List[str]:
    """OpenVINO op names to leave in floating point for the ``keep`` groups:
    'first_conv', 'classifier' (the last MatMul), 'dice' (the grouped convolutions
    of the DiCE ops: they stay float between quantize/dequantize) and 'gate' (every op of the DiCE
    units' gates: the squeeze-excitation style MatMuls/Convs on pooled features,
    i.e. ops whose input is a global average pool)."""
    names = []
    found = first_conv_and_last_matmul(ov_model)
    for group in keep:
        if group in found:
            names += found[group]
        elif group == 'dice':
            # the DiCE ops' translations: DimConv's depth-, height- and width-wise
            # convolutions and DimFuse's grouped fusion are the grouped convolutions
            names += [op.get_friendly_name() for op in ov_model.get_ordered_ops()
                      if op.get_type_name() == 'GroupConvolution']
        elif group == 'gate':
            for op in ov_model.get_ordered_ops():
                if op.get_type_name() not in ('MatMul', 'Convolution'):
                    continue
                source = op.input_value(0).get_node()
                # the gate's first layer reads a pooled (N, C, 1, 1) or (N, C) tensor
                shape = op.input_value(0).get_partial_shape()
                if shape.rank.is_static and all(
                        dim.is_static and dim.get_length() == 1 for dim in list(shape)[2:]) and \
                        len(list(shape)) in (2, 4) and source.get_type_name() in (
                            'ReduceMean', 'AvgPool', 'Reshape', 'Squeeze', 'Flatten', 'Relu',
                            'PRelu', 'Clamp', 'Swish', 'HSwish', 'Sigmoid'):
                    names.append(op.get_friendly_name())
            found_classifier = found['classifier']
            names = [name for name in names
                     if name not in found_classifier or 'classifier' in keep]
        else:
            raise ValueError(f'unknown layer group {group!r} to keep in floating point '
                             f'(first_conv, gate, classifier, dice)')
    return sorted(set(names))


def quantize_onnx(onnx_path: str,
                  inputs: Sequence[torch.Tensor],
                  output_file: str,
                  *,
                  keep_float: Sequence[str] = (),
                  preset: str = 'performance',
                  fast_bias_correction: bool = True,
                  ignored_types: Sequence[str] = (),
                  progress: bool = True) -> Dict[str, object]:
    """NNCF post-training int8 quantization of an ONNX model read by OpenVINO,
    calibrated on ``inputs``; saves the OpenVINO IR ``output_file`` (.xml) and
    its .bin (both moved in when complete, nothing left behind on failure).
    ``keep_float``: layer groups left in floating point (:func:`high_precision_scope`).
    ``preset``: 'performance' (symmetric activations) or 'mixed' (asymmetric
    activations). ``ignored_types``: OpenVINO op types whose inputs NNCF leaves
    unquantized (e.g. 'Add', 'GroupConvolution'). Returns the written paths and
    the names kept in float."""
    import nncf
    import openvino as ov

    check_output_file(output_file, 'OpenVINO IR')
    if not output_file.endswith('.xml'):
        raise OutputFileError(f'--output-file {output_file}: an OpenVINO IR must end in .xml')
    try:
        model = ov.convert_model(onnx_path)
    except Exception as error:  # noqa: BLE001
        raise QuantizationError(f'OpenVINO cannot read {onnx_path}: '
                                f'{str(error).strip().splitlines()[0]}') from error
    kept = high_precision_scope(model, keep_float)
    presets = {'performance': nncf.QuantizationPreset.PERFORMANCE,
               'mixed': nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise ValueError(f'preset must be one of {sorted(presets)}, got {preset!r}')
    data = [tensor.numpy() for tensor in inputs]
    try:
        quantized = nncf.quantize(
            model, nncf.Dataset(data), preset=presets[preset], subset_size=len(data),
            fast_bias_correction=fast_bias_correction,
            ignored_scope=nncf.IgnoredScope(names=kept, types=list(ignored_types),
                                            validate=False)
            if kept or ignored_types else None)
    except Exception as error:  # noqa: BLE001
        lines = str(error).strip().splitlines()
        raise QuantizationError(f'NNCF could not quantize {onnx_path}: {type(error).__name__}: '
                                f'{lines[0] if lines else ""}') from error
    folder = osp.dirname(osp.abspath(output_file))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.quantize-', dir=folder)
    base = osp.basename(output_file)
    try:
        ov.save_model(quantized, osp.join(staging, base), compress_to_fp16=False)
        bin_name = base[:-len('.xml')] + '.bin'
        os.replace(osp.join(staging, bin_name), osp.join(folder, bin_name))
        os.replace(osp.join(staging, base), osp.join(folder, base))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dict(written=[osp.join(folder, base), osp.join(folder, bin_name)], kept_float=kept)


def compile_int8(model_path: str,
                     threads: int = 0,
                     precision: str = 'f32',
                     batch: Optional[int] = None,
                     shape: Optional[Sequence[int]] = None):
    """An OpenVINO CPU compiled model of an IR or ONNX file; ``precision`` the
    inference precision of the layers that are not int8 ('f32' or 'bf16':
    OpenVINO defaults to bf16 on CPUs with AMX, so it is always set); ``batch``
    makes the batch axis static, ``shape`` the whole input shape; ``threads`` 0:
    OpenVINO's default."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(model_path)
    if shape is not None:
        model.reshape({model.input(0): list(shape)})
    elif batch is not None:  # a static batch axis; other dynamic axes stay dynamic
        partial = list(model.input(0).get_partial_shape())
        model.reshape({model.input(0): ov.PartialShape([ov.Dimension(batch)] + partial[1:])})
    config = {'INFERENCE_PRECISION_HINT': precision, 'PERFORMANCE_HINT': 'LATENCY',
              'NUM_STREAMS': '1'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = str(threads)
    return core.compile_model(model, 'CPU', config)


def run_openvino(compiled, x: np.ndarray) -> List[np.ndarray]:
    """All outputs of ``compiled`` on ``x``, in order."""
    result = compiled(x)
    return [result[output] for output in compiled.outputs]

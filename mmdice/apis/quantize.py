"""Post-training static int8 quantization of mmdice models for CPU inference.

The model's deploy form is exported to ONNX (:func:`export_onnx`, the DiCE ops
as standard operators), read by OpenVINO, and quantized by NNCF's post-training
quantization (per-channel symmetric int8 weights, per-tensor asymmetric int8
activations (preset mixed) with ranges from calibration images: global min-max,
fast bias correction), or fine-tuned with quantization in the loop
(:mod:`mmdice.apis.int8_qat`).
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

from .int8_rewrites import (channel_ranges, equalize_prelu_pairs, fold_constant_channels,
                            prelu_chains)

__all__ = [
    'IMAGE_EXTENSIONS', 'KEEP_FLOAT_GROUPS', 'QuantizationError', 'list_calibration_images',
    'test_pipeline_of', 'calibration_inputs', 'prepare_quantization', 'postprocessing_ops',
    'quantize_onnx', 'compile_int8', 'first_conv_and_last_matmul', 'high_precision_scope',
    'run_openvino', 'read_onnx', 'fuse_prelu', 'quantize_model', 'save_ir',
    'fp32_agreement_validation', 'add_quantization_args', 'rewrite_float_model',
    'RANGE_ESTIMATORS', 'PRESETS', 'BIAS_CORRECTIONS', 'EQUALIZATIONS', 'OVERFLOW_FIXES',
    'DEFAULT_IGNORED_TYPES', 'DEFAULT_KEEP_FLOAT', 'DEFAULT_PRESET', 'DEFAULT_OVERFLOW_FIX',
    'DEFAULT_EQUALIZE'
]

#: File endings read as calibration images.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

#: Layer groups that :func:`high_precision_scope` can leave in floating point.
KEEP_FLOAT_GROUPS = ('first_conv', 'gate', 'classifier', 'dice', 'postprocessing')

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


def prepare_quantization(cfg, checkpoint: Optional[str], images: Sequence[str],
                         onnx_path: Optional[str], shape: Optional[Tuple[int, int]] = None,
                         progress: bool = True, raw: bool = False, scores: bool = False):
    """The deploy-form module that the quantization exports (the end-to-end
    graph of :func:`~mmdice.apis.deploy_module`, or with ``raw`` the
    ``mode='tensor'`` forward; ``scores``: a classifier also outputs scores)
    of ``cfg`` (``checkpoint`` loaded), ``images`` prepared as its inputs
    (:func:`calibration_inputs`, all resized to ``shape`` (H, W), default the
    first image's size) and its ONNX export at ``onnx_path`` (None: no export);
    returns ``(module, inputs)``. QuantizationError if the model cannot be exported or
    cannot run at that size."""
    from .end2end import deploy_module, model_task, unsupported_detector_reason
    from .model import build_model_from_config
    from .onnx_export import export_onnx
    model = build_model_from_config(cfg, checkpoint, deploy=True)
    reason = unsupported_detector_reason(model) if model_task(model) == 'detector' else None
    if reason is not None:
        raise QuantizationError(reason)
    inputs = calibration_inputs(cfg, model, images, size=shape, progress=progress)
    size = tuple(inputs[0].shape[-2:])
    inputs = [x if tuple(x.shape[-2:]) == size else F.interpolate(
        x, size=size, mode='bilinear', align_corners=False) for x in inputs]
    try:
        module, names = deploy_module(model, inputs[0], raw=raw, scores=scores)
        with torch.no_grad():
            module(inputs[0])
    except (RuntimeError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise QuantizationError(f'the model cannot run at the calibration input shape '
                                f'{list(inputs[0].shape)} (set --shape): {reason}') from error
    if onnx_path is None:
        return module, inputs
    try:
        export_onnx(module, inputs[0], onnx_path, output_names=names)
    except Exception as error:  # noqa: BLE001 - the exporter raises many kinds
        reason = (str(error).strip().splitlines() or [''])[0]
        raise QuantizationError(f'cannot export the model of {cfg.filename} to ONNX for '
                                f'quantization: '
                                f'{type(error).__name__}: {reason}') from error
    return module, inputs


#: OpenVINO op types with weights: the network ends at the last of them, the
#: post-processing of an end-to-end graph follows.
WEIGHTED_TYPES = ('Convolution', 'GroupConvolution', 'MatMul', 'ConvolutionBackpropData',
                  'GroupConvolutionBackpropData')


def postprocessing_ops(ov_model) -> List[str]:
    """Names of the ops of ``ov_model`` after its network: those from which no
    weighted op (:data:`WEIGHTED_TYPES`) can be reached, except parameters,
    constants and results. In an end-to-end graph these are the
    post-processing (a detector's decoding, score threshold and NMS, a
    segmentor's resize and argmax, a classifier's softmax) and the output
    layers' bias additions; they stay in floating point."""
    ops = list(ov_model.get_ordered_ops())
    feeds_weighted = set()
    for op in reversed(ops):  # consumers come after producers in the ordered ops
        name = op.get_friendly_name()
        if op.get_type_name() in WEIGHTED_TYPES or any(
                target.get_node().get_friendly_name() in feeds_weighted
                for output in op.outputs() for target in output.get_target_inputs()):
            feeds_weighted.add(name)
    return [op.get_friendly_name() for op in ops
            if op.get_friendly_name() not in feeds_weighted
            and op.get_type_name() not in ('Parameter', 'Constant', 'Result')]


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
    of the DiCE ops: they stay float between quantize/dequantize), 'gate' (every op of the DiCE
    units' gates: the squeeze-excitation style MatMuls/Convs on pooled features,
    i.e. ops whose input is a global average pool) and 'postprocessing' (the
    ops after the network, :func:`postprocessing_ops`)."""
    names = []
    found = first_conv_and_last_matmul(ov_model)
    for group in keep:
        if group in found:
            names += found[group]
        elif group == 'postprocessing':
            names += postprocessing_ops(ov_model)
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
                             f'({", ".join(KEEP_FLOAT_GROUPS)})')
    return sorted(set(names))


#: NNCF activation range estimators selectable by name (``--range-estimator``).
RANGE_ESTIMATORS = ('minmax', 'mean_minmax', 'mean_quantile', 'histogram')
#: NNCF presets: symmetric ('performance') or asymmetric ('mixed') activations.
PRESETS = ('performance', 'mixed')
#: Bias corrections after quantization: NNCF's fast one, its full one, none.
BIAS_CORRECTIONS = ('fast', 'full', 'none')
#: NNCF's fix of the int8 saturation (overflow) of CPUs without VNNI (AVX2,
#: AVX-512 without VNNI): weights quantized to half the int8 range (7 bits) on the
#: first layer only (NNCF's default), on every convolution and MatMul, or nowhere.
OVERFLOW_FIXES = ('first_layer_only', 'enable', 'disable')
#: The default post-training settings (benchmarks/RESULTS.md, "int8 defaults"):
#: only the dense convolutions in int8, the first one float (the DiCE group
#: convolutions, gates, poolings, resizes, residual additions and concatenations
#: float), symmetric activations, 7-bit weights (a CPU without VNNI executes this
#: as NNCF simulates it), conv -> PReLU -> conv chains equalized by their
#: activation ranges.
DEFAULT_IGNORED_TYPES = ('GroupConvolution', 'Add', 'Multiply', 'Concat', 'AvgPool', 'ReduceMean',
                         'Interpolate', 'MatMul')
DEFAULT_KEEP_FLOAT = ('first_conv', )
DEFAULT_PRESET = 'performance'
DEFAULT_OVERFLOW_FIX = 'enable'
DEFAULT_EQUALIZE = 'activations'


def check_choice(name: str, value, choices: Sequence) -> None:
    """ValueError naming the setting ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f'{name} must be one of {list(choices)}, got {value!r}')


#: Validation images NNCF's accuracy control ranks the quantizers on (each ranking
#: step runs the model once per quantizer group on each of them).
ACCURACY_RANKING_IMAGES = 16
#: Cross-layer equalization through PReLU: none, by weight ranges, by activation ranges.
EQUALIZATIONS = ('none', 'weights', 'activations')


def add_quantization_args(parser, accuracy_control: bool = True) -> None:
    """The post-training options of the int8 tools: --keep-float, --ignore-types,
    --preset, --range-estimator, --bias-correction, --overflow-fix, --equalize,
    --fold-constant, --no-fuse-prelu and with ``accuracy_control``
    --accuracy-control (their keyword names in :func:`quantize_model`)."""
    parser.add_argument('--keep-float', nargs='*', default=list(DEFAULT_KEEP_FLOAT),
                        choices=[g for g in KEEP_FLOAT_GROUPS if g != 'postprocessing'],
                        help='layer groups left in floating point (default: '
                        f'{" ".join(DEFAULT_KEEP_FLOAT)}; the option alone: none)')
    parser.add_argument('--ignore-types', nargs='*', default=list(DEFAULT_IGNORED_TYPES),
                        help='OpenVINO op types whose inputs stay unquantized (default: '
                        f'{" ".join(DEFAULT_IGNORED_TYPES)}: only the dense convolutions '
                        'int8; the option alone: every op type)')
    parser.add_argument('--preset', default=DEFAULT_PRESET, choices=PRESETS,
                        help='performance: symmetric int8 activations; mixed: asymmetric '
                        f'(default: {DEFAULT_PRESET})')
    parser.add_argument('--range-estimator', default='minmax', choices=RANGE_ESTIMATORS,
                        help='activation ranges from the calibration statistics')
    parser.add_argument('--bias-correction', default='fast', choices=BIAS_CORRECTIONS,
                        help="NNCF's bias correction after quantization")
    parser.add_argument('--overflow-fix', default=DEFAULT_OVERFLOW_FIX, choices=OVERFLOW_FIXES,
                        help='weights in 7 bits against the int8 saturation of CPUs without '
                        "VNNI (AVX2, AVX-512 without VNNI): on the first layer only (NNCF's "
                        f'default), on every convolution and MatMul, or nowhere (default: '
                        f'{DEFAULT_OVERFLOW_FIX})')
    parser.add_argument('--equalize', default=DEFAULT_EQUALIZE, choices=EQUALIZATIONS,
                        help='cross-layer equalization through PReLU (exact in fp32) by weight '
                        f'or activation ranges (default: {DEFAULT_EQUALIZE})')
    parser.add_argument('--fold-constant', action='store_true',
                        help='zero the channels that are constant on the calibration images '
                        '(dead BatchNorm channels), their value folded into the next bias')
    parser.add_argument('--no-fuse-prelu', dest='fuse_prelu', action='store_false',
                        help="quantize the ONNX export's elementwise PReLU form as it is")
    if not accuracy_control:
        return
    parser.add_argument('--accuracy-control', type=float, metavar='MAX_DROP',
                        help='nncf.quantize_with_accuracy_control: return quantizers to float '
                        'until the class agreement (argmax of the first output; the seg '
                        'map end to end) with fp32 on the calibration images is at least '
                        '1 - MAX_DROP')


def read_onnx(onnx_path: str):
    """The OpenVINO model of an ONNX file; QuantizationError if OpenVINO cannot read it."""
    import openvino as ov
    try:
        return ov.convert_model(onnx_path)
    except Exception as error:  # noqa: BLE001
        raise QuantizationError(f'OpenVINO cannot read {onnx_path}: '
                                f'{str(error).strip().splitlines()[0]}') from error


def _constant_data(output) -> Optional[np.ndarray]:
    node = output.get_node()
    return node.get_data() if node.get_type_name() == 'Constant' else None


def _same_output(a, b) -> bool:
    return a.get_node() is b.get_node() and a.get_index() == b.get_index()


def _decomposed_prelu(add) -> Optional[Tuple[object, object]]:
    """(x, slope) if the ``Add`` node ``add`` computes ``Relu(x) + Min(x, 0) * slope``
    with a constant slope (how :func:`export_onnx` writes a PReLU with a slope above 1)."""
    relu, product = (add.input_value(i).get_node() for i in range(2))
    if relu.get_type_name() != 'Relu':
        relu, product = product, relu
    if relu.get_type_name() != 'Relu' or product.get_type_name() != 'Multiply':
        return None
    x = relu.input_value(0)
    minimum, slope = (product.input_value(i) for i in range(2))
    if minimum.get_node().get_type_name() != 'Minimum':
        minimum, slope = slope, minimum
    if minimum.get_node().get_type_name() != 'Minimum' or _constant_data(slope) is None:
        return None
    a, b = (minimum.get_node().input_value(i) for i in range(2))
    other = b if _same_output(a, x) else a if _same_output(b, x) else None
    if other is None or _constant_data(other) is None or np.any(_constant_data(other) != 0):
        return None
    return x, slope


def _max_form_prelu(maximum) -> Optional[Tuple[object, object]]:
    """(x, slope) if the ``Maximum`` node computes ``Max(x, x * slope)`` with a
    constant slope <= 1 (how :func:`export_onnx` writes such a PReLU)."""
    for i in range(2):
        x, product = maximum.input_value(i), maximum.input_value(1 - i)
        if product.get_node().get_type_name() != 'Multiply':
            continue
        a, b = (product.get_node().input_value(j) for j in range(2))
        slope = b if _same_output(a, x) else a if _same_output(b, x) else None
        if slope is not None and _constant_data(slope) is not None \
                and np.all(_constant_data(slope) <= 1):
            return x, slope
    return None


def fuse_prelu(ov_model) -> int:
    """Replace, in place, the elementwise forms in which the ONNX export writes
    PReLU (``Relu(x) + Min(x, 0) * a`` and ``Max(x, x * a)``) with OpenVINO
    ``PRelu`` nodes (exact; same names), so that NNCF sees one activation it can
    fuse with the preceding convolution instead of quantizing each elementwise
    input. Returns the number of PReLUs fused."""
    import openvino.opset13 as ops
    fused = 0
    for node in ov_model.get_ordered_ops():
        kind = node.get_type_name()
        match = (_decomposed_prelu(node) if kind == 'Add' else
                 _max_form_prelu(node) if kind == 'Maximum' else None)
        if match is None:
            continue
        prelu = ops.prelu(*match)
        prelu.set_friendly_name(node.get_friendly_name())
        node.output(0).replace(prelu.output(0))
        fused += 1
    ov_model.validate_nodes_and_infer_types()
    return fused


def fp32_agreement_validation(model, inputs: Sequence[torch.Tensor]):
    """``(items, validate)`` for ``nncf.quantize_with_accuracy_control``: items
    ``(input array, fp32 classes)`` of the OpenVINO model ``model`` (the classes:
    output 0 itself if it holds integers, an end-to-end seg map, else its argmax
    over axis 1), and ``validate(compiled, items) -> (mean agreement, per-item
    agreements)``, the fraction of positions whose class is the fp32 one."""
    def classes(output):
        return output if np.issubdtype(output.dtype, np.integer) else output.argmax(1)

    compiled = compile_int8(model, precision='f32')
    items = [(x.numpy(), classes(compiled(x.numpy())[compiled.outputs[0]])) for x in inputs]

    def validate(compiled_model, validation_items):
        values = [float((classes(compiled_model(x)[compiled_model.outputs[0]]) == labels).mean())
                  for x, labels in validation_items]
        return float(np.mean(values)), values

    return items, validate


def rewrite_float_model(model, arrays: Sequence[np.ndarray], *, prelu: bool = True,
                        fold_constant: bool = False, equalize: str = DEFAULT_EQUALIZE) -> None:
    """The fp32 rewrites :func:`quantize_model` applies before quantizing, in
    place: ``prelu``: :func:`fuse_prelu`; ``fold_constant``: zero the channels
    constant on ``arrays`` (calibration inputs, (1, C, H, W)); ``equalize``: one of
    :data:`EQUALIZATIONS`. The rewritten model is the fp32 reference of the int8
    model (the same outputs up to float rounding)."""
    check_choice('equalize', equalize, EQUALIZATIONS)
    if prelu:
        fuse_prelu(model)
    if fold_constant:
        fold_constant_channels(model, arrays)
    if equalize == 'weights':
        equalize_prelu_pairs(model)
    elif equalize == 'activations':
        names = [chain.prelu.get_friendly_name() for chain in prelu_chains(model)]
        ranges = channel_ranges(model, names, arrays)
        equalize_prelu_pairs(model, {name: ranges[name] for name in names})


def quantize_model(model,
                   inputs: Sequence[torch.Tensor],
                   *,
                   keep_float: Sequence[str] = DEFAULT_KEEP_FLOAT,
                   preset: str = DEFAULT_PRESET,
                   bias_correction: str = 'fast',
                   range_estimator: str = 'minmax',
                   ignored_types: Sequence[str] = DEFAULT_IGNORED_TYPES,
                   ignored_names: Sequence[str] = (),
                   prelu: bool = True,
                   fold_constant: bool = False,
                   equalize: str = DEFAULT_EQUALIZE,
                   channel_alignment: bool = False,
                   overflow_fix: str = DEFAULT_OVERFLOW_FIX,
                   accuracy_control: Optional[Tuple[Sequence[torch.Tensor], float]] = None,
                   source: str = 'the model'):
    """NNCF post-training int8 quantization of the OpenVINO model ``model``
    (changed in place by :func:`rewrite_float_model` first), calibrated on
    ``inputs`` ((1, C, H, W) tensors); returns ``(int8 model, names kept float)``.

    ``keep_float``: layer groups left in floating point (:func:`high_precision_scope`);
    ``ignored_types`` / ``ignored_names``: OpenVINO op types / names whose inputs stay
    unquantized (``ignored_types=()``: every op type int8); ``preset``: one of
    :data:`PRESETS`; ``bias_correction``: one of :data:`BIAS_CORRECTIONS`;
    ``range_estimator``: activation ranges, one of :data:`RANGE_ESTIMATORS`;
    ``prelu``, ``fold_constant``, ``equalize``: :func:`rewrite_float_model`'s
    (cross-layer equalization through PReLU by weight ranges or by the activation
    ranges on ``inputs``); ``channel_alignment``: NNCF's channel alignment
    (equalization of convolution pairs); ``overflow_fix``: one of
    :data:`OVERFLOW_FIXES`; ``accuracy_control``: ``(validation inputs, max drop)``:
    ``nncf.quantize_with_accuracy_control`` with the argmax agreement with the fp32
    model (:func:`fp32_agreement_validation`) as the metric, which returns
    quantizers to float until the agreement is at least ``1 - max drop``.
    """
    import nncf
    from nncf.quantization.advanced_parameters import (AdvancedAccuracyRestorerParameters,
                                                       AdvancedQuantizationParameters,
                                                       OverflowFix)
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    presets = {'performance': nncf.QuantizationPreset.PERFORMANCE,
               'mixed': nncf.QuantizationPreset.MIXED}
    check_choice('preset', preset, PRESETS)
    check_choice('bias_correction', bias_correction, BIAS_CORRECTIONS)
    check_choice('range_estimator', range_estimator, RANGE_ESTIMATORS)
    check_choice('overflow_fix', overflow_fix, OVERFLOW_FIXES)
    arrays = [tensor.numpy() for tensor in inputs]
    rewrite_float_model(model, arrays, prelu=prelu, fold_constant=fold_constant,
                        equalize=equalize)
    kept = sorted(set(high_precision_scope(model, keep_float)) | set(ignored_names))
    advanced = AdvancedQuantizationParameters(
        disable_bias_correction=bias_correction == 'none',
        disable_channel_alignment=not channel_alignment,
        overflow_fix=OverflowFix(overflow_fix),
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet,
                                                   range_estimator.upper()))
    data = arrays
    options = dict(preset=presets[preset], subset_size=len(data),
                   fast_bias_correction=bias_correction != 'full',
                   ignored_scope=nncf.IgnoredScope(names=kept, types=list(ignored_types),
                                                   validate=False)
                   if kept or ignored_types else None)
    try:
        if accuracy_control is None:
            quantized = nncf.quantize(model, nncf.Dataset(data), advanced_parameters=advanced,
                                      **options)
        else:
            validation_inputs, max_drop = accuracy_control
            items, validate = fp32_agreement_validation(model, validation_inputs)
            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(data), nncf.Dataset(items, lambda item: item[0]), validate,
                max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
                advanced_quantization_parameters=advanced,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    ranking_subset_size=min(len(items), ACCURACY_RANKING_IMAGES)), **options)
    except Exception as error:  # noqa: BLE001
        lines = str(error).strip().splitlines()
        raise QuantizationError(f'NNCF could not quantize {source}: {type(error).__name__}: '
                                f'{lines[0] if lines else ""}') from error
    return quantized, kept


def save_ir(ov_model, output_file: str) -> List[str]:
    """Save ``ov_model`` as the OpenVINO IR ``output_file`` (.xml) and its .bin,
    both written in a temporary folder beside it and moved in when complete;
    returns the two paths."""
    import openvino as ov
    folder = osp.dirname(osp.abspath(output_file))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.quantize-', dir=folder)
    base = osp.basename(output_file)
    bin_name = base[:-len('.xml')] + '.bin'
    try:
        ov.save_model(ov_model, osp.join(staging, base), compress_to_fp16=False)
        os.replace(osp.join(staging, bin_name), osp.join(folder, bin_name))
        os.replace(osp.join(staging, base), osp.join(folder, base))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [osp.join(folder, base), osp.join(folder, bin_name)]


def quantize_onnx(onnx_path: str,
                  inputs: Sequence[torch.Tensor],
                  output_file: str,
                  *,
                  keep_float: Sequence[str] = DEFAULT_KEEP_FLOAT,
                  preset: str = DEFAULT_PRESET,
                  fast_bias_correction: bool = True,
                  ignored_types: Sequence[str] = DEFAULT_IGNORED_TYPES,
                  progress: bool = True,
                  **options) -> Dict[str, object]:
    """NNCF post-training int8 quantization of an ONNX model read by OpenVINO,
    calibrated on ``inputs``; saves the OpenVINO IR ``output_file`` (.xml) and
    its .bin (both moved in when complete, nothing left behind on failure).
    ``keep_float``, ``preset``, ``ignored_types`` and ``options``: see
    :func:`quantize_model` (``fast_bias_correction=False``: the full bias
    correction, unless ``options`` name ``bias_correction``). Returns the
    written paths and the names kept in float."""
    check_output_file(output_file, 'OpenVINO IR')
    if not output_file.endswith('.xml'):
        raise OutputFileError(f'--output-file {output_file}: an OpenVINO IR must end in .xml')
    options.setdefault('bias_correction', 'fast' if fast_bias_correction else 'full')
    quantized, kept = quantize_model(read_onnx(onnx_path), inputs, keep_float=keep_float,
                                     preset=preset, ignored_types=ignored_types,
                                     source=onnx_path, **options)
    return dict(written=save_ir(quantized, output_file), kept_float=kept)


def compile_int8(model_path: str,
                     threads: int = 0,
                     precision: str = 'f32',
                     batch: Optional[int] = None,
                     shape: Optional[Sequence[int]] = None):
    """An OpenVINO CPU compiled model of an IR or ONNX file (or an ``ov.Model``); ``precision`` the
    inference precision of the layers that are not int8 ('f32' or 'bf16':
    OpenVINO defaults to bf16 on CPUs with AMX, so it is always set); ``batch``
    makes the batch axis static, ``shape`` the whole input shape; ``threads`` 0:
    OpenVINO's default."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(model_path) if isinstance(model_path, str) else model_path.clone()
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

"""Post-training static int8 quantization of an mmdice model for CPU inference.

The model (classifier, segmentor or SSD detector) is built in its deploy form
(``mmdice.models.switch_to_deploy``) and exported to ONNX as
tools/deployment/pytorch2onnx.py does: by default the end-to-end graph
(``mmdice.apis.end2end``; detectors: ``dets`` (N, K, 5) and ``labels`` (N, K)
after NMS, segmentors: ``seg_map`` (N, H, W), classifiers: ``logits`` and with
``--with-scores`` ``scores``), with ``--raw`` the ``mode='tensor'`` forward.
OpenVINO reads it and NNCF quantizes the network: per-channel symmetric int8
weights, int8 activations (the export's PReLUs fused back first, global min-max
ranges), calibrated on the images of ``--calib-dir`` prepared by the config's
test pipeline and data preprocessor. By default only the dense convolutions are
int8 (``--ignore-types GroupConvolution Add Multiply Concat AvgPool ReduceMean
Interpolate MatMul``), the first one float (``--keep-float first_conv``), with
symmetric activations (``--preset performance``), 7-bit weights
(``--overflow-fix enable``; a CPU without VNNI executes these settings as NNCF
simulates them) and the conv -> PReLU -> conv chains equalized by their
activation ranges first (``--equalize activations``): the settings that measured
best on the converted VOC segmentors and the shapes SSD (benchmarks/RESULTS.md,
"int8 defaults"). ``--ignore-types`` and ``--keep-float`` without a value
quantize every op type and layer.
The end-to-end graph's post-processing (box decoding, score threshold, NMS;
resize and argmax; softmax) stays in floating point. The result is an
OpenVINO IR (``.xml`` and ``.bin``) that ``mmdice.apis.DeployedModel(...,
backend='openvino')`` and tools/deployment/test_deployed.py run like the f32
exports. Example::

    python tools/deployment/quantize.py \\
        configs/dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py seg.pth \\
        --calib-dir work_dirs/photos/calib --output-file dicenet-s1.0-voc-int8.xml

The IR runs in OpenVINO (``mmdice.apis.quantize.compile_int8``; set
INFERENCE_PRECISION_HINT: OpenVINO otherwise computes the float layers in bf16
on CPUs that have it). Its input has a dynamic batch axis and the height and
width of the calibration inputs (``--shape``, else the first image's size after
the test pipeline; other images are resized to it). ``--keep-float`` leaves
layer groups in floating point (first_conv, gate, classifier, dice). ``--qat``
fine-tunes instead with quantization in the loop (NNCF for PyTorch), distilled
from the fp32 model's raw outputs on the calibration images, no labels needed
(``mmdice.apis.int8_qat``; ``--qat-steps``, ``--qat-lr``, ``--qat-batch``;
minutes to hours on a CPU), and converts the result with OpenVINO's PyTorch
frontend, end to end (segmentors, classifiers) or with ``--raw``. Afterwards
the int8 model is compared with the fp32 PyTorch model on (up to 8 of) the
calibration images. Bad input (a missing or empty calibration folder, an
unreadable image, a model the runtime cannot quantize) is one ``error:`` line,
exit status 1, and no output file.
"""
import argparse
import os.path as osp
import shutil
import sys
import tempfile

import numpy as np
import torch

from mmdice.apis import TensorModeWrapper, compare_end2end, describe_end2end, flat_outputs
from mmdice.apis.deployed import config_task
from mmdice.apis.export_tools import add_form_args, read_config_and_checkpoint
from mmdice.apis.int8_qat import add_qat_args, quantize_aware_training
from mmdice.apis.quantize import (QuantizationError, add_quantization_args, compile_int8,
                                  list_calibration_images, prepare_quantization, quantize_onnx,
                                  run_openvino, save_ir)
from mmdice.utils.tool_inputs import TOOL_ERRORS, InputFileError, check_output_file, report_error

#: Calibration images the int8 model is compared with fp32 on afterwards.
CHECK_IMAGES = 8
#: An int8 detection pairs with an fp32 one of its class if their boxes and scores
#: differ by at most this fraction of the largest fp32 box coordinate.
DETECTION_MATCH_TOLERANCE = 0.05


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Post-training static int8 quantization (OpenVINO + NNCF) of an mmdice '
        'model in its deploy form, calibrated on the images of a folder.')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (random weights without)')
    parser.add_argument('--calib-dir', required=True,
                        help='folder of calibration images (.jpg, .png, ...; not recursive)')
    parser.add_argument('--calib-num', type=int, default=300,
                        help='use at most this many images, sorted by name (default: 300)')
    parser.add_argument('--output-file', required=True, help='output OpenVINO IR .xml (+ .bin)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the first calibration image '
                        'after the test pipeline)')
    add_form_args(parser)
    add_quantization_args(parser)
    add_qat_args(parser)
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the comparison with the fp32 model')
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def compare(module, compiled, inputs, raw):
    """The int8 model against fp32 PyTorch on ``inputs``, as one line. Raw
    exports: the largest output error relative to the fp32 magnitude and the
    agreement of the argmax over channels of the first output; end-to-end
    ones: the fraction of predictions that differ
    (:func:`~mmdice.apis.compare_end2end`) and the largest relative difference
    of the others."""
    if not raw:
        different, errors = [], []
        for x in inputs:
            fraction, error = compare_end2end(run_openvino(compiled, x.numpy()), module, x,
                                              DETECTION_MATCH_TOLERANCE)
            different.append(fraction)
            errors.append(error)
        return (f'{float(np.mean(different)):.2%} of the predictions differ, max relative '
                f'error of the others {max(errors):.3f}')
    errors, agree = [], []
    for x in inputs:
        with torch.no_grad():
            expected = [t.numpy() for t in flat_outputs(module(x))]
        actual = run_openvino(compiled, x.numpy())
        for got, want in zip(actual, expected):
            errors.append(float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)))
        agree.append(float((actual[0].argmax(1) == expected[0].argmax(1)).mean()))
    return (f'max relative error {max(errors):.3f}, argmax agreement '
            f'{float(np.mean(agree)):.4f}')


#: Post-training options that --qat does not take (given: not at their defaults).
PTQ_ONLY_OPTIONS = ('keep_float', 'ignore_types', 'bias_correction', 'equalize', 'fold_constant',
                    'fuse_prelu', 'accuracy_control')


def check_qat_options(args) -> None:
    """InputFileError naming the post-training options given with --qat, and
    the QAT settings out of range."""
    if not args.qat:
        return
    parser = build_parser()
    given = [name for name in PTQ_ONLY_OPTIONS if getattr(args, name) != parser.get_default(name)]
    if given:
        names = ', '.join('--' + ('no-fuse-prelu' if name == 'fuse_prelu' else
                                  name.replace('_', '-')) for name in given)
        raise InputFileError(f'--qat does not take the post-training options {names}')
    if args.qat_steps < 0 or args.qat_batch < 1 or args.qat_lr <= 0:
        raise InputFileError(f'--qat-steps must be >= 0, --qat-batch >= 1 and --qat-lr > 0, '
                             f'got {args.qat_steps}, {args.qat_batch}, {args.qat_lr}')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_qat_options(args)
        check_output_file(args.output_file, 'OpenVINO IR')
        if not args.output_file.endswith('.xml'):
            raise InputFileError(f'--output-file {args.output_file}: an OpenVINO IR ends in .xml')
        cfg = read_config_and_checkpoint(args.config, args.checkpoint)
        if args.accuracy_control is not None and not args.raw and config_task(
                cfg.model) == 'detector':
            raise InputFileError('--accuracy-control compares classes per position, which an '
                                 "end-to-end detector's dets do not have: add --raw")
        if args.qat and not args.raw and config_task(cfg.model) == 'detector':
            raise InputFileError("--qat converts with OpenVINO's PyTorch frontend, which has no "
                                 "translation of the end-to-end detector's NMS: add --raw")
        images = list_calibration_images(args.calib_dir, args.calib_num)
        keep_float = args.keep_float + ([] if args.raw else ['postprocessing'])
        staging = tempfile.mkdtemp(prefix='mmdice-quantize-')
        try:
            onnx_path = None if args.qat else osp.join(staging, 'model.onnx')
            module, inputs = prepare_quantization(
                cfg, args.checkpoint, images, onnx_path,
                shape=tuple(args.shape) if args.shape else None, raw=args.raw,
                scores=args.with_scores)
            if not args.raw:
                print(describe_end2end(module))
            print(f'quantizing with {len(inputs)} calibration images of {args.calib_dir} '
                  f'(input {list(inputs[0].shape)})')
            if args.qat:
                network = module if args.raw else TensorModeWrapper(module.model).eval()
                quantized = quantize_aware_training(
                    network, inputs, steps=args.qat_steps, learning_rate=args.qat_lr,
                    batch_size=args.qat_batch, preset=args.preset,
                    range_estimator=args.range_estimator, overflow_fix=args.overflow_fix,
                    raw=args.raw,
                    scores=args.with_scores, source=args.config)
                result = dict(written=save_ir(quantized, args.output_file), kept_float=[])
            else:
                result = quantize_onnx(
                    onnx_path, inputs, args.output_file, keep_float=keep_float,
                    preset=args.preset, ignored_types=args.ignore_types,
                    range_estimator=args.range_estimator, bias_correction=args.bias_correction,
                    equalize=args.equalize, fold_constant=args.fold_constant,
                    overflow_fix=args.overflow_fix,
                    prelu=args.fuse_prelu, accuracy_control=None if args.accuracy_control is None
                    else (inputs, args.accuracy_control))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (QuantizationError, *TOOL_ERRORS) as error:
        return report_error(error)
    if result['kept_float']:
        print(f'kept in floating point: {len(result["kept_float"])} ops (groups: '
              f'{", ".join(keep_float) or "none"})')
    print('saved ' + ' and '.join(result['written']))
    if args.check:
        compiled = compile_int8(args.output_file, precision='f32')
        print(f'int8 vs fp32 PyTorch on {min(len(inputs), CHECK_IMAGES)} calibration images: '
              f'{compare(module, compiled, inputs[:CHECK_IMAGES], args.raw)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

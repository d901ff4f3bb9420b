"""Export an mmdice model (classifier, segmentor, detector) to ONNX and check it.

The model's ``mode='tensor'`` forward (the head's raw outputs: logits of a
classifier, the decode head's logits of a segmentor, the heads' tensors of a
detector) is exported with torch's dynamo exporter; the mmdice ops become
standard ONNX operators (``mmdice.ops.onnx``). onnxruntime then runs the file
on random inputs, at the export's batch size and one more, and its outputs are
compared with PyTorch's. Example::

    python tools/deployment/pytorch2onnx.py configs/dicenet/dicenet-s2.4_8xb64_in1k.py \\
        epoch_150.pth --output-file dicenet-s2.4.onnx --shape 1 3 224 224 --deploy

The input ``input`` has a dynamic batch axis. Its height and width are dynamic
only for models without DimConv layers: DiCENet models (classifiers,
segmentors, SSD detectors) run only at the exported height and width, because
DimConv convolves each row and each column with its own kernel. Outputs:
``logits`` (classifiers), ``seg_logits`` (segmentors), ``cls_score_<i>`` and
``bbox_pred_<i>`` per feature level (detectors). The weights are inside the one
``.onnx`` file unless they exceed 2 GiB (then also ``<file>.data``, printed).
"""
import argparse
import sys

import torch
from torch import nn

from mmdice.apis import (FIXED_SPATIAL_REASON, TensorModeWrapper, build_model_from_config,
                         check_onnx, export_onnx, flat_outputs, has_fixed_spatial_size)
from mmdice.utils.tool_inputs import (InputFileError, check_output_file, load_config,
                                      read_checkpoint, report_error)

#: Largest relative error of the onnxruntime outputs accepted by the check.
TOLERANCE = 1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export an mmdice model to ONNX (one self-contained file under 2 GiB). '
        'The batch axis is dynamic; height and width are fixed at --shape for models with '
        'DimConv layers (every DiCENet classifier, segmentor and SSD detector: DimConv '
        'convolves each row and column with its own kernel) and dynamic otherwise.')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (random weights without)')
    parser.add_argument('--output-file', required=True, help='output .onnx path')
    parser.add_argument('--shape', type=int, nargs=4, default=[1, 3, 224, 224],
                        metavar=('N', 'C', 'H', 'W'),
                        help='example input shape: C the model\'s input channels; H and W '
                        'any size the model runs at (DiCENet-SSD300: 288 or more)')
    parser.add_argument('--deploy', action='store_true',
                        help='export the deploy form (mmdice.models.switch_to_deploy)')
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the onnxruntime comparison')
    return parser.parse_args(argv)


def output_names(model: nn.Module, outputs) -> list:
    """ONNX names of the flat tensor-mode ``outputs`` of ``model``."""
    tensors = flat_outputs(outputs)
    if hasattr(model, 'decode_head') and len(tensors) == 1:
        return ['seg_logits']
    if hasattr(model, 'bbox_head'):
        if isinstance(outputs, (tuple, list)) and len(outputs) == 2 and all(
                isinstance(group, (tuple, list)) for group in outputs):
            return ([f'cls_score_{level}' for level in range(len(outputs[0]))] +
                    [f'bbox_pred_{level}' for level in range(len(outputs[1]))])
        return [f'output_{index}' for index in range(len(tensors))]
    return ['logits'] if len(tensors) == 1 else [f'logits_{i}' for i in range(len(tensors))]


def shape_error(model: nn.Module, module: nn.Module, example: torch.Tensor):
    """Why the model cannot take ``example`` (a message naming --shape), or None."""
    shape = list(example.shape)
    first_conv = next((layer for layer in model.modules() if isinstance(layer, nn.Conv2d)), None)
    if first_conv is not None and shape[1] != first_conv.in_channels:
        return (f'--shape {shape}: the model takes {first_conv.in_channels} input channels, '
                f'got C={shape[1]}')
    try:
        with torch.no_grad():
            module(example)
    except (RuntimeError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f'--shape {shape}: the model cannot run at this shape: {reason}'
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if any(side < 1 for side in args.shape):
        return report_error(f'--shape must be four positive ints, got {args.shape}')
    try:
        check_output_file(args.output_file, 'ONNX file')
        cfg = load_config(args.config)
        if args.checkpoint is not None:
            read_checkpoint(args.checkpoint)
    except InputFileError as error:
        return report_error(error)
    model = build_model_from_config(cfg, args.checkpoint, deploy=args.deploy)
    module = TensorModeWrapper(model).eval()
    example = torch.randn(*args.shape)
    problem = shape_error(model, module, example)
    if problem is not None:
        return report_error(problem)
    if has_fixed_spatial_size(model):
        print(f'warning: the export runs only at H x W = {args.shape[2]} x {args.shape[3]} '
              f'(the batch axis is dynamic): {FIXED_SPATIAL_REASON}', file=sys.stderr)
    with torch.no_grad():
        names = output_names(model, module(example))
    written = export_onnx(module, example, args.output_file, output_names=names)
    print('saved ' + ' and '.join(written))
    if args.check:
        another_batch = torch.randn(args.shape[0] + 1, *args.shape[1:])
        for inputs in (example, another_batch):
            outputs, error = check_onnx(args.output_file, module, inputs)
            print(f'onnxruntime vs PyTorch at {list(inputs.shape)}: {outputs} outputs, '
                  f'max relative error {error:.2e}')
            if error > TOLERANCE:
                return report_error(f'the relative error exceeds {TOLERANCE}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

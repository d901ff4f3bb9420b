"""What the export tools share (``tools/deployment/pytorch2onnx.py``,
``pytorch2openvino.py`` and ``quantize.py``): their common arguments, reading
the config and checkpoint up front, the module to export and the check of an
export against PyTorch."""
import argparse
import sys
from typing import Optional

import torch
from torch import nn

from mmdice.utils.tool_inputs import load_config, read_checkpoint
from .deployed import Runtime
from .end2end import compare_end2end, deploy_module, describe_end2end
from .model import build_model_from_config
from .onnx_export import FIXED_SPATIAL_REASON, check_onnx, has_fixed_spatial_size
from .openvino_export import check_openvino

#: Largest relative error of the onnxruntime outputs accepted by the check.
TOLERANCE = 1e-3
#: Largest fraction of end-to-end predictions (detections, pixels, top-1
#: classes) that may differ from PyTorch's in the check: a score or an IoU at
#: a threshold may fall on either side of it in another runtime.
MAX_DIFFERENT = 0.01
#: How the check names each backend.
RUNTIME_NAMES = {'onnxruntime': 'onnxruntime', 'openvino': 'OpenVINO'}


def add_model_args(parser: argparse.ArgumentParser, output_help: str, shape_help: str) -> None:
    """config, checkpoint, --output-file and --shape (N C H W) of an export tool."""
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (random weights without)')
    parser.add_argument('--output-file', required=True, help=output_help)
    parser.add_argument('--shape', type=int, nargs=4, default=[1, 3, 224, 224],
                        metavar=('N', 'C', 'H', 'W'), help=shape_help)


def add_form_args(parser):
    """--end2end / --raw and --with-scores."""
    form = parser.add_mutually_exclusive_group()
    form.add_argument('--end2end', dest='raw', action='store_false',
                      help='export the end-to-end graph: dets/labels (detectors), seg_map '
                      '(segmentors), logits (classifiers) (the default)')
    form.add_argument('--raw', action='store_true',
                      help="export the mode='tensor' forward: the heads' raw outputs")
    parser.add_argument('--with-scores', action='store_true',
                        help='classifiers: also output scores (softmax; sigmoid for '
                        'multi-label heads) beside logits')
    parser.set_defaults(raw=False)


def read_config_and_checkpoint(config: str, checkpoint: Optional[str]):
    """The config, after checking that it and the checkpoint (if any) can be
    read; InputFileError (one line) if not."""
    cfg = load_config(config)
    if checkpoint is not None:
        read_checkpoint(checkpoint)
    return cfg


def load_model(args, deploy):
    """The model of the tool's config and checkpoint (its deploy form with
    ``deploy``), after the up-front checks; InputFileError or ValueError (one
    line) if they fail."""
    if any(side < 1 for side in args.shape):
        raise ValueError(f'--shape must be four positive ints, got {args.shape}')
    cfg = read_config_and_checkpoint(args.config, args.checkpoint)
    return build_model_from_config(cfg, args.checkpoint, deploy=deploy)




def prepare_export(args, model):
    """(module to export, output names, example) of ``model`` for the tool's
    arguments (ValueError, one line, for a model or --shape that cannot be
    exported); prints what the export bakes in and warns (stderr) of random
    weights and a fixed input size."""
    example = torch.randn(*args.shape)
    module, names = deploy_module(model, example, raw=args.raw, scores=args.with_scores)
    problem = shape_error(model, module, example)
    if problem is not None:
        raise ValueError(problem)
    if args.checkpoint is None:
        print(f'warning: no checkpoint given: exporting the randomly initialised weights of '
              f'{args.config}', file=sys.stderr)
    if has_fixed_spatial_size(model):
        print(f'warning: the export runs only at H x W = {args.shape[2]} x {args.shape[3]} '
              f'(the batch axis is dynamic): {FIXED_SPATIAL_REASON}', file=sys.stderr)
    print(f'raw export: outputs {", ".join(names)}' if args.raw else describe_end2end(module))
    return module, names, example


def check_export(path, module, example, raw, backend='onnxruntime', library=None,
                 precision=None, tolerance=TOLERANCE):
    """Run the export at the example's batch size and one more in ``backend``
    and compare with PyTorch, printing one line each; the first failure as a
    message, or None."""
    another_batch = torch.randn(example.shape[0] + 1, *example.shape[1:])
    runtime = None
    for inputs in (example, another_batch):
        if raw:
            if backend == 'onnxruntime':
                outputs, error = check_onnx(path, module, inputs)
            else:
                outputs, error = check_openvino(path, module, inputs, precision, library)
            name = RUNTIME_NAMES[backend] + ('' if precision is None else f' {precision}')
            print(f'{name} vs PyTorch at {list(inputs.shape)}: {outputs} outputs, max relative '
                  f'error {error:.2e}')
            if error > tolerance:
                return f'the relative error exceeds {tolerance}'
            continue
        runtime = runtime or Runtime(path, backend, library, precision=precision)
        different, error = compare_end2end(runtime(inputs.numpy()), module, inputs)
        name = RUNTIME_NAMES[backend] + ('' if precision is None else f' {precision}')
        print(f'{name} vs PyTorch at {list(inputs.shape)}: {different:.2%} of the '
              f'predictions differ, max relative error of the others {error:.2e}')
        if different > MAX_DIFFERENT or error > tolerance:
            return (f'{different:.2%} of the predictions differ (at most {MAX_DIFFERENT:.0%}) '
                    f'or the relative error {error:.2e} exceeds {tolerance}')
    return None


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

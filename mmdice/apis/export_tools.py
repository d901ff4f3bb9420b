"""What the deployment tools (tools/deployment/pytorch2onnx.py,
pytorch2openvino.py, quantize.py) share: the ``--end2end`` / ``--raw`` /
``--with-scores`` arguments, building the model they export, preparing the
module to export (:func:`~mmdice.apis.deploy_module`) and checking an export
against PyTorch in onnxruntime or OpenVINO."""
import sys
from typing import List, Optional, Tuple

import torch
from torch import nn

from mmdice.utils.tool_inputs import load_config, read_checkpoint

from .deployed import Runtime
from .end2end import compare_end2end, deploy_module, describe_end2end
from .model import build_model_from_config
from .onnx_export import FIXED_SPATIAL_REASON, check_onnx, has_fixed_spatial_size
from .openvino_export import check_openvino

#: Largest relative error of the onnxruntime outputs accepted by :func:`check_export`.
ONNX_TOLERANCE = 1e-3
#: Largest fraction of end-to-end predictions (detections, pixels, top-1
#: classes) that may differ from PyTorch's in :func:`check_export`: a score or
#: an IoU at a threshold may fall on either side of it in another runtime.
MAX_DIFFERENT = 0.01
#: How the checks name each backend.
RUNTIME_NAMES = {'onnxruntime': 'onnxruntime', 'openvino': 'OpenVINO'}


def add_form_args(parser) -> None:
    """Add --end2end (the default) / --raw and --with-scores to an argparse parser;
    the parsed ``raw`` and ``with_scores`` are :func:`deploy_module`'s arguments."""
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


def load_export_model(config: str, checkpoint: Optional[str], shape, deploy: bool) -> nn.Module:
    """The model of ``config`` with ``checkpoint`` (random weights when None; its
    deploy form with ``deploy``), after the up-front checks of ``shape``
    (``--shape`` N C H W), the config and the checkpoint; InputFileError or
    ValueError (one line) if they fail."""
    if any(side < 1 for side in shape):
        raise ValueError(f'--shape must be four positive ints, got {list(shape)}')
    cfg = load_config(config)
    if checkpoint is not None:
        read_checkpoint(checkpoint)
    return build_model_from_config(cfg, checkpoint, deploy=deploy)


def shape_error(model: nn.Module, module: nn.Module, example: torch.Tensor) -> Optional[str]:
    """Why ``module`` (exported from ``model``) cannot take ``example`` (a message
    naming --shape), or None."""
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


def prepare_export(model: nn.Module, example: torch.Tensor, raw: bool = False,
                   scores: bool = False, config: str = 'the config',
                   random_weights: bool = False) -> Tuple[nn.Module, List[str]]:
    """(module to export, output names) of ``model`` for the input ``example``
    (:func:`deploy_module`; ValueError, one line, for a model or an example
    shape that cannot be exported); prints what the export bakes in and warns
    (stderr) of ``random_weights`` of ``config`` and of a fixed input size."""
    module, names = deploy_module(model, example, raw=raw, scores=scores)
    problem = shape_error(model, module, example)
    if problem is not None:
        raise ValueError(problem)
    if random_weights:
        print(f'warning: no checkpoint given: exporting the randomly initialised weights of '
              f'{config}', file=sys.stderr)
    if has_fixed_spatial_size(model):
        print(f'warning: the export runs only at H x W = {example.shape[2]} x '
              f'{example.shape[3]} (the batch axis is dynamic): {FIXED_SPATIAL_REASON}',
              file=sys.stderr)
    print(f'raw export: outputs {", ".join(names)}' if raw else describe_end2end(module))
    return module, names


def check_export(path: str, module: nn.Module, example: torch.Tensor, raw: bool,
                 backend: str = 'onnxruntime', library: Optional[str] = None,
                 precision: Optional[str] = None,
                 tolerance: float = ONNX_TOLERANCE) -> Optional[str]:
    """Run the export ``path`` of ``module`` at the example's batch size and one
    more in ``backend`` and compare with PyTorch, printing one line each; the
    first failure as a message, or None. Raw exports: the largest output error
    relative to PyTorch's magnitude (at most ``tolerance``); end-to-end ones:
    :func:`~mmdice.apis.compare_end2end` (at most :data:`MAX_DIFFERENT` of
    the predictions differ, the others within ``tolerance``)."""
    another_batch = torch.randn(example.shape[0] + 1, *example.shape[1:])
    name = RUNTIME_NAMES[backend] + ('' if precision is None else f' {precision}')
    runtime = None
    for inputs in (example, another_batch):
        if raw:
            if backend == 'onnxruntime':
                outputs, error = check_onnx(path, module, inputs)
            else:
                outputs, error = check_openvino(path, module, inputs, precision, library)
            print(f'{name} vs PyTorch at {list(inputs.shape)}: {outputs} outputs, max relative '
                  f'error {error:.2e}')
            if error > tolerance:
                return f'the relative error exceeds {tolerance}'
            continue
        runtime = runtime or Runtime(path, backend, library, precision=precision)
        different, error = compare_end2end(runtime(inputs.numpy()), module, inputs)
        print(f'{name} vs PyTorch at {list(inputs.shape)}: {different:.2%} of the '
              f'predictions differ, max relative error of the others {error:.2e}')
        if different > MAX_DIFFERENT or error > tolerance:
            return (f'{different:.2%} of the predictions differ (at most {MAX_DIFFERENT:.0%}) '
                    f'or the relative error {error:.2e} exceeds {tolerance}')
    return None

"""Export an mmdice model (classifier, segmentor, detector) to ONNX and check it.

By default the end-to-end graph is exported (``mmdice.apis.end2end``): the
input is the data preprocessor's output (normalized, batched) and the
outputs are the predictions, with the post-processing of ``predict`` inside:

* detectors (single-stage, dense head: SSD, RetinaNet, FCOS, ...): ``dets``
  (N, K, 5: x1, y1, x2, y2, score in input pixels) and ``labels`` (N, K), K
  the config's ``test_cfg.max_per_img``, best first; priors, box decoding,
  ``score_thr``, ``nms_pre``, class-aware NMS (ONNX ``NonMaxSuppression``) and
  ``max_per_img`` of ``test_cfg`` are baked in and printed; rows after the
  last detection hold dets 0 and label -1;
* segmentors: ``seg_map`` (N, H, W) int64, the class of each input pixel;
* classifiers: ``logits`` (N, classes), and ``scores`` with ``--with-scores``.

``--raw`` exports the ``mode='tensor'`` forward instead: ``logits``
(classifiers), ``seg_logits`` (segmentors, at the decode head's resolution),
``cls_score_<i>`` and ``bbox_pred_<i>`` per feature level (detectors; FCOS and
ATSS also ``centerness_<i>``). Two-stage detectors (Mask R-CNN, Faster
R-CNN) are refused. The mmdice ops become standard ONNX operators
(``mmdice.ops.onnx``). onnxruntime then runs the file on random inputs, at the
export's batch size and one more, and its outputs are compared with
PyTorch's. Example::

    python tools/deployment/pytorch2onnx.py configs/ssd/dicenet-s0.5_ssd300_shapes.py \\
        epoch_5.pth --output-file ssd.onnx --shape 1 3 300 300 --deploy

The export runs in ``mmdice.apis.DeployedModel`` and
``tools/deployment/test_deployed.py``. The input ``input`` has a dynamic batch
axis. Its height and width are dynamic only for models without DimConv layers:
DiCENet models (classifiers, segmentors, SSD detectors) run only at the
exported height and width, because DimConv convolves each row and each column
with its own kernel. The weights are inside the one ``.onnx`` file unless they
exceed 2 GiB (then also ``<file>.data``, printed).
"""
import argparse
import sys

import torch
from torch import nn

from mmdice.apis import (FIXED_SPATIAL_REASON, BackendError, Runtime, build_model_from_config,
                         check_onnx, check_openvino, compare_end2end, deploy_module, describe_end2end,
                         export_onnx, has_fixed_spatial_size)
from mmdice.utils.tool_inputs import (InputFileError, check_output_file, load_config,
                                      read_checkpoint, report_error)

#: Largest relative error of the onnxruntime outputs accepted by the check.
TOLERANCE = 1e-3
#: Largest fraction of end-to-end predictions (detections, pixels, top-1
#: classes) that may differ from PyTorch's in the check: a score or an IoU at
#: a threshold may fall on either side of it in another runtime.
MAX_DIFFERENT = 0.01
#: How the check names each backend.
RUNTIME_NAMES = {'onnxruntime': 'onnxruntime', 'openvino': 'OpenVINO'}


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
    add_form_args(parser)
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the onnxruntime comparison')
    return parser.parse_args(argv)


def add_form_args(parser):
    """--end2end / --raw and --with-scores (shared with pytorch2openvino.py)."""
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


def load_model(args, deploy):
    """The model of the tool's config and checkpoint (its deploy form with
    ``deploy``), after the up-front checks; InputFileError or ValueError (one
    line) if they fail."""
    if any(side < 1 for side in args.shape):
        raise ValueError(f'--shape must be four positive ints, got {args.shape}')
    cfg = load_config(args.config)
    if args.checkpoint is not None:
        read_checkpoint(args.checkpoint)
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


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_output_file(args.output_file, 'ONNX file')
        module, names, example = prepare_export(args, load_model(args, args.deploy))
    except (InputFileError, ValueError) as error:
        return report_error(error)
    written = export_onnx(module, example, args.output_file, output_names=names)
    print('saved ' + ' and '.join(written))
    if args.check:
        try:
            problem = check_export(args.output_file, module, example, args.raw)
        except BackendError as error:
            return report_error(error)
        if problem is not None:
            return report_error(problem)
    return 0


if __name__ == '__main__':
    sys.exit(main())

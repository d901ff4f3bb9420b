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

from mmdice.apis import BackendError, export_onnx
from mmdice.apis.export_tools import (add_form_args, add_model_args, check_export, load_model,
                                      prepare_export)
from mmdice.utils.tool_inputs import InputFileError, check_output_file, report_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export an mmdice model to ONNX (one self-contained file under 2 GiB). '
        'The batch axis is dynamic; height and width are fixed at --shape for models with '
        'DimConv layers (every DiCENet classifier, segmentor and SSD detector: DimConv '
        'convolves each row and column with its own kernel) and dynamic otherwise.')
    add_model_args(parser, 'output .onnx path',
                   "example input shape: C the model's input channels; H and W any size the "
                   'model runs at (DiCENet-SSD300: 288 or more)')
    parser.add_argument('--deploy', action='store_true',
                        help='export the deploy form (mmdice.models.switch_to_deploy)')
    add_form_args(parser)
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the onnxruntime comparison')
    return parser.parse_args(argv)


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

"""Evaluate an exported model (onnxruntime or OpenVINO) with the config's test
dataloader and evaluator through mmengine's Runner, as tools/test.py does for
a checkpoint: COCO mAP for detectors, mIoU for segmentors, top-1 for
classifiers. The model file is the end-to-end export of
tools/deployment/pytorch2onnx.py or pytorch2openvino.py (the default form),
run by ``mmdice.apis.DeployedModel``. Example::

    python tools/deployment/pytorch2onnx.py configs/ssd/dicenet-s0.5_ssd300_shapes.py \\
        epoch_5.pth --output-file ssd.onnx --shape 1 3 300 300 --deploy
    python tools/deployment/test_deployed.py configs/ssd/dicenet-s0.5_ssd300_shapes.py \\
        ssd.onnx --backend onnxruntime --show-dir vis

``--show-dir`` draws the predictions with the codebase's visualizer. Bad input
(a model file of another task or form, a backend that is not installed, a
missing extension library, a missing dataset, an image of the test set that
cannot be read) is one ``error:`` line, exit 1.
"""
import argparse
import sys

from mmdice.apis import BACKENDS, BackendError, DeployedModel
from mmdice.engine.launch import (add_launch_args, apply_launch_args, build_runner,
                                  check_dataset_paths, enable_visualization, parse_launch_args)
from mmdice.utils import TOOL_ERRORS, load_config, report_error

#: How mmcv's LoadImageFromFile says that it could not decode an image file.
UNREADABLE_IMAGE = 'failed to load image:'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate an end-to-end export (.onnx, OpenVINO .xml) with the config\'s '
        'test dataloader and evaluator')
    parser.add_argument('config', help='the config the model was exported from')
    parser.add_argument('model_file', help='the exported model (.onnx, or .xml for openvino)')
    parser.add_argument('--backend', default='onnxruntime', choices=BACKENDS,
                        help='runtime that runs the model file')
    parser.add_argument('--library', help='the mmdice OpenVINO extension library (backend '
                        'openvino; default: built or found by mmdice.ops.openvino)')
    parser.add_argument('--threads', type=int, default=0,
                        help="the runtime's intra-op threads (0: its default)")
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics and logs')
    parser.add_argument('--show-dir', help='save visualized predictions into this directory')
    add_launch_args(parser, 'test_dataloader.batch_size=1')
    return parse_launch_args(parser, argv)


def build_config(args):
    """The config with the model replaced by a DeployedModel of the model file."""
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_launch_args(cfg, args)
    if args.launcher != 'none':
        raise ValueError('--launcher: a deployed model is evaluated in one process; use '
                         '--launcher none')
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    check_dataset_paths(cfg, ('test_dataloader', ))
    DeployedModel(args.model_file, cfg, args.backend, args.library)  # fails here, not in the Runner
    cfg.model = dict(type='mmdice.DeployedModel', path=args.model_file, config=args.config,
                     backend=args.backend, library=args.library, threads=args.threads,
                     data_preprocessor=cfg.model.get('data_preprocessor',
                                                     cfg.get('data_preprocessor')))
    cfg.load_from = None
    cfg.resume = False
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        runner = build_runner(cfg)
    except (BackendError, *TOOL_ERRORS) as error:
        return report_error(error)
    try:
        runner.test()
    except AssertionError as error:  # mmcv's LoadImageFromFile asserts that it decoded the file
        path = str(error).partition(UNREADABLE_IMAGE)[2]
        if not path:
            raise
        return report_error(f'cannot read image {path.strip()} of the test set: not an image '
                            'file (OpenCV cannot decode it)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

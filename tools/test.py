"""Test (evaluate) a checkpoint of any OpenMMLab 2.x codebase with mmengine's Runner.

Example::

    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/eval
    python tools/test.py CONFIG CHECKPOINT --out results.pkl --show-dir vis
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import sys

from mmengine.evaluator import DumpResults

import mmdice.models  # noqa: F401  registers the mmdice.* classes
from mmdice.engine.launch import (add_launch_args, apply_launch_args, build_checked_runner,
                                  check_dataset_paths, distributed_session, enable_visualization,
                                  parse_launch_args)
from mmdice.utils import (TOOL_ERRORS, allow_mmengine_checkpoint_globals, check_output_file,
                          load_config, read_checkpoint, report_error)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics and logs')
    parser.add_argument('--out', help='dump the predictions to this pickle file (.pkl)')
    parser.add_argument('--show-dir', help='save visualized predictions into this directory')
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='load a checkpoint that does not fit the model (tensors of other shapes, missing '
        'or unexpected keys), listing those keys in the log; without it that is an error')
    add_launch_args(parser, 'test_dataloader.batch_size=1')
    args = parse_launch_args(parser, argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        bad_out = ValueError(f'--out must be a .pkl or .pickle file, got {args.out}')
        sys.exit(report_error(bad_out))
    return args


def merge_args(cfg, args):
    """Apply the command-line arguments to the config (CLI > config > defaults)."""
    apply_launch_args(cfg, args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def dump_metric(cfg, out_file):
    """The metric that pickles the predictions (mmdet strips its masks first)."""
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out_file)
    return DumpResults(out_file_path=out_file)


def check_inputs(args):
    """Read the config and (a local) checkpoint up front and check that --out
    can be written; InputFileError if any is unusable."""
    cfg = load_config(args.config)
    if '://' not in args.checkpoint:  # URLs are mmengine's to fetch
        read_checkpoint(args.checkpoint)
    if args.out is not None:
        check_output_file(args.out, 'predictions file (--out)')
    return cfg


def main():
    args = parse_args()
    allow_mmengine_checkpoint_globals()
    try:
        cfg = merge_args(check_inputs(args), args)
        check_dataset_paths(cfg, ('test_dataloader', ))
    except TOOL_ERRORS as error:
        sys.exit(report_error(error))
    with distributed_session():
        try:
            runner = build_checked_runner(cfg, args, args.checkpoint)
        except TOOL_ERRORS as error:
            sys.exit(report_error(error))
        if args.out is not None:
            runner.test_evaluator.metrics.append(dump_metric(cfg, args.out))
        runner.test()


if __name__ == '__main__':
    main()

"""Train a model of any OpenMMLab 2.x codebase (mmpretrain, mmdet, mmseg) with mmengine's Runner.

Example::

    python tools/train.py configs/dicenet/dicenet-s1.0_8xb64_in1k.py --work-dir work_dirs/s1
    python tools/train.py CONFIG --resume            # continue from work_dir/last_checkpoint
    bash tools/dist_train.sh CONFIG 8 --amp          # 8 processes through torchrun
"""
import argparse
import os.path as osp
import sys

import mmdice.models  # noqa: F401  registers the mmdice.* classes
from mmdice.engine.launch import (add_launch_args, apply_launch_args, build_checked_runner,
                                  check_dataset_paths, check_load_from, display_path,
                                  distributed_session, parse_launch_args)
from mmdice.utils import (TOOL_ERRORS, allow_mmengine_checkpoint_globals, load_config,
                          read_checkpoint, report_error)

AMP_OPTIM_WRAPPERS = ('AmpOptimWrapper', 'mmdice.BF16OptimWrapper', 'BF16OptimWrapper')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work directory')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision training: float16 with loss scaling on a GPU, bfloat16 on a CPU')
    parser.add_argument(
        '--no-validate', action='store_true', help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size / '
        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='start from (load_from or --resume) a checkpoint that does not fit the model '
        '(tensors of other shapes, missing or unexpected keys), listing those keys in the log; '
        'without it that is an error')
    add_launch_args(parser, 'train_cfg.max_epochs=5 optim_wrapper.optimizer.lr=0.01')
    return parse_launch_args(parser, argv)


def enable_amp(cfg):
    """Mixed precision for --amp: mmengine's AmpOptimWrapper (float16 with dynamic
    loss scaling) with a GPU; mmdice.BF16OptimWrapper (bfloat16, no loss
    scaling) without one, as AmpOptimWrapper refuses to run on a CPU."""
    import torch

    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper in AMP_OPTIM_WRAPPERS:
        print('AMP is already enabled in the config.')
    elif optim_wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {optim_wrapper}')
    elif torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.type = 'mmdice.BF16OptimWrapper'


def merge_args(cfg, args):
    """Apply the command-line arguments to the config (CLI > config > defaults)."""
    apply_launch_args(cfg, args)

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.amp:
        enable_amp(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=...) '
                             'in the config')
        cfg.auto_scale_lr.enable = True

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def checkpoint_to_load(cfg):
    """The checkpoint the Runner will load: ``load_from``, or with ``resume``
    and no ``load_from`` the latest one of the work directory (None if none)."""
    from mmengine.runner import find_latest_checkpoint
    if cfg.get('load_from'):
        return cfg.load_from
    if cfg.get('resume') and osp.isdir(cfg.work_dir):
        return find_latest_checkpoint(cfg.work_dir)
    return None


def main():
    args = parse_args()
    allow_mmengine_checkpoint_globals()
    try:
        cfg = merge_args(load_config(args.config), args)
        if args.resume not in (None, 'auto') and '://' not in args.resume:
            read_checkpoint(args.resume)
        check_load_from(cfg, args.config, train_tool=display_path(__file__))
        check_dataset_paths(cfg, ('train_dataloader', 'val_dataloader'))
    except TOOL_ERRORS as error:
        sys.exit(report_error(error))
    with distributed_session():
        try:
            runner = build_checked_runner(cfg, args, checkpoint_to_load(cfg))
        except TOOL_ERRORS as error:
            sys.exit(report_error(error))
        runner.train()


if __name__ == '__main__':
    main()

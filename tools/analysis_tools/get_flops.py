"""Count the FLOPs and parameters of a model built from an mmpretrain, mmseg or mmdet config.

Prints the DiCENet paper's convention (multiply-adds of convolutions, DimConv
and linear layers) beside mmengine's total (the ``flops`` of
``get_model_complexity_info``, which also counts norms, pooling and
interpolation), and the parameter count, from one trace of the model in
``mode='tensor'``. The fused ``mmdice::dim_conv`` operator is counted through
a registered handle. ``--show-table`` adds mmengine's per-module table
(``get_model_complexity_info``).

Example::

    python tools/analysis_tools/get_flops.py \
        configs/dicenet/dicenet-s1.0_8xb64_in1k.py --shape 224 224
"""
import argparse
import importlib
import sys

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmdice.models  # noqa: F401  registers the mmdice.* classes
from mmdice.models.utils import count_complexity
from mmdice.utils import TOOL_ERRORS, load_config, report_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count the FLOPs and parameters of a model')
    parser.add_argument('config', help='config file of any OpenMMLab 2.x codebase')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input height and width (one value: square)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--show-table', action='store_true',
                        help="print mmengine's per-module complexity table")
    args = parser.parse_args(argv)
    if len(args.shape) == 1:
        args.shape = args.shape * 2
    if len(args.shape) != 2 or min(args.shape) < 1:
        parser.error(f'--shape must be one or two positive ints (H W), got {args.shape}')
    return args


class TensorForward(torch.nn.Module):
    """Runs an OpenMMLab ``BaseModel`` in ``mode='tensor'`` on a batch tensor."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, mode='tensor')


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` with the registry of the config's ``default_scope``."""
    scope = cfg.get('default_scope', None) or 'mmengine'
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    return registry.build(cfg.model)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        model = TensorForward(build_model(cfg)).eval()
    except TOOL_ERRORS as error:
        return report_error(error)
    height, width = args.shape
    inputs = (torch.randn(1, 3, height, width), )
    with torch.no_grad():
        counts = count_complexity(model, inputs)
    split_line = '=' * 60
    print(split_line)
    print(f'Config: {args.config}')
    print(f'Input shape: (3, {height}, {width})')
    print(f"Paper-convention FLOPs (conv + dim_conv + linear multiply-adds): "
          f"{counts['paper_flops'] / 1e6:.2f} M")
    print(f"mmengine FLOPs (total): {counts['flops'] / 1e6:.2f} M")
    print(f"Params: {counts['params'] / 1e6:.3f} M")
    by_operator = ', '.join(f'{name} {flops / 1e6:.2f} M'
                            for name, flops in counts['by_operator'].most_common())
    print(f'mmengine FLOPs by operator: {by_operator}')
    unsupported = ', '.join(sorted(counts['unsupported_ops'])) or 'none'
    print(f'Operators mmengine does not count: {unsupported}')
    print(split_line)
    if args.show_table:
        with torch.no_grad():
            print(get_model_complexity_info(model, inputs=inputs, show_arch=False)['out_table'])
    return 0


if __name__ == '__main__':
    sys.exit(main())

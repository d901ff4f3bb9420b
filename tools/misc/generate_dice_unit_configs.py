"""Write ``configs/dice_unit``: the ImageNet configs of DiCENet's Tables 1-3
(the DiCE unit in MobileNet, ResNet and ShuffleNetV2, and its ablations),
their metafile and the README table, from one table (:data:`ENTRIES`).

The paper gives FLOPs but no widths: each entry's width is chosen so that its
FLOPs (multiply-adds of convolutions, DimConv and linear layers, at 224x224
with a 1000-class classifier, as ``tools/analysis_tools/get_flops.py``
counts) come closest to the paper's. ``fit`` searches a width for an entry.

Examples::

    python tools/misc/generate_dice_unit_configs.py write   # configs, metafile, README table
    python tools/misc/generate_dice_unit_configs.py check   # exit 1 if a file is stale
    python tools/misc/generate_dice_unit_configs.py fit resnet_pw-dwise-se_137m
"""
import argparse
import os.path as osp
import sys
import textwrap
from dataclasses import dataclass
from typing import Dict, List, Tuple, Union

import torch
from torch import nn

from mmdice.apis import TensorModeWrapper, build_model_from_config
from mmdice.models import DiCEMobileNet, DiCENet, DiCEResNet
from mmdice.models.heads import DiCEClsHead
from mmdice.models.utils import count_complexity

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join('configs', 'dice_unit')
README = osp.join(CONFIG_DIR, 'README.md')
METAFILE = osp.join(CONFIG_DIR, 'metafile.yml')
TABLE_BEGIN = '<!-- flops-table-begin: written by tools/misc/generate_dice_unit_configs.py -->'
TABLE_END = '<!-- flops-table-end -->'
#: Largest allowed deviation of our FLOPs from the paper's (issue 18).
FLOPS_TOLERANCE = 0.05

SHORT = {'depthwise': 'dwise', 'dimconv': 'dimconv', 'dimfuse': 'dimfuse',
         'pointwise': 'pw', 'se': 'se', 'pointwise_se': 'pwse'}
LABEL = {'depthwise': 'DWise', 'dimconv': 'DimConv', 'dimfuse': 'DimFuse',
         'pointwise': 'Point-wise', 'se': 'SE', 'pointwise_se': 'Point-wise + SE'}
#: The model config each family's configs inherit (ShuffleNetV2 with DiCE units is DiCENet).
BASE_MODEL = {'mobilenet': 'dice_unit_mobilenet.py', 'resnet': 'dice_unit_resnet.py',
              'shufflenetv2': 'dicenet_s1.0.py'}
FAMILY_TITLE = {'mobilenet': 'MobileNet', 'resnet': 'ResNet', 'shufflenetv2': 'ShuffleNetV2'}


@dataclass(frozen=True)
class Entry:
    """One model of the paper's Tables 1-3.

    ``width``: ``widen_factor`` of ``DiCEMobileNet`` / ``DiCEResNet`` or a
    tuple, ``DiCEResNet``'s ``channels``; for ShuffleNetV2 an int is ch2 of
    ``DiCENet(channels=[24, 24, ch2, 2*ch2, 4*ch2, 1024])`` and a float a
    ``DiCENet.arch_settings`` scale.
    """
    family: str
    spatial: str
    fusion: str
    first_fusion: str
    width: Union[int, float, Tuple[int, ...]]
    paper_mflops: float
    paper_top1: float
    rows: Tuple[str, ...]

    @property
    def name(self) -> str:
        layers = [SHORT[self.spatial], SHORT[self.fusion]]
        if self.family != 'mobilenet':
            layers.insert(0, SHORT[self.first_fusion])
        return f'{self.family}_{"-".join(layers)}_{self.paper_mflops:g}m'

    @property
    def config(self) -> str:
        return osp.join(CONFIG_DIR, f'{self.name}_8xb64_in1k.py')

    @property
    def layers(self) -> str:
        """The paper's name of the block's layers, e.g. 'Point-wise + DWise + DimFuse'."""
        names = [LABEL[self.spatial], LABEL[self.fusion]]
        if self.family != 'mobilenet':
            names.insert(0, LABEL[self.first_fusion])
        return ' + '.join(names)


#: Table 1's MFLOPs budgets, and its layers: separable convolutions (SC) or DiCE units (DU).
TABLE1_BUDGETS = ('25-60', '120-170', '270-320')
TABLE1_FORMS = {'SC': ('depthwise', 'pointwise'), 'DU': ('dimconv', 'dimfuse')}
#: Table 1: (family, form) -> (width, paper MFLOPs, paper top-1) at each budget.
TABLE1 = {
    ('mobilenet', 'SC'): ((0.25, 41, 49.80), (0.53, 162, 65.30), (0.74, 317, 68.40)),
    ('mobilenet', 'DU'): ((0.27, 29, 52.55), (1.75, 167, 69.05), (2.75, 277, 70.83)),
    ('resnet', 'SC'): ((0.3, 59, 59.30), (0.535, 142, 67.80), (0.785, 302, 70.67)),
    ('resnet', 'DU'): ((0.3, 52, 61.35), ((16, 36, 72, 152, 288), 122, 67.90),
                       (0.95, 300, 71.80)),
    ('shufflenetv2', 'SC'): ((66, 41, 59.69), (142, 146, 68.14), (204, 292, 71.80)),
    ('shufflenetv2', 'DU'): ((0.75, 46, 62.80), (166, 122, 68.21), (2.4, 298, 72.90)),
}
#: Rows of Tables 2b and 3 that are the 120-170 MFLOPs models of Table 1 (ResNet, ShuffleNetV2).
TABLE1_ALSO_IN = {'SC': ('Table 2b DWise + Point-wise', ),
                  'DU': ('Table 2b DimConv + DimFuse', 'Table 3 R4')}


def _table1_entries() -> List[Entry]:
    """The entries of :data:`TABLE1`, family by family, SC before DU, by budget."""
    entries = []
    for (family, form), models in TABLE1.items():
        for budget, (width, mflops, top1) in zip(TABLE1_BUDGETS, models):
            rows = (f'Table 1 {form} {budget}', )
            if family != 'mobilenet' and budget == '120-170':
                rows += TABLE1_ALSO_IN[form]
            entries.append(Entry(family, *TABLE1_FORMS[form], 'pointwise', width, mflops, top1,
                                 rows))
    return entries


#: Table 2b (the spatial x fusion pairs at 120-150 MFLOPs, also in ResNet and ShuffleNetV2)
#: and Table 3 (DimFuse also in place of the block's first point-wise conv, 1x and wider):
#: their rows, (spatial, fusion, first_fusion, the paper's row names), and for each family
#: the (width, paper MFLOPs, paper top-1) of every row.
TABLE2B_ROWS = (
    ('depthwise', 'se', 'pointwise', ('Table 2b DWise + SE', )),
    ('depthwise', 'pointwise_se', 'pointwise', ('Table 2b DWise + Point-wise + SE', )),
    ('depthwise', 'dimfuse', 'pointwise', ('Table 2b DWise + DimFuse', 'Table 3 R1')),
    ('dimconv', 'pointwise', 'pointwise', ('Table 2a/2b DimConv + Point-wise', )),
    ('dimconv', 'se', 'pointwise', ('Table 2b DimConv + SE', )),
    ('dimconv', 'pointwise_se', 'pointwise', ('Table 2b DimConv + Point-wise + SE', )),
)
TABLE2B = {
    'resnet': ((0.68, 137, 63.90), (0.535, 142, 68.20), (0.65, 136, 65.90), (0.345, 132, 68.10),
               (0.6, 134, 64.80), (0.345, 132, 67.90)),
    'shufflenetv2': ((194, 140, 64.70), (142, 146, 68.60), (190, 139, 66.80), (94, 135, 68.45),
                     (182, 138, 65.40), (94, 135, 68.30)),
}
TABLE3_ROWS = (
    ('depthwise', 'dimfuse', 'dimfuse', ('Table 3 R2', )),
    ('depthwise', 'dimfuse', 'dimfuse', ('Table 3 R3', )),
    ('dimconv', 'dimfuse', 'dimfuse', ('Table 3 R5', )),
    ('dimconv', 'dimfuse', 'dimfuse', ('Table 3 R6', )),
)
TABLE3 = {
    'resnet': ((0.7, 78, 60.10), (1.15, 141, 66.20), ((16, 36, 72, 152, 288), 72, 62.10),
               ((32, 72, 144, 288, 576), 129, 68.20)),
    'shufflenetv2': ((206, 78, 61.80), (332, 140, 66.90), (166, 72, 63.70), (284, 132, 69.20)),
}


def _table_entries(rows, models) -> List[Entry]:
    """The entries of a table of ``rows`` (spatial, fusion, first_fusion, row names) and
    ``models`` ({family: one (width, MFLOPs, top-1) per row}), family by family."""
    return [Entry(family, spatial, fusion, first_fusion, width, mflops, top1, names)
            for family, family_models in models.items()
            for (spatial, fusion, first_fusion, names), (width, mflops, top1)
            in zip(rows, family_models)]


def _entries() -> List[Entry]:
    return (_table1_entries() + _table_entries(TABLE2B_ROWS, TABLE2B)
            + _table_entries(TABLE3_ROWS, TABLE3))


#: Every model of Tables 1-3, once (rows shared between tables are one entry).
ENTRIES: List[Entry] = _entries()
BY_NAME: Dict[str, Entry] = {entry.name: entry for entry in ENTRIES}


def backbone_cfg(entry: Entry, width: Union[int, float, None] = None) -> dict:
    """The ``model.backbone`` overrides of ``entry`` (at ``width`` if given)."""
    width = entry.width if width is None else width
    cfg = dict(spatial=entry.spatial, fusion=entry.fusion)
    if entry.family != 'mobilenet':
        cfg['first_fusion'] = entry.first_fusion
    if entry.family == 'shufflenetv2' and isinstance(width, int):
        cfg.update(widen_factor=None, channels=[24, 24, width, 2 * width, 4 * width, 1024])
    elif isinstance(width, tuple):
        cfg.update(widen_factor=None, channels=list(width))
    else:
        cfg['widen_factor'] = width
    return cfg


def build_backbone(entry: Entry, width: Union[int, float, None] = None) -> nn.Module:
    backbone_type = dict(mobilenet=DiCEMobileNet, resnet=DiCEResNet,
                         shufflenetv2=DiCENet)[entry.family]
    return backbone_type(**backbone_cfg(entry, width))


def head_cfg(entry: Entry, backbone) -> dict:
    last = backbone.out_channels[-1]
    if entry.family == 'shufflenetv2':
        return dict(in_channels=last, mid_channels=backbone.channels[5],
                    dropout_ratio=0.1 if entry.paper_mflops < 80 else 0.2)
    return dict(in_channels=last)


def config_text(entry: Entry) -> str:
    backbone = build_backbone(entry)
    crop = '0.2' if entry.paper_mflops < 80 else '0.08'
    summary = (f'{FAMILY_TITLE[entry.family]} with {entry.layers} units, '
               f'{entry.paper_mflops:g} MFLOPs in the paper ({"; ".join(entry.rows)}; top-1 '
               f'{entry.paper_top1:.2f}), E150-B512 recipe. Written by '
               'tools/misc/generate_dice_unit_configs.py: edit its ENTRIES, then `write`.')
    lines = textwrap.wrap(summary, 98, initial_indent='# ', subsequent_indent='# ')
    lines += [
        '_base_ = [',
        f"    '../_base_/models/{BASE_MODEL[entry.family]}',",
        f"    '../_base_/datasets/imagenet_bs64_dicenet_crop-{crop}.py',",
        "    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',",
        "    '../_base_/default_runtime.py',",
        ']',
        '',
        'model = dict(',
        '    backbone=dict(',
        *textwrap.wrap(_kwargs(backbone_cfg(entry)), 92, initial_indent='        ',
                       subsequent_indent='        ', break_long_words=False),
        '    ),',
        f'    head=dict({_kwargs(head_cfg(entry, backbone))}))',
        '',
    ]
    return '\n'.join(lines)


def _kwargs(cfg: dict) -> str:
    return ', '.join(f'{key}={value!r}' for key, value in cfg.items())


def measure(entry: Entry) -> Tuple[float, float]:
    """(MFLOPs, M parameters) of the entry's config, as get_flops.py counts them."""
    model = TensorModeWrapper(build_model_from_config(osp.join(REPO, entry.config))).eval()
    with torch.no_grad():
        counts = count_complexity(model, (torch.randn(1, 3, 224, 224), ))
    return counts['paper_flops'] / 1e6, counts['params'] / 1e6


def readme_table(measured: Dict[str, Tuple[float, float]]) -> str:
    lines = [TABLE_BEGIN,
             '| Paper row | Layers | Config | Width | Params (M) | FLOPs ours (M) '
             '| FLOPs paper (M) | Diff | Paper top-1 (%) |',
             '|:---|:---|:---|:---:|:---:|:---:|:---:|:---:|:---:|']
    for entry in ENTRIES:
        mflops, params = measured[entry.name]
        if isinstance(entry.width, tuple):
            width = 'channels ' + '/'.join(map(str, entry.width))
        elif isinstance(entry.width, int):
            width = f'ch2={entry.width}'
        else:
            width = f's={entry.width:g}' if entry.family == 'shufflenetv2' else f'{entry.width:g}x'

        diff = (mflops - entry.paper_mflops) / entry.paper_mflops
        lines.append(f'| {"<br>".join(entry.rows)} | {FAMILY_TITLE[entry.family]}: '
                     f'{entry.layers} | [{entry.name}](./{osp.basename(entry.config)}) | '
                     f'{width} | {params:.2f} | {mflops:.2f} | {entry.paper_mflops:g} | '
                     f'{diff:+.1%} | {entry.paper_top1:.2f} |')
    lines.append(TABLE_END)
    return '\n'.join(lines)


def metafile_text(measured: Dict[str, Tuple[float, float]]) -> str:
    lines = [
        '# Written by tools/misc/generate_dice_unit_configs.py; Top 1 Accuracy is the paper\'s.',
        'Collections:',
        '  - Name: DiCE unit',
        '    Metadata:',
        '      Training Data: ImageNet-1k',
        '      Training Techniques:',
        '        - SGD with Momentum',
        '        - Weight Decay',
        '      Architecture:',
        '        - DiCE unit',
        '        - Dimension-wise Convolution',
        '        - Dimension-wise Fusion',
        '        - Depthwise Separable Convolution',
        '    Paper:',
        '      URL: https://arxiv.org/abs/1906.03516',
        '      Title: "DiCENet: Dimension-wise Convolutions for Efficient Networks"',
        '    README: configs/dice_unit/README.md',
        '',
        'Models:',
    ]
    for entry in ENTRIES:
        mflops, params = measured[entry.name]
        lines += [
            f'  - Name: {entry.name}_8xb64_in1k',
            '    Metadata:',
            f'      FLOPs: {round(mflops * 1e6)}',
            f'      Parameters: {round(params * 1e6)}',
            '      Epochs: 150',
            '      Batch Size: 512',
            '    In Collection: DiCE unit',
            '    Results:',
            '      - Dataset: ImageNet-1k',
            '        Metrics:',
            f'          Top 1 Accuracy: {entry.paper_top1:.2f}',
            '        Task: Image Classification',
            f'    Config: {entry.config}',
        ]
    return '\n'.join(lines) + '\n'


def config_files() -> Dict[str, str]:
    """{config path relative to the repository: content}."""
    return {entry.config: config_text(entry) for entry in ENTRIES}


def table_files() -> Dict[str, str]:
    """{path: content} of the metafile and the README, from the configs on disk."""
    measured = {entry.name: measure(entry) for entry in ENTRIES}
    with open(osp.join(REPO, README), encoding='utf-8') as f:
        readme = f.read()
    head, rest = readme.split(TABLE_BEGIN)
    tail = rest.split(TABLE_END)[1]
    return {METAFILE: metafile_text(measured), README: head + readme_table(measured) + tail}


def sync(files: Dict[str, str], write: bool) -> List[str]:
    """The paths of ``files`` whose content on disk differs; written if ``write``."""
    stale = []
    for path, text in files.items():
        full = osp.join(REPO, path)
        current = open(full, encoding='utf-8').read() if osp.exists(full) else None
        if current != text:
            stale.append(path)
            if write:
                with open(full, 'w', encoding='utf-8') as f:
                    f.write(text)
    return stale


class _Classifier(nn.Module):
    """Backbone, global average pooling of its last level and a classifier
    head (``DiCEClsHead`` or ``nn.Linear``): what the configs build, for ``fit``."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        pooled = self.backbone(x)[-1].mean((2, 3))
        return self.head((pooled, )) if isinstance(self.head, DiCEClsHead) else self.head(pooled)


def classifier_mflops(entry: Entry, width: Union[int, float, Tuple[int, ...]]) -> float:
    """The paper's MFLOPs of ``entry``'s classifier at ``width`` (what its config
    would build: backbone, global average pooling, 1000-class head)."""
    backbone = build_backbone(entry, width)
    last = backbone.out_channels[-1]
    head = (DiCEClsHead(1000, last, backbone.channels[5]) if entry.family == 'shufflenetv2'
            else nn.Linear(last, 1000))
    with torch.no_grad():
        counts = count_complexity(_Classifier(backbone, head).eval(),
                                  (torch.randn(1, 3, 224, 224), ))
    return counts['paper_flops'] / 1e6


def width_grid(entry: Entry) -> List[Union[int, float]]:
    """Candidate widths of ``entry``'s family, narrowest first: ch2 (even) for
    ShuffleNetV2, widen_factor in steps of 1/100 for MobileNet and ResNet."""
    if entry.family == 'shufflenetv2':
        return list(range(8, 513, 2))
    return [step / 100 for step in range(10, 401)]


def search_width(entry: Entry, budget: float,
                 report=print) -> Tuple[Union[int, float], float]:
    """(width, MFLOPs) of ``entry``'s layers closest to ``budget`` MFLOPs.

    Widens exponentially and bisects on :func:`width_grid` (FLOPs grow with
    the width, though not monotonically: DimFuse's gcd groups), then scans 4
    neighbours each side.
    Raises ValueError when the budget is below the narrowest or above the
    widest width's FLOPs, or when no width comes within 5 %.
    """
    grid = width_grid(entry)
    cache = {}

    def mflops_at(index):
        if index not in cache:
            cache[index] = classifier_mflops(entry, grid[index])
            report(f'{entry.name}: width {grid[index]} -> {cache[index]:.2f} MFLOPs')
        return cache[index]

    def out_of_reach():
        return ValueError(
            f'budget {budget:g} MFLOPs is out of reach of {FAMILY_TITLE[entry.family]} with '
            f'{entry.layers} units: {mflops_at(0):.2f} MFLOPs at the narrowest width '
            f'({grid[0]}), {mflops_at(len(grid) - 1):.2f} at the widest ({grid[-1]})')

    if budget < mflops_at(0) * (1 - FLOPS_TOLERANCE):
        raise out_of_reach()
    low, high = 0, 1
    while mflops_at(high) < budget:  # widen exponentially, then bisect
        if high == len(grid) - 1:
            if budget > mflops_at(high) * (1 + FLOPS_TOLERANCE):
                raise out_of_reach()
            break
        low, high = high, min(len(grid) - 1, 2 * high + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if mflops_at(middle) < budget else (low, middle)
    for index in range(max(0, low - 4), min(len(grid), high + 5)):
        mflops_at(index)
    index = min(cache, key=lambda i: abs(cache[i] - budget))
    if abs(cache[index] - budget) > FLOPS_TOLERANCE * budget:
        raise ValueError(f'no width of {entry.name} comes within 5 % of budget {budget:g} '
                         f'MFLOPs: the closest is {grid[index]} with {cache[index]:.2f}')
    return grid[index], cache[index]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('write', help='write the configs, the metafile and the README table')
    sub.add_parser('check', help='exit 1 if a written file differs from the table')
    fit_parser = sub.add_parser(
        'fit', help="search the width of an entry's layers closest to a FLOP budget, or "
                    'print the FLOPs at given widths')
    fit_parser.add_argument('name', choices=sorted(BY_NAME))
    fit_parser.add_argument('widths', nargs='*',
                            help='widen_factors, ch2 ints (ShuffleNetV2) or comma-separated '
                                 'channels (ResNet); none: search')
    fit_parser.add_argument('--budget', type=float,
                            help="MFLOPs to reach (default: the entry's paper FLOPs)")
    args = parser.parse_args(argv)
    if args.command == 'fit':
        entry = BY_NAME[args.name]
        budget = entry.paper_mflops if args.budget is None else args.budget
        if args.widths:
            widths = [tuple(int(c) for c in w.split(',')) if ',' in w
                      else (int(w) if w.isdigit() else float(w)) for w in args.widths]
            results = [(classifier_mflops(entry, width), width) for width in widths]
            for mflops, width in results:
                print(f'{entry.name}: width {width} -> {mflops:.2f} MFLOPs')
            mflops, width = min(results, key=lambda result: abs(result[0] - budget))
        else:
            try:
                width, mflops = search_width(entry, budget)
            except ValueError as error:
                print(f'error: {error}')
                return 1
        print(f'closest: width {width} -> {mflops:.2f} MFLOPs (budget {budget:g})')
        return 0
    write = args.command == 'write'
    stale = sync(config_files(), write)
    if stale and not write:
        print('stale (run `python tools/misc/generate_dice_unit_configs.py write`): '
              + ', '.join(stale))
        return 1
    stale += sync(table_files(), write)
    if stale and not write:
        print('stale (run `python tools/misc/generate_dice_unit_configs.py write`): '
              + ', '.join(stale))
        return 1
    print(f'{len(ENTRIES)} configs, metafile and README table: '
          f'{len(stale)} {"written" if write else "stale"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Convert the state dicts of the authors' EdgeNets DiCENet checkpoints to mmdice.

The files are read and written by :func:`mmdice.apis.convert_edgenets_checkpoint`.

Handled layouts (legacy ``torch.save`` pickles of a plain state dict):

* segmentation (``dicenet_s_*_{pascal,city}_*.pth``): ``base_net.level1..4`` +
  ``eff_pool_*``, ``proj_enc_*``, ``bu_br_*`` -> ``backbone.*`` +
  ``decode_head.*`` of an mmseg ``EncoderDecoder`` with ``mmdice.DiCENet``
  (num_stages=2) and ``mmdice.DiCESegHead``;
* classification (ImageNet): ``[base_net.]level1..5`` + ``classifier.*`` ->
  ``backbone.*`` + ``head.*`` of an mmpretrain ``ImageClassifier`` with
  ``mmdice.DiCENet`` and ``mmdice.DiCEClsHead``.

Weights are copied unchanged except: the BN and PReLU over the 3C DimConv
channels (``br_act``) are re-indexed (our channel 3c+g = reference channel
g*C+c), and the last classifier conv [K, C, 1, 1] becomes a Linear [K, C].
Every source key must be consumed and every target key produced; anything else
raises ``ValueError`` listing the keys.
"""
import os.path as osp
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from torch import Tensor

__all__ = ['convert_edgenets_state_dict', 'reindex_dim_channels', 'EdgeNetsConversion']

# Class names / palettes stored in the converted checkpoint's meta so that
# mmseg's init_model labels the predictions.
_CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                       'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
                       'truck', 'bus', 'train', 'motorcycle', 'bicycle')
_CITYSCAPES_PALETTE = ([128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
                       [190, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0],
                       [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
                       [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100],
                       [0, 0, 230], [119, 11, 32])
_VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
                'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
                'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
_VOC_PALETTE = ([0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128],
                [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0],
                [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128],
                [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128])
#: dataset_meta of the authors' segmentation class sets, by number of classes.
#: Cityscapes models predict 19 train ids plus 'background' (id 19).
SEG_DATASET_META = {
    21: dict(classes=_VOC_CLASSES, palette=_VOC_PALETTE),
    20: dict(classes=_CITYSCAPES_CLASSES + ('background', ),
             palette=_CITYSCAPES_PALETTE + ([0, 0, 0], )),
}

_BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
# Index inside the reference's CBR (Conv, BN, PReLU) -> our ConvModule name
# and the tensor names it may hold.
_CBR = {'0': ('conv', ('weight', )), '1': ('bn', _BN_KEYS), '2': ('activate', ('weight', ))}

Rule = Tuple[re.Pattern, Callable[[re.Match], str]]


def reindex_dim_channels(tensor: Tensor) -> Tensor:
    """Reference concat order (g*C + c) -> our interleaved order (3c + g), 3C tensors."""
    if tensor.dim() != 1 or tensor.numel() % 3:
        raise ValueError(f'expected a 1-D tensor of 3C values, got shape {tuple(tensor.shape)}')
    return tensor.view(3, -1).t().reshape(-1).clone()


def _cbr(prefix: str, target: Callable[[re.Match], str]) -> List[Rule]:
    """Rules for a reference CBR ``<prefix>.cbr.{0,1,2}.*`` -> ConvModule ``target(m)``."""
    rules = []
    for index, (name, tensors) in _CBR.items():
        pattern = re.compile(rf'{prefix}\.cbr\.{index}\.(?P<t>{"|".join(tensors)})')
        rules.append((pattern, lambda m, name=name: f'{target(m)}.{name}.{m.group("t")}'))
    return rules


def _direct(pattern: str, target: Callable[[re.Match], str]) -> Rule:
    return re.compile(pattern), target


_BN = rf'(?P<t>{"|".join(_BN_KEYS)})'

# --- backbone ---------------------------------------------------------------
_LEVEL = r'level(?P<level>[345])\.(?P<block>\d+)'
_DICE = rf'{_LEVEL}\.(?P<part>right_layer\.1|layer_right\.1)'
_DIM_CONV = {'channel': 'depth', 'height': 'height', 'width': 'width'}
_GATE = {'1': 'reduce', '3': 'expand'}


def _unit(m: re.Match) -> str:
    """``level{L}.{j}`` -> ``layers.{L-3}.{j}``."""
    return f'layers.{int(m.group("level")) - 3}.{m.group("block")}'


def _dice(m: re.Match) -> str:
    """The DICE unit of a StridedDICE (``right.1``) or ShuffleDICEBlock (``branch.1``)."""
    part = {'right_layer.1': 'right.1', 'layer_right.1': 'branch.1'}[m.group('part')]
    return f'{_unit(m)}.{part}'


_BACKBONE_RULES: List[Rule] = [
    *_cbr(r'level1', lambda m: 'stem'),
    *_cbr(rf'{_LEVEL}\.left_layer\.(?P<i>[01])', lambda m: f'{_unit(m)}.left.{m.group("i")}'),
    *_cbr(rf'{_LEVEL}\.right_layer\.2', lambda m: f'{_unit(m)}.right.2'),
    *_cbr(rf'{_LEVEL}\.layer_right\.0', lambda m: f'{_unit(m)}.branch.0'),
    *_cbr(rf'{_DICE}\.weight_avg_layer', lambda m: f'{_dice(m)}.dim_fuse.local_fusion'),
    *_cbr(rf'{_DICE}\.proj_layer', lambda m: f'{_dice(m)}.dim_fuse.spatial_fusion'),
    _direct(rf'{_DICE}\.conv_(?P<axis>channel|height|width)\.weight',
            lambda m: f'{_dice(m)}.dim_conv.weight_{_DIM_CONV[m.group("axis")]}'),
    _direct(rf'{_DICE}\.br_act\.br\.0\.{_BN}', lambda m: f'{_dice(m)}.dim_norm.{m.group("t")}'),
    _direct(rf'{_DICE}\.br_act\.br\.1\.weight', lambda m: f'{_dice(m)}.dim_act.weight'),
    _direct(rf'{_DICE}\.linear_comb_layer\.(?P<i>[13])\.weight',
            lambda m: f'{_dice(m)}.dim_fuse.gate.{_GATE[m.group("i")]}.conv.weight'),
]

# --- segmentation decoder ---------------------------------------------------
_POOL_INDEX = {'16x16': 0, '32x32': 1, '64x64': 2, '128x128': 3}
_SKIP_INDEX = {'32x32': 0, '64x64': 1, '128x128': 2}
_POOL = r'eff_pool_(?P<size>16x16|32x32|64x64|128x128)'
_SKIP = r'proj_enc_(?P<size>32x32|64x64|128x128)'
_MERGE = r'bu_br_(?P<size>32x32|64x64|128x128)'


def _pool(m: re.Match) -> str:
    return f'pyramid_pools.{_POOL_INDEX[m.group("size")]}'


def _skip(m: re.Match) -> str:
    return f'skip_projs.{_SKIP_INDEX[m.group("size")]}'


def _merge_index(m: re.Match) -> int:
    return _SKIP_INDEX[m.group('size')]


def _last_pool_conv(m: re.Match) -> str:
    """The last pool's final 1x1 conv (with bias) is the head's conv_seg."""
    if m.group('size') == '128x128':
        return f'conv_seg.{m.group("t")}'
    if m.group('t') == 'bias':
        return ''  # only the last pool's conv has a bias: left unconsumed -> error
    return f'{_pool(m)}.out_proj.conv.weight'


_DECODER_RULES: List[Rule] = [
    *_cbr(rf'{_POOL}\.projection_layer', lambda m: f'{_pool(m)}.projection'),
    _direct(rf'{_POOL}\.stages\.(?P<i>\d+)\.weight',
            lambda m: f'{_pool(m)}.scale_convs.{m.group("i")}.weight'),
    _direct(rf'{_POOL}\.merge_layer\.0\.br\.0\.{_BN}',
            lambda m: f'{_pool(m)}.merge_norm.{m.group("t")}'),
    _direct(rf'{_POOL}\.merge_layer\.0\.br\.1\.weight', lambda m: f'{_pool(m)}.merge_act.weight'),
    *_cbr(rf'{_POOL}\.merge_layer\.2', lambda m: f'{_pool(m)}.merge_conv'),
    _direct(rf'{_POOL}\.merge_layer\.3\.(?P<t>weight|bias)', _last_pool_conv),
    _direct(rf'{_POOL}\.br\.br\.0\.{_BN}', lambda m: f'{_pool(m)}.out_proj.bn.{m.group("t")}'),
    _direct(rf'{_POOL}\.br\.br\.1\.weight', lambda m: f'{_pool(m)}.out_proj.activate.weight'),
    _direct(rf'{_SKIP}\.wt_layer\.1\.weight', lambda m: f'{_skip(m)}.gate.conv.weight'),
    *_cbr(rf'{_SKIP}\.expansion_layer', lambda m: f'{_skip(m)}.expansion'),
    _direct(rf'{_MERGE}\.0\.{_BN}', lambda m: f'merge_norms.{_merge_index(m)}.{m.group("t")}'),
    _direct(rf'{_MERGE}\.1\.weight', lambda m: f'merge_acts.{_merge_index(m)}.weight'),
]

# --- classification head ----------------------------------------------------
_CLS_RULES: List[Rule] = [
    _direct(r'classifier\.0\.weight', lambda m: 'grouped_fc.weight'),
    _direct(r'classifier\.2\.(?P<t>weight|bias)', lambda m: f'fc.{m.group("t")}'),
]


def _apply(rules: List[Rule], key: str) -> Optional[str]:
    """Target name of ``key`` under the first matching rule, else None."""
    for pattern, target in rules:
        match = pattern.fullmatch(key)
        if match is not None:
            return target(match) or None
    return None


@dataclass(eq=False, repr=False)
class EdgeNetsConversion:
    """Result of a conversion: ``state_dict``, ``meta`` and the inferred settings.

    Attributes:
        task: ``'segmentation'`` or ``'classification'``.
        widen_factor: DiCENet width scale s.
        input_size: (H, W) the DiCE units were built for (224, 224 for all
            released files).
        num_classes: classes of the classifier / decode head.
        state_dict: converted tensors, keys as the OpenMMLab model names them.
        meta: checkpoint meta (settings, source file, dataset_meta if known).
    """

    task: str
    widen_factor: float
    input_size: Tuple[int, int]
    num_classes: int
    state_dict: Dict[str, Tensor]
    meta: dict

    def summary(self) -> str:
        return (f'task={self.task} widen_factor={self.widen_factor} '
                f'input_size={self.input_size} num_classes={self.num_classes} '
                f'tensors={len(self.state_dict)}')


def _strip_prefixes(key: str) -> str:
    """Drop the ``module.`` (DataParallel) and ``base_net.`` prefixes of a key."""
    for prefix in ('module.', 'base_net.'):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _require(state_dict: Dict[str, Tensor], key: str) -> Tensor:
    if key not in state_dict:
        raise ValueError(f'missing key {key!r}: not a DiCENet EdgeNets checkpoint')
    return state_dict[key]


def _infer_widen_factor(state_dict: Dict[str, Tensor]) -> float:
    from mmdice.models.backbones.dicenet import DiCENet
    channels = (
        _require(state_dict, 'level1.cbr.0.weight').shape[0],
        _require(state_dict, 'level3.0.left_layer.0.cbr.0.weight').shape[0],
        _require(state_dict, 'level4.0.left_layer.0.cbr.0.weight').shape[0],
    )
    matches = [s for s, table in DiCENet.arch_settings.items() if tuple(table[:3]) == channels]
    if len(matches) != 1:
        raise ValueError(f'channels (ch0, ch1, ch2) = {channels} match no DiCENet width '
                         f'(known: { {s: t[:3] for s, t in DiCENet.arch_settings.items()} })')
    return matches[0]


def convert_edgenets_state_dict(state_dict: Dict[str, Tensor],
                                source: str = '') -> EdgeNetsConversion:
    """Convert an EdgeNets DiCENet state dict; see the module docstring.

    Raises:
        ValueError: listing unknown source keys, or missing / mis-shaped
            target keys (compared with the model built from the inferred
            settings).
    """
    original_keys = {_strip_prefixes(k): k for k in state_dict}
    if len(original_keys) != len(state_dict):
        raise ValueError('keys collide once the module./base_net. prefixes are removed')
    ref = {stripped: state_dict[key] for stripped, key in original_keys.items()}
    is_seg = any(k.startswith('eff_pool_') for k in ref)
    is_cls = any(k.startswith('classifier.') for k in ref)
    if is_seg == is_cls:
        raise ValueError('cannot tell the task: expected eff_pool_* (segmentation) or '
                         'classifier.* (classification) keys, '
                         f'found {"both" if is_seg else "neither"}')
    task = 'segmentation' if is_seg else 'classification'
    widen_factor = _infer_widen_factor(ref)
    rows = _require(ref, 'level3.0.right_layer.1.conv_height.weight').shape[0]
    cols = _require(ref, 'level3.0.right_layer.1.conv_width.weight').shape[0]
    input_size = (rows * 8, cols * 8)

    head_prefix = 'decode_head.' if is_seg else 'head.'
    head_rules = _DECODER_RULES if is_seg else _CLS_RULES
    converted: Dict[str, Tensor] = {}
    unknown: List[str] = []
    for key, value in ref.items():
        name = _apply(_BACKBONE_RULES, key)
        prefix = 'backbone.'
        if name is None:
            name = _apply(head_rules, key)
            prefix = head_prefix
        if name is None:
            unknown.append(original_keys[key])
            continue
        if name.endswith(('dim_norm.weight', 'dim_norm.bias', 'dim_norm.running_mean',
                          'dim_norm.running_var', 'dim_act.weight')):
            value = reindex_dim_channels(value)
        elif name == 'fc.weight':
            if value.dim() != 4 or value.shape[2:] != (1, 1):
                raise ValueError('classifier.2.weight must be [K, C, 1, 1], '
                                 f'got {tuple(value.shape)}')
            value = value.flatten(1)
        converted[prefix + name] = value.detach().clone().contiguous()
    if unknown:
        raise ValueError(f'{len(unknown)} unknown key(s) in the {task} checkpoint: '
                         + ', '.join(sorted(unknown)))

    classifier_key, ref_classifier_key = (
        ('decode_head.conv_seg.weight', 'eff_pool_128x128.merge_layer.3.weight') if is_seg
        else ('head.fc.weight', 'classifier.2.weight'))
    if classifier_key not in converted:
        raise ValueError(f'missing key {ref_classifier_key!r} (the last classifier conv)')
    num_classes = converted[classifier_key].shape[0]
    if is_seg:
        model = _build_seg_target(widen_factor, input_size, num_classes, converted)
    else:
        model = _build_cls_target(widen_factor, input_size, num_classes)
    _check_against(model, converted)

    meta = dict(
        converted_from=osp.basename(source) if source else '',
        converter='mmdice.models.utils.edgenets_converter',
        task=task,
        widen_factor=widen_factor,
        input_size=list(input_size),
        num_classes=num_classes,
    )
    if is_seg and num_classes in SEG_DATASET_META:
        meta['dataset_meta'] = {k: list(v) for k, v in SEG_DATASET_META[num_classes].items()}
    return EdgeNetsConversion(task, widen_factor, input_size, num_classes, converted, meta)


def _build_seg_target(widen_factor: float, input_size: Tuple[int, int], num_classes: int,
                      converted: Dict[str, Tensor]):
    from torch import nn

    from mmdice.models.backbones.dicenet import DiCENet
    from mmdice.models.heads.dice_seg_head import DiCESegHead
    backbone = DiCENet(widen_factor=widen_factor, input_size=input_size, num_stages=2,
                       out_indices=(0, 1, 2, 3))
    channels = DiCENet.arch_settings[widen_factor]
    out_convs = [f'decode_head.pyramid_pools.{i}.out_proj.conv.weight' for i in range(3)]
    missing = [k for k in out_convs if k not in converted]
    if missing:
        raise ValueError(f'missing key(s) {missing} (reference '
                         'eff_pool_{16x16,32x32,64x64}.merge_layer.3.weight)')
    decoder_channels = tuple(converted[k].shape[0] for k in out_convs)
    proj_channels = converted['decode_head.conv_seg.weight'].shape[1]
    head = DiCESegHead(in_channels=list(channels[:4]), channels=proj_channels,
                       num_classes=num_classes, decoder_channels=decoder_channels)
    return nn.ModuleDict(dict(backbone=backbone, decode_head=head))


def _build_cls_target(widen_factor: float, input_size: Tuple[int, int], num_classes: int):
    from torch import nn

    from mmdice.models.backbones.dicenet import DiCENet
    from mmdice.models.heads.dice_cls_head import DiCEClsHead
    backbone = DiCENet(widen_factor=widen_factor, input_size=input_size, num_stages=3,
                       out_indices=(4, ))
    channels = DiCENet.arch_settings[widen_factor]
    head = DiCEClsHead(num_classes=num_classes, in_channels=channels[4],
                       mid_channels=channels[5])
    return nn.ModuleDict(dict(backbone=backbone, head=head))


def _check_against(model, converted: Dict[str, Tensor]) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    mis_shaped = sorted(f'{k}: {tuple(converted[k].shape)} vs model {expected[k]}'
                        for k in set(expected) & set(converted)
                        if tuple(converted[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append(f'missing {len(missing)}: ' + ', '.join(missing))
    if unexpected:
        problems.append(f'unexpected {len(unexpected)}: ' + ', '.join(unexpected))
    if mis_shaped:
        problems.append(f'shape mismatch {len(mis_shaped)}: ' + ', '.join(mis_shaped))
    if problems:
        raise ValueError('converted state dict does not match the model: ' + '; '.join(problems))

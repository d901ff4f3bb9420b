"""Whether an mmdice backbone's output channels fit the module that takes them.

A swap that gives the neck or head other channels than the backbone returns
builds fine and fails at the first iteration with torch's ``expected input
... to have 116 channels``. :func:`check_backbone_channels` compares, right
after the model is built, the channels of the levels an mmdice backbone
returns (``out_channels``, picked by ``out_indices`` from ``level_channels``)
with the ``in_channels`` of what takes them:

* the neck when it records ``in_channels`` (mmdet's FPN, mmdice's
  DiCESSDNeck, ...): a list takes every returned level, an int the last one;
  through a pooling neck (mmpretrain's GlobalAveragePooling) the head;
* without a neck: mmseg's decode and auxiliary heads (``in_index`` counts in
  the returned levels, ``input_transform`` ``resize_concat`` sums them,
  ``multiple_select`` takes a list), mmdet's dense heads (an int is every
  level's, a list one per level), mmpretrain's heads (the last level).

Necks and heads that record no ``in_channels`` are not checked.
"""
from typing import Iterator, List, Optional, Sequence, Tuple

from torch import nn

__all__ = ['ChannelMismatchError', 'check_backbone_channels']

#: mmpretrain necks that keep the channels of the last level.
POOLING_NECKS = ('GlobalAveragePooling', 'GeneralizedMeanPooling')


class ChannelMismatchError(ValueError):
    """An mmdice backbone returns other channels than its neck or head takes."""


def _unwrap(model: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _consumers(model: nn.Module) -> Iterator[Tuple[str, nn.Module, str]]:
    """(config key, module, how it takes the levels) of what takes the backbone's output."""
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Sequential):
        neck = neck[0]
    if neck is not None:
        if hasattr(neck, 'in_channels'):
            yield 'neck', neck, 'neck'
        if type(neck).__name__ not in POOLING_NECKS:
            return
    if hasattr(model, 'decode_head'):
        yield 'decode_head', model.decode_head, 'seg'
        auxiliary = getattr(model, 'auxiliary_head', None)
        if isinstance(auxiliary, nn.ModuleList):
            for index, head in enumerate(auxiliary):
                yield f'auxiliary_head.{index}', head, 'seg'
        elif auxiliary is not None:
            yield 'auxiliary_head', auxiliary, 'seg'
        return
    for key in ('bbox_head', 'rpn_head'):
        if getattr(model, key, None) is not None:
            yield key, getattr(model, key), 'dense'
            return
    if getattr(model, 'head', None) is not None:
        yield 'head', model.head, 'last'


def _as_list(value) -> Optional[List[int]]:
    if isinstance(value, int):
        return None
    try:
        return [int(v) for v in value]
    except TypeError:
        return None


def _seg_head_mismatch(head: nn.Module, returned: Sequence[int]) -> Optional[str]:
    """None if an mmseg decode head fits the returned channels, else what it takes."""
    index = head.in_index
    indices = _as_list(index) or [index]
    if not all(-len(returned) <= i < len(returned) for i in indices):
        return f'in_index={index!r}, not among the {len(returned)} returned levels'
    picked = [returned[i] for i in indices]
    transform = getattr(head, 'input_transform', None)
    if transform == 'resize_concat':
        if head.in_channels != sum(picked):
            return (f'in_channels={head.in_channels} (resize_concat of in_index={index!r}, '
                    f'which returns {sum(picked)})')
    elif transform == 'multiple_select':
        if _as_list(head.in_channels) != picked:
            return (f'in_channels={list(head.in_channels)} at in_index={index!r} '
                    f'(those levels have {picked})')
    elif head.in_channels != picked[0]:
        return f'in_channels={head.in_channels} at in_index={index!r} (that level has {picked[0]})'
    return None


def _levels_mismatch(module: nn.Module, returned: Sequence[int], kind: str) -> Optional[str]:
    """None if a neck, dense head or classifier head fits the returned channels, else what
    it takes."""
    takes = module.in_channels
    as_list = _as_list(takes)
    if as_list is not None:
        if kind == 'last' or as_list == list(returned):
            return None
        return f'in_channels={as_list}'
    if kind == 'dense':
        fits = all(channels == takes for channels in returned)
        return None if fits else f'in_channels={takes} for every level'
    return None if takes == returned[-1] else f'in_channels={takes} (from the last level)'


def check_backbone_channels(model: nn.Module) -> None:
    """ChannelMismatchError, one line naming both sides and the channels of every
    level, unless the mmdice backbone's returned channels fit what takes them;
    nothing to check for other backbones."""
    model = _unwrap(model)
    backbone = getattr(model, 'backbone', None)
    if not (hasattr(backbone, 'level_channels')
            and type(backbone).__module__.startswith('mmdice.')):
        return
    returned = list(backbone.out_channels)
    for key, module, kind in _consumers(model):
        if kind == 'seg':
            mismatch = _seg_head_mismatch(module, returned)
        else:
            mismatch = _levels_mismatch(module, returned, kind)
        if mismatch:
            levels = ', '.join(f'level {level}: {channels}'
                               for level, channels in enumerate(backbone.level_channels))
            name = type(backbone).__name__
            raise ChannelMismatchError(
                f'backbone mmdice.{name} returns {returned} channels (out_indices='
                f'{tuple(backbone.out_indices)}) but {key} ({type(module).__name__}) takes '
                f'{mismatch}; {name}.level_channels: {levels}. Give model.{key} the channels '
                f'of the levels returned, or return other levels with model.backbone.out_indices')

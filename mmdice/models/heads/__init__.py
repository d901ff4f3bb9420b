"""Heads of mmdice, each imported only when its codebase is installed."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .dice_cls_head import DiCEClsHead  # noqa: F401
    from .dice_multilabel_cls_head import DiCEMultiLabelClsHead  # noqa: F401
    __all__ += ['DiCEClsHead', 'DiCEMultiLabelClsHead']

if find_spec('mmseg') is not None and find_spec(f'{__name__}.dice_seg_head') is not None:
    from .dice_seg_head import DiCESegHead  # noqa: F401
    __all__.append('DiCESegHead')

if find_spec('mmdet') is not None:
    from .dice_ssd_head import DiCESSDHead  # noqa: F401
    __all__.append('DiCESSDHead')

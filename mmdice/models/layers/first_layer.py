"""The first layer of a block: a point-wise conv or DimFuse in its place (DiCENet Table 3)."""
from torch import nn

from .activation import act_cfg_for
from .dim_fuse import DimFuse
from .norm_act import ConvNormAct

#: First layers of a block (its point-wise conv, or DimFuse in its place: DiCENet Table 3).
FIRST_FUSIONS = ('pointwise', 'dimfuse')


def build_first_layer(in_channels: int, out_channels: int, first_fusion: str,
                      norm_cfg: dict, act_cfg: dict) -> nn.Module:
    """A block's first layer: 1x1 conv + norm + act (``'pointwise'``) or
    :class:`DimFuse` without local fusion (``'dimfuse'``).

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W).
    """
    if first_fusion not in FIRST_FUSIONS:
        raise ValueError(f'first_fusion must be one of {FIRST_FUSIONS}, got {first_fusion!r}')
    if first_fusion == 'dimfuse':
        return DimFuse(in_channels, out_channels, with_local_fusion=False, norm_cfg=norm_cfg,
                       act_cfg=act_cfg)
    return ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                       act_cfg=act_cfg_for(act_cfg, out_channels))

"""Building blocks of DiCENet."""
from .activation import act_cfg_for, build_act
from .channel_shuffle import channel_shuffle, shuffled_concat
from .dice_bottleneck import DiCEBottleneck
from .dice_unit import DiCEUnit
from .channel_gate import ChannelGate
from .dim_fuse import DimFuse
from .efficient_pw_conv import EfficientPWConv
from .efficient_pyr_pool import EfficientPyrPool
from .norm_act import ConvNormAct, norm_act
from .shuffle_dice_block import ShuffleDiCEBlock
from .strided_dice import StridedDiCE

__all__ = [
    'act_cfg_for', 'build_act', 'channel_shuffle', 'shuffled_concat', 'ChannelGate', 'DimFuse',
    'DiCEUnit', 'DiCEBottleneck', 'StridedDiCE', 'ShuffleDiCEBlock', 'EfficientPWConv',
    'EfficientPyrPool', 'ConvNormAct', 'norm_act'
]

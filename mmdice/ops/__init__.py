"""Operators of mmdice; importing them needs torch only."""
from .batch_norm_prelu import batch_norm_prelu, batch_norm_prelu_reference
from .dice_fuse import (DimConvFuse2d, dice_fuse, dice_fuse_epilogue,
                        dice_fuse_epilogue_reference, dice_fuse_reference)
from .dim_conv import DimConv2d, dim_conv, dim_conv_reference
from .extension import EXT_AVAILABLE
from .shuffle_gated_concat import shuffle_gated_concat, shuffle_gated_concat_reference

__all__ = [
    'DimConv2d', 'dim_conv', 'dim_conv_reference', 'EXT_AVAILABLE', 'DimConvFuse2d', 'dice_fuse',
    'dice_fuse_reference', 'dice_fuse_epilogue', 'dice_fuse_epilogue_reference',
    'batch_norm_prelu', 'batch_norm_prelu_reference', 'shuffle_gated_concat',
    'shuffle_gated_concat_reference'
]

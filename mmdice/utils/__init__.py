"""Utilities of mmdice: FLOP counting and mmengine checkpoint loading."""
from .complexity import (PAPER_OPERATORS, count_complexity, dim_conv_flop_jit,
                         register_dim_conv_handles)
from .torch_load import allow_mmengine_checkpoint_globals, mmengine_checkpoint_globals

__all__ = [
    'PAPER_OPERATORS', 'count_complexity', 'dim_conv_flop_jit', 'register_dim_conv_handles',
    'allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_globals'
]

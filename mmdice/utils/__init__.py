"""Utilities of mmdice: FLOP counting, mmengine checkpoint loading and the tools' input files."""
from .complexity import (PAPER_OPERATORS, count_complexity, dim_conv_flop_jit,
                         register_dim_conv_handles)
from .tool_inputs import InputFileError, load_config, read_checkpoint
from .torch_load import allow_mmengine_checkpoint_globals, mmengine_checkpoint_globals

__all__ = [
    'PAPER_OPERATORS', 'count_complexity', 'dim_conv_flop_jit', 'register_dim_conv_handles',
    'allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_globals', 'InputFileError',
    'load_config', 'read_checkpoint'
]

"""Utilities of mmdice: mmengine checkpoint loading and the tools' input files."""
from .tool_inputs import InputFileError, load_config, read_checkpoint
from .torch_load import allow_mmengine_checkpoint_globals, mmengine_checkpoint_globals

__all__ = [
    'allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_globals', 'InputFileError',
    'load_config', 'read_checkpoint'
]

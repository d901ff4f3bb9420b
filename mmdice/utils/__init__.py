"""Utilities of mmdice: mmengine checkpoint loading and the tools' input and output files."""
from .channel_fit import ChannelMismatchError, check_backbone_channels
from .checkpoint_fit import (CheckpointMismatchError, build_settings, check_checkpoint_fits,
                             check_model_checkpoint, checkpoint_state_dict,
                             load_checkpoint_strictly)
from .tool_inputs import (TOOL_ERRORS, InputFileError, OutputFileError, check_output_file,
                          load_config, read_checkpoint, report_error, write_checkpoint)
from .init_arguments import UnknownArgumentError
from .torch_load import allow_mmengine_checkpoint_globals, mmengine_checkpoint_globals

__all__ = [
    'allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_globals', 'InputFileError',
    'OutputFileError', 'TOOL_ERRORS', 'load_config', 'read_checkpoint', 'check_output_file',
    'write_checkpoint', 'report_error', 'CheckpointMismatchError', 'build_settings',
    'checkpoint_state_dict', 'check_checkpoint_fits', 'check_model_checkpoint',
    'load_checkpoint_strictly', 'ChannelMismatchError', 'check_backbone_channels',
    'UnknownArgumentError'
]

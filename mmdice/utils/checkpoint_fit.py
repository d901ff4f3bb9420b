"""Whether a checkpoint fits a model, checked before it is loaded.

mmengine's Runner (``load_from``, ``resume``), ``mmengine.runner.load_checkpoint``
and the codebases' ``init_model`` load non-strictly: tensors of another shape
are skipped with a warning on stderr, so a checkpoint of the wrong width
"loads" and the model runs with random weights. :func:`check_checkpoint_fits`
compares the state dict with the model first and raises
:class:`CheckpointMismatchError`, one line naming the first keys, both shapes
and the build settings of both sides (the checkpoint's ``meta``, see
:func:`build_settings`); with ``allow_partial=True`` it logs every
mismatching, missing and unexpected key instead.
"""
import logging
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from torch import nn

from .tool_inputs import InputFileError, read_checkpoint

__all__ = [
    'CheckpointMismatchError', 'build_settings', 'checkpoint_state_dict',
    'check_checkpoint_fits', 'check_model_checkpoint', 'load_checkpoint_strictly'
]

#: The build settings of a model that its checkpoints record in ``meta``.
SETTING_KEYS = ('task', 'widen_factor', 'input_size', 'deploy')
_TASKS = (('decode_head', 'segmentation'), ('bbox_head', 'detection'), ('head', 'classification'))


class CheckpointMismatchError(InputFileError, RuntimeError):
    """A checkpoint whose tensors do not fit the model it is loaded into (a
    RuntimeError too, as mmengine's strict ``load_checkpoint`` raises)."""


def _unwrap(model: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def build_settings(model: nn.Module) -> Dict[str, object]:
    """The settings that decide a model's tensor shapes, as recorded in a
    checkpoint's ``meta``: ``task`` (segmentation, detection, classification),
    and of an mmdice backbone (DiCENet) ``widen_factor``, ``input_size`` [H, W]
    and ``deploy``."""
    model = _unwrap(model)
    settings = {}
    for part, task in _TASKS:
        if hasattr(model, part):
            settings['task'] = task
            break
    backbone = getattr(model, 'backbone', model)
    for key in SETTING_KEYS[1:]:
        if hasattr(backbone, key):
            value = getattr(backbone, key)
            settings[key] = list(value) if isinstance(value, tuple) else value
    return settings


def checkpoint_state_dict(checkpoint) -> 'OrderedDict':
    """The state dict of a checkpoint (its ``state_dict`` entry or itself)
    without the ``module.`` prefix of wrapped models, as mmengine loads it."""
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else checkpoint
    if not isinstance(state_dict, dict):
        raise TypeError(f'a checkpoint must be a state dict or hold one in "state_dict", '
                        f'got {type(state_dict).__name__}')
    return OrderedDict((re.sub(r'^module\.', '', key), value)
                       for key, value in state_dict.items())


def _mismatch(model: nn.Module, state_dict) -> Tuple[List[tuple], List[str], List[str]]:
    """(key, checkpoint shape, model shape) of differing shapes, missing keys
    (but BatchNorm's ``num_batches_tracked``, which mmengine does not require)
    and unexpected keys."""
    expected = _unwrap(model).state_dict()
    shapes = [(key, list(value.shape), list(expected[key].shape))
              for key, value in state_dict.items()
              if key in expected and hasattr(value, 'shape') and value.shape != expected[key].shape]
    missing = [key for key in expected
               if key not in state_dict and not key.endswith('num_batches_tracked')]
    unexpected = [key for key in state_dict if key not in expected]
    return shapes, missing, unexpected


def _settings_difference(checkpoint, model: nn.Module) -> str:
    """``; the checkpoint is for widen_factor=0.5, the model builds widen_factor=1.0``
    from the settings its meta records that differ from the model's ('' if none)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return ''
    ours = build_settings(model)
    differing = [key for key in SETTING_KEYS if key in meta and key in ours
                 and (list(meta[key]) if isinstance(meta[key], tuple) else meta[key]) != ours[key]]
    if not differing:
        return ''
    theirs = ', '.join(f'{key}={meta[key]}' for key in differing)
    built = ', '.join(f'{key}={ours[key]}' for key in differing)
    return f'; the checkpoint is for {theirs}, the model builds {built}'


def check_checkpoint_fits(model: nn.Module,
                          checkpoint,
                          path: str,
                          *,
                          allow_partial: bool = False,
                          target: str = 'the model',
                          hint: str = '',
                          logger: Optional[logging.Logger] = None) -> None:
    """CheckpointMismatchError unless every tensor of ``checkpoint`` (loaded
    from ``path``) has a key and the shape of ``model`` and no tensor of the
    model is missing.

    The message names the counts, the first key of each kind with both
    shapes, the differing build settings of the checkpoint's ``meta``, then
    ``hint``. With ``allow_partial`` it is logged (``logger``, or the
    ``logging`` root) as a warning with every key instead, and nothing raised.
    """
    shapes, missing, unexpected = _mismatch(model, checkpoint_state_dict(checkpoint))
    if not (shapes or missing or unexpected):
        return
    if allow_partial:
        lines = [f'partial load of checkpoint {path} into {target}:']
        lines += [f'  shape differs: {key}: checkpoint {ckpt}, model {ours}'
                  for key, ckpt, ours in shapes]
        lines += [f'  missing key: {key}' for key in missing]
        lines += [f'  unexpected key: {key}' for key in unexpected]
        (logger or logging.getLogger()).warning('\n'.join(lines))
        return
    parts = []
    if shapes:
        key, ckpt, ours = shapes[0]
        parts.append(f'{len(shapes)} tensors differ in shape (first {key}: '
                     f'checkpoint {ckpt}, model {ours})')
    if missing:
        parts.append(f'missing keys: {len(missing)} (first {missing[0]})')
    if unexpected:
        parts.append(f'unexpected keys: {len(unexpected)} (first {unexpected[0]})')
    message = (f'checkpoint {path} does not fit {target}: {", ".join(parts)}'
               f'{_settings_difference(checkpoint, model)}')
    raise CheckpointMismatchError(f'{message}; {hint}' if hint else message)


def _read(path: str):
    """A local checkpoint through :func:`read_checkpoint`; a URL through mmengine."""
    if '://' in path:
        from mmengine.runner.checkpoint import _load_checkpoint
        return _load_checkpoint(path, map_location='cpu')
    return read_checkpoint(path)


def check_model_checkpoint(model: nn.Module, path: str, **kwargs) -> None:
    """Read the checkpoint ``path`` and :func:`check_checkpoint_fits` it to ``model``."""
    check_checkpoint_fits(model, _read(path), path, **kwargs)


def load_checkpoint_strictly(model: nn.Module, path: str, **kwargs):
    """Load the checkpoint ``path`` into ``model`` after :func:`check_checkpoint_fits`
    (InputFileError if unreadable, CheckpointMismatchError if it does not fit);
    returns the checkpoint."""
    from mmengine.runner.checkpoint import load_state_dict
    checkpoint = _read(path)
    check_checkpoint_fits(model, checkpoint, path, **kwargs)
    load_state_dict(_unwrap(model), checkpoint_state_dict(checkpoint),
                    strict=not kwargs.get('allow_partial', False))
    return checkpoint

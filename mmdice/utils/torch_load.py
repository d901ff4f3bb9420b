"""Let torch >= 2.6 load full mmengine 0.10.7 checkpoints with ``weights_only=True``.

torch 2.6 made ``weights_only=True`` the default of ``torch.load``; mmengine
0.10.7 calls ``torch.load`` without the argument, so resuming, testing a
checkpoint, ``load_from`` and ``init_cfg=dict(type='Pretrained')`` fail on the
``message_hub`` entry of a Runner checkpoint. :func:`allow_mmengine_checkpoint_globals`
allow-lists exactly the globals such checkpoints hold, found by saving real
Runner checkpoints (SGD, AMP loss scaler, EMA, param schedulers) and loading
them with ``weights_only=True``:

* ``mmengine.logging.history_buffer.HistoryBuffer`` (logged scalars);
* numpy arrays, scalars and dtypes inside the buffers and runtime info
  (``numpy._core.multiarray._reconstruct`` / ``scalar``, ``numpy.ndarray``,
  ``numpy.dtype`` and the dtype classes; also under their numpy 1.x
  ``numpy.core`` names);
* ``builtins.getattr``, which pickle uses to store the buffer's statistics
  methods (``getattr(HistoryBuffer, 'mean')``): it is *not* allow-listed as
  the builtin, which would open the unpickler; a replacement registered under
  that name resolves only ``HistoryBuffer`` statistics methods.

Importing this module allow-lists them. :mod:`mmdice.registry` imports it, and
mmengine imports the registry for the ``mmdice`` scope (every mmdice module
does too), so resuming, ``load_from`` and ``Pretrained`` initialisation work
from the codebases' own tools as well.
"""
import numpy as np
import torch

_STATISTICS_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistics_method(owner, name):
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging import HistoryBuffer
    registered = set(_STATISTICS_METHODS) | set(HistoryBuffer._statistics_methods)
    if owner is not HistoryBuffer or name not in registered:
        raise ValueError(
            'weights_only load: getattr is only allowed for HistoryBuffer statistics methods '
            f'{sorted(registered)}, got getattr({owner!r}, {name!r})')
    return getattr(HistoryBuffer, name)


def _numpy_globals():
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = {
        type(np.dtype(name))
        for name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                     'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128')
    }
    globals_ = [np.ndarray, np.dtype, *sorted(dtype_classes, key=lambda cls: cls.__name__)]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        globals_ += [(multiarray._reconstruct, f'{module}._reconstruct'),
                     (multiarray.scalar, f'{module}.scalar')]
    return globals_


def mmengine_checkpoint_globals():
    """The globals (or ``(global, pickled name)`` pairs) that
    :func:`allow_mmengine_checkpoint_globals` registers."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, *_numpy_globals(),
            (_history_buffer_statistics_method, 'builtins.getattr')]


def allow_mmengine_checkpoint_globals():
    """Allow-list the globals of mmengine checkpoints for ``weights_only`` loads.

    Idempotent; a no-op on torch < 2.4, which has no
    ``torch.serialization.add_safe_globals`` (and loads without
    ``weights_only`` by default).

    Returns:
        bool: whether the globals are registered.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return False
    get_safe_globals = getattr(torch.serialization, 'get_safe_globals', list)
    registered = get_safe_globals()
    missing = [item for item in mmengine_checkpoint_globals() if item not in registered]
    if missing:
        add_safe_globals(missing)
    return True


allow_mmengine_checkpoint_globals()

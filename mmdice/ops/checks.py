"""Argument checks shared by the operators of :mod:`mmdice.ops`.

Each op writes its argument rules once, as a contract function that reports a
broken rule through a ``check(condition, message)`` callable: :func:`require`
in the Python wrappers and references (a ValueError naming the argument),
``torch._check`` in the fake kernels (symbolic shapes, a RuntimeError as the
C++ checks raise).
"""
import numbers
from typing import Any, Callable, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['Check', 'require', 'shape_of', 'check_positive_ints', 'as_dilation',
           'autocast_inputs']

#: ``check(condition, message)``: raises with ``message()`` when ``condition`` is false.
Check = Callable[[Any, Callable[[], str]], None]

IntTriple = Union[int, Sequence[int]]


def require(condition: Any, message: Callable[[], str]) -> None:
    """Raise ``ValueError(message())`` when ``condition`` is false."""
    if not condition:
        raise ValueError(message())


def shape_of(value: Any) -> Union[Tuple[int, ...], str]:
    """The shape of a tensor, or the type name of anything else, for error messages."""
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def check_positive_ints(optional: bool = False, **values: Any) -> None:
    """A ValueError naming the first of ``values`` (argument name=value) that is
    not a positive int; with ``optional``, None passes too."""
    for name, value in values.items():
        if optional and value is None:
            continue
        if not isinstance(value, numbers.Integral) or value < 1:
            kind = 'a positive int or None' if optional else 'a positive int'
            raise ValueError(f'{name} must be {kind}, got {value!r}')


def as_dilation(dilation: IntTriple) -> Tuple[int, int, int]:
    """(depth, height, width) dilation rates from an int or three ints, all positive."""
    if isinstance(dilation, numbers.Integral):
        dilation = (dilation, ) * 3
    dilation = tuple(dilation)
    if len(dilation) != 3 or not all(
            isinstance(d, numbers.Integral) and d >= 1 for d in dilation):
        raise ValueError('dilation must be a positive int or three positive ints '
                         f'(depth, height, width), got {dilation!r}')
    return tuple(int(d) for d in dilation)


def autocast_inputs(x: Tensor, *weights: Tensor) -> Tuple[Tensor, ...]:
    """``(x, *weights)`` cast to the autocast dtype of ``x``'s device when
    autocast is enabled there; float64 and non-tensor arguments are left as is."""
    if not isinstance(x, Tensor) or not torch.is_autocast_enabled(x.device.type):
        return (x, *weights)
    dtype = torch.get_autocast_dtype(x.device.type)
    return tuple(t.to(dtype) if isinstance(t, Tensor) and t.is_floating_point()
                 and t.dtype != torch.float64 else t for t in (x, *weights))

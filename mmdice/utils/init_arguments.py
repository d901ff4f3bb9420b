"""Unknown constructor arguments of mmdice's registered classes, named in one line.

A config typo such as ``model.backbone.widen_facter=1.0`` would otherwise end in
Python's ``TypeError: __init__() got an unexpected keyword argument`` deep in a
traceback. mmdice's registries (:mod:`mmdice.registry`) wrap the ``__init__``
of every class they register with :func:`check_init_arguments`, so building it
from any codebase's config (``type='mmdice.DiCENet'``) raises
:class:`UnknownArgumentError`: the class, the unknown arguments, a close match
and the accepted arguments. It is a TypeError (what Python raises) and a
ValueError (what the tools report as one ``error:`` line).
"""
import difflib
import functools
import inspect
from typing import List, Optional

from torch import nn

__all__ = ['UnknownArgumentError', 'accepted_arguments', 'check_init_arguments']

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class UnknownArgumentError(TypeError, ValueError):
    """A class was given keyword arguments its constructor does not take."""


def accepted_arguments(cls: type) -> Optional[List[str]]:
    """The keyword arguments ``cls(...)`` takes: those of its ``__init__`` and,
    while an ``__init__`` passes ``**kwargs`` on, of the next one up the MRO
    (up to ``nn.Module``, which takes none). None if the chain takes any name."""
    names: List[str] = []
    for klass in cls.__mro__:
        if klass in (nn.Module, object):
            return names
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        parameters = list(inspect.signature(inspect.unwrap(init)).parameters.values())[1:]
        names += [p.name for p in parameters if p.kind in _NAMED and p.name not in names]
        if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
            return names
    return None


def _message(type_name: str, unknown: List[str], accepted: List[str]) -> str:
    plural = 's' if len(unknown) > 1 else ''
    named = []
    for name in unknown:
        match = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        named.append(f"'{name}' (did you mean '{match[0]}'?)" if match else f"'{name}'")
    return (f"{type_name} got unknown argument{plural} {', '.join(named)}; it takes "
            f"{', '.join(accepted) if accepted else 'no arguments'}")


def check_init_arguments(cls: type, type_name: Optional[str] = None) -> type:
    """Make ``cls(...)`` raise :class:`UnknownArgumentError` for keyword
    arguments its constructor chain does not take; returns ``cls``.

    Args:
        cls: the class; its ``__init__`` (own or inherited) is wrapped into
            ``cls.__dict__`` (idempotent).
        type_name: how configs name it, e.g. ``mmdice.DiCENet`` (default: the class name).
    """
    if getattr(cls.__dict__.get('__init__'), 'checks_arguments', False):
        return cls
    init = cls.__init__
    accepted = accepted_arguments(cls)
    if accepted is None:
        return cls
    known = frozenset(accepted)
    type_name = type_name or cls.__name__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        unknown = [name for name in kwargs if name not in known]
        if unknown:
            raise UnknownArgumentError(_message(type_name, unknown, accepted))
        init(self, *args, **kwargs)

    __init__.checks_arguments = True
    cls.__init__ = __init__
    return cls

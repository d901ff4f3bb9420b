"""Input and output files of the command-line tools, checked up front.

A missing, truncated or unparsable config or checkpoint, an output path that
cannot be written, or a checkpoint that does not fit the model is reported as
one line naming the file and the reason (:class:`InputFileError` and its
subclasses), which the tools print as ``error: ...`` (:func:`report_error`)
before exiting with status 1, instead of a traceback from deep inside
torch.load, torch.save or mmengine's Runner. Outputs are written to a
temporary file next to the target and renamed (:func:`write_checkpoint`), so
a failed run leaves no half-written file.
"""
import os
import os.path as osp
import pickle
import sys
import tempfile
import zipfile
from typing import Union

import torch

__all__ = [
    'InputFileError', 'OutputFileError', 'TOOL_ERRORS', 'load_config', 'read_checkpoint',
    'check_output_file', 'write_checkpoint', 'report_error'
]


class InputFileError(ValueError):
    """A file argument of a tool that cannot be used; the message names the file and why."""


class OutputFileError(InputFileError):
    """An output path of a tool that cannot be written; the message names the path and why."""


#: The errors the tools report as one ``error:`` line: unusable files, missing
#: datasets, and invalid settings (e.g. a model argument of the wrong type).
TOOL_ERRORS = (InputFileError, FileNotFoundError, ValueError)


def report_error(error: Union[BaseException, str]) -> int:
    """Print ``error: <message>`` as one line on stderr; returns the exit status 1."""
    message = ' '.join(line.strip() for line in str(error).strip().splitlines())
    print(f'error: {message or type(error).__name__}', file=sys.stderr)
    return 1


def _reason(error: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(error).strip().splitlines()
    return f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__


def _check_file(path: str, what: str) -> None:
    if not osp.exists(path):
        raise InputFileError(f'{what} {path} does not exist')
    if not osp.isfile(path):
        raise InputFileError(f'{what} {path} is not a file')


def load_config(path: str):
    """``mmengine.config.Config.fromfile(path)``, or InputFileError naming the file."""
    from mmengine.config import Config

    _check_file(path, 'config')
    try:
        return Config.fromfile(path)
    except Exception as error:  # noqa: BLE001 - a config is Python code: anything can fail
        raise InputFileError(f'cannot parse config {path}: {_reason(error)}') from error


def read_checkpoint(path: str, **load_kwargs):
    """``torch.load(path, map_location='cpu', **load_kwargs)``, or InputFileError
    naming the file. Zip-format files are memory-mapped, so checking a large
    checkpoint costs little."""
    _check_file(path, 'checkpoint')
    load_kwargs.setdefault('map_location', 'cpu')
    if zipfile.is_zipfile(path):
        load_kwargs.setdefault('mmap', True)
    try:
        return torch.load(path, **load_kwargs)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, ValueError) as error:
        hint = ('the file is truncated or empty' if isinstance(error, EOFError) else
                'a truncated or corrupt file, or not written by torch.save?')
        raise InputFileError(
            f'cannot read checkpoint {path}: {_reason(error)} ({hint})') from error


def check_output_file(path: str, what: str = 'output checkpoint') -> None:
    """OutputFileError unless ``path`` can be written: it is not a folder, and
    its nearest existing parent is a folder that a file can be created in
    (tried; missing folders below it are made when writing)."""
    path = osp.abspath(path)
    if osp.isdir(path):
        raise OutputFileError(f'cannot write {what} {path}: it is a folder')
    existing = osp.dirname(path)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise OutputFileError(f'cannot write {what} {path}: {existing} is not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFileError(f'cannot write {what} {path}: folder {existing} is not writable')
    try:  # permissions do not tell everything: /proc, read-only mounts, root
        handle, probe = tempfile.mkstemp(prefix='.write-test-', dir=existing)
    except OSError as error:
        raise OutputFileError(f'cannot write {what} {path}: cannot create files in folder '
                              f'{existing} ({error.strerror})') from error
    os.close(handle)
    os.remove(probe)


def write_checkpoint(obj, path: str, what: str = 'output checkpoint') -> None:
    """``torch.save(obj, path)`` through a temporary file in the same folder,
    renamed when complete; OutputFileError naming ``path`` if it cannot be
    written, and no file (complete or partial) is left then."""
    check_output_file(path, what)
    path = osp.abspath(path)
    temporary = osp.join(osp.dirname(path), f'.{osp.basename(path)}.{os.getpid()}.tmp')
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        raise OutputFileError(f'cannot write {what} {path}: {_reason(error)}') from error
    finally:
        if osp.exists(temporary):
            os.remove(temporary)

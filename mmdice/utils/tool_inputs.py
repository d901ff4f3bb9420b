"""Input files of the command-line tools, read up front.

A missing, truncated or unparsable config or checkpoint is reported as one
line naming the file and the reason (:class:`InputFileError`), which the
tools print before exiting with status 1, instead of a traceback from deep
inside torch.load or mmengine's Runner.
"""
import os
import os.path as osp
import pickle
import tempfile
import zipfile

import torch

__all__ = ['InputFileError', 'OutputFileError', 'check_output_file', 'load_config', 'read_checkpoint']


class InputFileError(ValueError):
    """An input file of a tool that cannot be used; the message names the file and why."""


class OutputFileError(ValueError):
    """An output path of a tool that cannot be written; the message names the path and why."""


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


def check_output_file(path: str) -> None:
    """Make the folder of the output file ``path`` and write a probe file in it,
    so that a tool fails before its work, not after; OutputFileError naming the
    path and why otherwise."""
    if osp.isdir(path):
        raise OutputFileError(f'cannot write {path}: it is a directory')
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputFileError(
            f'cannot write to {folder}: {error.strerror or _reason(error)}') from error

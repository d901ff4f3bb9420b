"""The one fused-kernel-or-reference decision (mmdice.ops.extension) and its per-op policies."""
import importlib
from pathlib import Path

import pytest
import torch

from mmdice.ops.extension import (BATCH_NORM_PRELU, DICE_FUSE, DICE_FUSE_EPILOGUE, DIM_CONV,
                                  DIM_CONV_RESAMPLED, EXT_AVAILABLE, SHUFFLE_GATED_CONCAT,
                                  GraphCapture, graph_capture, use_fused_kernel)

extension = importlib.import_module('mmdice.ops.extension')
requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
PACKAGE = Path(extension.__file__).resolve().parents[1]

EAGER = GraphCapture(compiling=False, tracing=False, exporting=False)
COMPILE = GraphCapture(compiling=True, tracing=False, exporting=False)
TRACE = GraphCapture(compiling=False, tracing=True, exporting=False)
EXPORT = GraphCapture(compiling=True, tracing=False, exporting=True)


def test_graph_capture_queries_live_in_the_extension_module_only():
    queries = ('is_compiling', 'is_tracing', 'is_exporting')
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob('*.py')
                   if any(query in path.read_text(encoding='utf-8') for query in queries))
    assert users == ['ops/extension.py']


def test_eager_code_is_no_graph_capture():
    assert graph_capture() == EAGER


@pytest.mark.parametrize('policy,runs', [
    (DIM_CONV, (True, True, True, True)),
    (DIM_CONV_RESAMPLED, (True, True, False, False)),
    (DICE_FUSE, (True, True, True, True)),
    (DICE_FUSE_EPILOGUE, (True, True, True, True)),
    (BATCH_NORM_PRELU, (True, True, False, False)),
    (SHUFFLE_GATED_CONCAT, (True, False, False, False)),
], ids=lambda value: getattr(value, 'op', None))
def test_policies_name_the_captures_each_kernel_runs_under(policy, runs):
    assert tuple(policy.runs_under(capture)
                 for capture in (EAGER, COMPILE, TRACE, EXPORT)) == runs


@requires_ext
@pytest.mark.parametrize('capture,at_build_size,resampled', [
    (EAGER, True, True), (COMPILE, True, True), (TRACE, True, False), (EXPORT, True, False)])
def test_dim_conv_off_the_build_size_is_recorded_as_the_reference(monkeypatch, capture,
                                                                  at_build_size, resampled):
    monkeypatch.setattr(extension, 'graph_capture', lambda: capture)
    x = torch.randn(1, 2, 4, 4)
    assert use_fused_kernel(DIM_CONV, (x, )) == at_build_size
    assert use_fused_kernel(DIM_CONV_RESAMPLED, (x, )) == resampled


@requires_ext
def test_dtype_device_layout_and_grad_mode_rules():
    x = torch.randn(2, 3, 4, 4)
    assert use_fused_kernel(BATCH_NORM_PRELU, (x, ), (torch.ones(3), None))
    assert not use_fused_kernel(BATCH_NORM_PRELU, (x.half(), ))
    assert not use_fused_kernel(BATCH_NORM_PRELU, (x, ), (torch.ones(3, dtype=torch.float64), ))
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert not use_fused_kernel(BATCH_NORM_PRELU, (channels_last, ))
    assert not use_fused_kernel(BATCH_NORM_PRELU, (x[:0], ))
    assert not use_fused_kernel(BATCH_NORM_PRELU, (x[0], ))
    with torch.no_grad():
        assert use_fused_kernel(SHUFFLE_GATED_CONCAT, (channels_last, channels_last))
        assert not use_fused_kernel(SHUFFLE_GATED_CONCAT, (x, x))
    assert not use_fused_kernel(SHUFFLE_GATED_CONCAT, (channels_last, channels_last))
    assert use_fused_kernel(DIM_CONV, (x.bfloat16(), ))


@requires_ext
def test_missing_kernel_for_a_device_type_runs_the_reference(monkeypatch):
    monkeypatch.setitem(extension.KERNEL_DEVICE_TYPES, 'dice_fuse', frozenset())
    assert not use_fused_kernel(DICE_FUSE, (torch.randn(1, 2, 3, 3), ))
    assert use_fused_kernel(DICE_FUSE_EPILOGUE, (torch.randn(1, 6, 3, 3), ))

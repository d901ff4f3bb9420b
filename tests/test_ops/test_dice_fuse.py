"""Tests of the fused DiCE op: the kernels against the pure-PyTorch reference
(DimConv reference + the folded training-form epilogue written with standard
operators) and against the formula evaluated branch by branch."""
import importlib

import pytest
import torch

from mmdice.ops import (EXT_AVAILABLE, DimConvFuse2d, dice_fuse, dice_fuse_epilogue,
                        dice_fuse_epilogue_reference, dice_fuse_reference, dim_conv_reference)

# The module itself (``mmdice.ops.dim_conv`` the attribute is the function).
dim_conv_module = importlib.import_module('mmdice.ops.dim_conv')
requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 3e-2}


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_unit(channels, build_size, kernel_size=3, dilation=1, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    unit = DimConvFuse2d(channels, build_size, kernel_size, dilation)
    with torch.no_grad():
        for name in ('branch_scale', 'fuse_weight'):
            getattr(unit, name).uniform_(-1.5, 1.5)
        for name in ('branch_bias', 'fuse_bias'):
            getattr(unit, name).uniform_(-0.5, 0.5)
        for name in ('branch_slope', 'out_slope'):
            getattr(unit, name).uniform_(-0.3, 0.6)
    return unit.to(dtype)


def formula(x, unit):
    """The op's definition evaluated branch by branch in float64."""
    y = dim_conv_reference(x.double(), *(w.double() for w in unit.dim_weights()), unit.dilation)
    n, c3, h, w = y.shape
    y = y.reshape(n, c3 // 3, 3, h, w)
    scale, bias, slope, weight = (getattr(unit, name).double()[None, :, :, None, None]
                                  for name in ('branch_scale', 'branch_bias', 'branch_slope',
                                               'fuse_weight'))
    z = scale * y + bias
    z = torch.where(z > 0, z, slope * z)
    out = (weight * z).sum(2) + unit.fuse_bias.double()[None, :, None, None]
    return torch.where(out > 0, out, unit.out_slope.double()[None, :, None, None] * out)


def assert_close(actual, expected, dtype):
    scale = max(1.0, expected.abs().max().item())
    error = (actual.double() - expected.double()).abs().max().item()
    assert error <= TOLERANCES[dtype] * scale, f'max error {error:.3g} (scale {scale:.3g})'


def test_reference_matches_formula():
    unit = make_unit(6, (5, 7), dilation=(1, 2, 1), dtype=torch.float64)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    assert_close(dice_fuse_reference(x, *unit.dim_weights(), unit.dilation,
                                     *unit.coefficients()), formula(x, unit), torch.float64)


@requires_ext
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize('batch,channels,size,kernel_size,dilation', [
    (2, 24, (28, 28), 3, 1),
    (1, 64, (28, 28), 3, 1),       # several cache slabs per image, with halos
    (3, 116, (14, 14), 3, (2, 1, 3)),
    (2, 40, (7, 9), 5, 1),
    (1, 3, (2, 3), 3, 2),          # planes smaller than the kernel reach
    (2, 13, (9, 6), 3, 1),         # column blocks with a remainder, odd channels
    (2, 10, (9, 9), 7, 1),         # a kernel size the row kernel leaves to the slab kernel
])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_matches_formula(dtype, batch, channels, size, kernel_size, dilation,
                               channels_last):
    unit = make_unit(channels, size, kernel_size, dilation, dtype)
    x = torch.randn(batch, channels, *size).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = unit(x)
    assert out.dtype == dtype and out.shape == (batch, channels, *size)
    assert out.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert_close(out, formula(x, unit), dtype)


@requires_ext
def test_threads_agree():
    unit = make_unit(278, (28, 28))
    x = torch.randn(3, 278, 28, 28)
    with torch.no_grad():
        single = unit(x)
        torch.set_num_threads(2)
        assert torch.equal(unit(x), single)


@requires_ext
def test_other_sizes_run_the_fused_dynamic_path(monkeypatch):
    """Off the build size DimConv runs the fused op (banded kernels or
    resampling passes), not the reference, before the epilogue."""
    calls = []
    fused_dim_conv = dim_conv_module.fused_dim_conv

    def recording(*args):
        calls.append(args[0].shape)
        return fused_dim_conv(*args)

    monkeypatch.setattr(dim_conv_module, 'fused_dim_conv', recording)
    monkeypatch.setattr(dim_conv_module, 'dim_conv_reference', None)
    with torch.no_grad():
        make_unit(8, (6, 6))(torch.randn(2, 8, 14, 9))
    assert calls == [(2, 8, 14, 9)]


@pytest.mark.parametrize('size', [(12, 10), (3, 5)])
def test_other_sizes_resample_like_dim_conv(size):
    """Off the build size: DimConv's resampling, then the epilogue."""
    unit = make_unit(8, (6, 6))
    x = torch.randn(2, 8, *size)
    with torch.no_grad():
        expected = dice_fuse_epilogue_reference(
            dim_conv_reference(x, *unit.dim_weights(), unit.dilation), *unit.coefficients())
        assert_close(unit(x), expected, torch.float32)


@requires_ext
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_epilogue_kernel_matches_reference(dtype):
    unit = make_unit(10, (4, 4), dtype=dtype)
    dim_output = torch.randn(3, 30, 5, 6).to(dtype)
    out = dice_fuse_epilogue(dim_output, *unit.coefficients())
    expected = dice_fuse_epilogue_reference(dim_output.double(),
                                            *(c.double() for c in unit.coefficients()))
    assert_close(out, expected, dtype)


def test_bad_coefficients_are_named():
    unit = make_unit(4, 5)
    x = torch.randn(1, 4, 5, 5)
    coefficients = list(unit.coefficients())
    coefficients[2] = torch.zeros(4)
    with pytest.raises(ValueError, match=r'branch_slope must be a tensor of shape \(4, 3\)'):
        dice_fuse(x, *unit.dim_weights(), 1, *coefficients)
    coefficients = list(unit.coefficients())
    coefficients[5] = coefficients[5].double()
    with pytest.raises(ValueError, match='out_slope is torch.float64'):
        dice_fuse(x, *unit.dim_weights(), 1, *coefficients)
    with pytest.raises(ValueError, match=r'dim_output must be a 4-D tensor \(N, 3C, H, W\)'):
        dice_fuse_epilogue(torch.zeros(1, 4, 2, 2), *unit.coefficients())
    with pytest.raises(ValueError, match='build_size'):
        DimConvFuse2d(4, (5, 0))


@requires_ext
def test_ops_have_fake_kernels():
    """Schema and fake (meta) kernels fit the real ones, so torch.compile traces them."""
    unit = make_unit(6, (4, 5))
    x = torch.randn(2, 6, 4, 5)
    coefficients = [c.detach() for c in unit.coefficients()]
    weights = [w.detach() for w in unit.dim_weights()]
    utils = ('test_schema', 'test_faketensor')
    for layout in (torch.contiguous_format, torch.channels_last):
        for channels_last_output in (False, True):
            torch.library.opcheck(torch.ops.mmdice.dice_fuse.default,
                                  (x.contiguous(memory_format=layout), *weights, [1, 1, 1],
                                   *coefficients, channels_last_output), test_utils=utils)
    torch.library.opcheck(torch.ops.mmdice.dice_fuse_epilogue.default,
                          (torch.randn(2, 18, 4, 5), *coefficients), test_utils=utils)


"""Tests of the deploy form's shuffled concatenations against cat + channel shuffle."""
import pytest
import torch

from mmdice.ops import EXT_AVAILABLE, shuffle_gated_concat, shuffle_gated_concat_reference

requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')


def shuffle_inputs(batch=3, channels=13, size=(5, 7), dtype=torch.float32):
    torch.manual_seed(0)
    whole = torch.randn(batch, 2 * channels, *size, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    branch = torch.randn(batch, channels, *size, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    slope = torch.rand(channels, dtype=dtype) - 0.3
    gate = torch.rand(batch, channels, 1, 1, dtype=dtype)
    return whole[:, channels:], branch, slope, gate  # left: a channel slice, as in a block


@requires_ext
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('channels,size', [(13, (5, 7)), (16, (1, 1)), (139, (4, 4))])
def test_shuffle_gated_concat_matches_reference(dtype, channels, size):
    inputs = shuffle_inputs(channels=channels, size=size, dtype=dtype)
    with torch.no_grad():
        out = shuffle_gated_concat(*inputs)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, shuffle_gated_concat_reference(*inputs), rtol=0, atol=0)
    left, branch, slope, gate = inputs
    assert torch.equal(out[:, 0::2], left)
    torch.testing.assert_close(out[:, 1::2], torch.nn.functional.prelu(branch, slope) * gate)


@requires_ext
def test_shuffle_gated_concat_other_layouts_and_autograd_use_the_reference():
    left, branch, slope, gate = shuffle_inputs()
    expected = shuffle_gated_concat_reference(left, branch, slope, gate)
    torch.testing.assert_close(shuffle_gated_concat(left.contiguous(), branch.contiguous(), slope,
                                                    gate), expected)
    branch = branch.requires_grad_()
    out = shuffle_gated_concat(left, branch, slope, gate)
    out.sum().backward()  # grad mode: the differentiable reference
    assert branch.grad is not None


@requires_ext
def test_shuffle_gated_concat_opcheck_and_errors():
    left, branch, slope, gate = shuffle_inputs()
    torch.library.opcheck(torch.ops.mmdice.shuffle_gated_concat.default,
                          (left, branch, slope, gate),
                          test_utils=('test_schema', 'test_faketensor'))
    with pytest.raises(ValueError, match='slope'):
        shuffle_gated_concat(left, branch, slope[:-1], gate)
    with pytest.raises(ValueError, match='left must be a 4-D tensor'):
        shuffle_gated_concat(left[0], branch, slope, gate)
    with pytest.raises(RuntimeError, match='channels-last'):
        torch.ops.mmdice.shuffle_gated_concat(left.contiguous(), branch, slope, gate)

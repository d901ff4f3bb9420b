"""Tests of DimConv on inputs of another size than the build size: the banded
kernels and resampling passes of mmdice.ops.dynamic_scaling and the fused op
that runs them, against the reference's resample / convolve / resample-back
path; and the op's left-out branches (weights with no kernels)."""
import pytest
import torch

from mmdice.ops import EXT_AVAILABLE, dim_conv, dim_conv_reference
from mmdice.ops.dynamic_scaling import (MAX_FUSED_BAND, band_kernels, band_size, fused_dim_conv,
                                        resampling_matrix, resize_axis)

requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
DEVICES = ['cpu', pytest.param('cuda', marks=requires_cuda)]

# (channels, build size Hm = Wm) of DiCENet's three stages at widen factors 1.0 and 2.4,
# and the feature sizes of their inputs at 300, 512, 256 and 384 pixels (SSD, segmentation).
STAGES = [(116, 28), (232, 14), (464, 7), (278, 28), (556, 14), (1112, 7)]
RUN_SIZES = {28: (38, 64, 32, 48), 14: (19, 32, 16, 24), 7: (10, 16, 8, 12)}


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_inputs(batch, channels, size, build_size, kernel_size, dtype, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=generator, dtype=torch.float64)
    weights = [
        torch.randn(rows, 1, kernel_size, kernel_size, generator=generator,
                    dtype=torch.float64) / kernel_size for rows in (channels, *build_size)
    ]
    return [t.to(device=device, dtype=dtype).requires_grad_() for t in (x, *weights)]


def output_and_grads(fn, inputs, grad_output=None):
    output = fn(*inputs)
    if grad_output is None:
        grad_output = torch.randn(output.shape, generator=torch.Generator().manual_seed(1),
                                  dtype=output.dtype).to(output.device)
    return output, torch.autograd.grad(output, inputs, grad_output), grad_output


@pytest.mark.parametrize('size_in,size_out', [(7, 12), (12, 7), (38, 28), (28, 64), (1, 4),
                                              (5, 1), (6, 6)])
def test_resampling_matrix_is_resize_axis(size_in, size_out):
    x = torch.randn(2, 3, size_in, 4, dtype=torch.float64)
    matrix = resampling_matrix(size_in, size_out)
    assert matrix.shape == (size_out, size_in)
    expected = resize_axis(x, 2, size_out)
    torch.testing.assert_close(torch.einsum('ij,ncjw->nciw', matrix, x), expected)
    torch.testing.assert_close(
        torch.einsum('ij,nchj->nchi', matrix, x.transpose(2, 3)), expected.transpose(2, 3))


@pytest.mark.parametrize('build_size,size,band', [(28, 28, 1), (28, 38, 5), (28, 64, 9),
                                                  (28, 48, 7), (7, 16, 7), (7, 8, 3), (6, 4, 3)])
def test_band_size(build_size, size, band):
    assert band_size(build_size, size) == band


def test_band_kernels_same_size_is_the_weight():
    weight = torch.randn(6, 1, 3, 3)
    assert band_kernels(weight, 6) is weight


@pytest.mark.parametrize('build_size,size,band', [(28, 38, 5), (28, 64, 9), (7, 10, 5),
                                                  (28, 20, 3)])
def test_band_kernels_shape_and_rows(build_size, size, band):
    """Entry [i, t] of the band is M[i, i + t - R] of M = U diag(K) D, zero outside [0, H)."""
    weight = torch.randn(build_size, 1, 3, 3, dtype=torch.float64)
    kernels = band_kernels(weight, size)
    assert kernels.shape == (size, band, 3, 3)
    down, up = resampling_matrix(size, build_size), resampling_matrix(build_size, size)
    effective = torch.einsum('ir,rab,rj->ijab', up, weight[:, 0], down)
    radius = band // 2
    for i in (0, size // 2, size - 1):
        for t in range(band):
            j = i + t - radius
            expected = effective[i, j] if 0 <= j < size else torch.zeros(3, 3, dtype=weight.dtype)
            torch.testing.assert_close(kernels[i, t], expected)
    assert torch.count_nonzero(effective.abs().sum((2, 3))) == torch.count_nonzero(
        kernels.abs().sum((2, 3)))


# (size, build size): the band of each axis (B <= MAX_FUSED_BAND: banded kernels,
# wider: resampling passes) is in the id.
SCALED_SIZES = [
    ((9, 10), (6, 6)),  # both axes pooled to the build size and interpolated back, B 5, 5
    ((4, 3), (6, 7)),  # both axes interpolated up and pooled back, B 3, 3
    ((9, 4), (6, 7)),  # height down, width up, B 5, 3
    ((4, 11), (6, 5)),  # height up, width down, B 3, 7
    ((6, 11), (6, 5)),  # height at the build size, width down, B 1, 7
    ((11, 12), (5, 4)),  # both wide bands, B 7, 9
    ((11, 4), (4, 7)),  # height wide band, width up, B 9, 3
]
SCALED_IDS = ['down-b5-b5', 'up-b3-b3', 'h-down-w-up-b5-b3', 'h-up-w-down-b3-b7',
              'w-only-b1-b7', 'down-b7-b9', 'h-down-w-up-b9-b3']


def test_scaled_sizes_cover_both_regimes():
    bands = [band_size(b, s) for size, build in SCALED_SIZES for s, b in zip(size, build)]
    assert min(bands) == 1 and max(bands) > MAX_FUSED_BAND >= 3
    assert any(3 <= band <= MAX_FUSED_BAND for band in bands)


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('size,build_size', SCALED_SIZES, ids=SCALED_IDS)
@pytest.mark.parametrize('kernel_size,dilation', [(3, (1, 1, 1)), (3, (1, 2, 3)),
                                                  (5, (1, 1, 2))], ids=['k3', 'k3-d123', 'k5'])
def test_gradcheck(device, size, build_size, kernel_size, dilation):
    inputs = make_inputs(2, 4, size, build_size, kernel_size, torch.float64, device)
    assert torch.autograd.gradcheck(lambda *t: dim_conv(*t, dilation), inputs, fast_mode=True)


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('size,build_size', SCALED_SIZES, ids=SCALED_IDS)
def test_float64_matches_reference(device, size, build_size):
    inputs = make_inputs(2, 5, size, build_size, 3, torch.float64, device)
    output, grads, grad_output = output_and_grads(lambda *t: dim_conv(*t, (1, 2, 1)), inputs)
    expected, expected_grads, _ = output_and_grads(lambda *t: dim_conv_reference(*t, (1, 2, 1)),
                                                   inputs, grad_output)
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-12)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-11)


@requires_ext
@pytest.mark.parametrize('channels,build_size', STAGES, ids=[f'{c}x{s}' for c, s in STAGES])
def test_float32_matches_reference_at_detection_and_segmentation_sizes(channels, build_size):
    """Every benchmarked (stage, run size), forward and backward, batch 1."""
    for size in RUN_SIZES[build_size]:
        inputs = make_inputs(1, channels, (size, size), (build_size, build_size), 3,
                             torch.float32, 'cpu', seed=size)
        output, grads, grad_output = output_and_grads(dim_conv, inputs)
        expected, expected_grads, _ = output_and_grads(dim_conv_reference, inputs, grad_output)
        for name, actual, wanted in zip(
                ('output', 'input', 'weight_depth', 'weight_height', 'weight_width'),
            (output, *grads), (expected, *expected_grads)):
            scale = max(1.0, wanted.abs().max().item())
            error = (actual - wanted).abs().max().item()
            assert error <= 1e-5 * scale, f'{name} at {size}: error {error:.3g} x {scale:.3g}'


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kept', [(True, False, False), (False, True, False), (False, False, True),
                                  (True, True, False), (False, True, True)],
                         ids=['depth', 'height', 'width', 'depth-height', 'height-width'])
def test_left_out_branches_are_zero_and_skip_their_gradients(device, kept):
    """A weight with no kernels (dim 1 = 0) leaves its branch out of the op."""
    x, *weights = [t.detach() for t in make_inputs(2, 5, (6, 7), (6, 7), 3, torch.float64,
                                                   device)]
    given = [w if keep else w[:, :0] for w, keep in zip(weights, kept)]
    output = torch.ops.mmdice.dim_conv(x, *given, [1, 2, 1])
    full = torch.ops.mmdice.dim_conv(x, *weights, [1, 2, 1])
    grad_output = torch.randn_like(full)
    masked_grad_output = grad_output.clone()
    for branch, keep in enumerate(kept):
        expected = full[:, branch::3] if keep else torch.zeros_like(full[:, branch::3])
        torch.testing.assert_close(output[:, branch::3], expected, rtol=0, atol=0)
        if not keep:
            masked_grad_output[:, branch::3] = 0
    all_grads = [True] * 4
    grads = torch.ops.mmdice.dim_conv_backward(grad_output, x, *given, [1, 2, 1], all_grads)
    expected_grads = torch.ops.mmdice.dim_conv_backward(masked_grad_output, x, *weights,
                                                        [1, 2, 1], all_grads)
    torch.testing.assert_close(grads[0], expected_grads[0], rtol=0, atol=1e-12)
    for grad, expected, weight in zip(grads[1:], expected_grads[1:], given):
        assert grad.shape == weight.shape
        if weight.shape[1]:
            torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


@requires_ext
@pytest.mark.parametrize('bands', [(1, 5, 3), (0, 7, 0), (1, 0, 1)],
                         ids=['banded', 'height-only-wide', 'height-left-out'])
def test_opcheck_banded_and_left_out_weights(bands):
    """Schema, fake kernels (they accept the banded and empty weights the
    kernels accept), autograd and AOT dispatch with the weights the dynamic
    path passes, for every output mask of the backward."""
    torch.manual_seed(0)
    n, c, h, w = 2, 3, 5, 6
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    weights = [torch.randn(rows, band, 3, 3, dtype=torch.float64)
               for rows, band in zip((c, h, w), bands)]
    torch.library.opcheck(torch.ops.mmdice.dim_conv.default,
                          (x.requires_grad_(), *(t.requires_grad_() for t in weights),
                           [1, 2, 1]))
    grad_output = torch.randn(n, 3 * c, h, w, dtype=torch.float64)
    for output_mask in ([True] * 4, [True, False, False, False], [False, True, True, True]):
        torch.library.opcheck(torch.ops.mmdice.dim_conv_backward.default,
                              (grad_output, x.detach(), *(t.detach() for t in weights),
                               [1, 2, 1], output_mask))


@requires_ext
@pytest.mark.parametrize('weight_height,message', [
    ((5, 2, 3, 3), r'weight_height must have shape \(5, 0 or an odd band, 3, 3\)'),
    ((5, 1, 3, 3), None),
])
def test_fake_kernel_checks_bands(weight_height, message):
    """An even band is rejected by the fake kernel as by the C++ one; a
    depth-wise weight has 0 or 1 kernels per channel."""
    x = torch.empty(2, 4, 5, 6, device='meta')
    weight_depth = torch.empty(4, 1, 3, 3, device='meta')
    weight_width = torch.empty(6, 5, 3, 3, device='meta')
    height = torch.empty(weight_height, device='meta')
    if message is None:
        assert torch.ops.mmdice.dim_conv(x, weight_depth, height, weight_width,
                                         [1, 1, 1]).shape == (2, 12, 5, 6)
    else:
        with pytest.raises(RuntimeError, match=message):
            torch.ops.mmdice.dim_conv(x, weight_depth, height, weight_width, [1, 1, 1])
    with pytest.raises(RuntimeError, match=r'weight_depth must have shape \(4, 0 or 1, 3, 3\)'):
        torch.ops.mmdice.dim_conv(x, torch.empty(4, 3, 3, 3, device='meta'),
                                  torch.empty(5, 1, 3, 3, device='meta'), weight_width,
                                  [1, 1, 1])


@requires_ext
def test_all_branches_left_out_raises():
    x = torch.zeros(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match='at least one weight'):
        torch.ops.mmdice.dim_conv(x, torch.zeros(2, 0, 3, 3), torch.zeros(3, 0, 3, 3),
                                  torch.zeros(4, 0, 3, 3), [1, 1, 1])


@requires_ext
def test_same_size_is_the_plain_op():
    x, *weights = [t.detach() for t in make_inputs(1, 3, (5, 6), (5, 6), 3, torch.float32,
                                                   'cpu')]
    torch.testing.assert_close(fused_dim_conv(x, *weights, [1, 1, 1]),
                               torch.ops.mmdice.dim_conv(x, *weights, [1, 1, 1]),
                               rtol=0, atol=0)


@requires_ext
def test_dynamo_traces_without_graph_breaks():
    """Height-wise as resampling passes (B = 9), width-wise as banded kernels (B = 3)."""
    inputs = [t.detach() for t in make_inputs(1, 3, (11, 4), (4, 7), 3, torch.float32, 'cpu')]
    explanation = torch._dynamo.explain(lambda *t: dim_conv(*t, (1, 1, 1)))(*inputs)
    torch._dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1

"""Tests of the DimConv op: the fused kernels against the pure-PyTorch reference,
against the authors' transpose-based DimConv written out here independently,
and against a direct shifted-sum evaluation of the DimConv formulas."""
import importlib
import itertools
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdice.ops import EXT_AVAILABLE, DimConv2d, dim_conv, dim_conv_reference

# The module itself (``mmdice.ops.dim_conv`` the attribute is the function).
dim_conv_module = importlib.import_module('mmdice.ops.dim_conv')
extension = importlib.import_module('mmdice.ops.extension')

requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')

DEVICES = ['cpu', pytest.param('cuda', marks=requires_cuda)]
DTYPES = {
    'cpu': (torch.float32, torch.float64, torch.bfloat16),
    'cuda': (torch.float32, torch.float16, torch.bfloat16, torch.float64),
}
DEVICE_DTYPES = [
    pytest.param(device, dtype, marks=[requires_cuda] if device == 'cuda' else [],
                 id=f'{device}-{str(dtype).split(".")[1]}')
    for device in ('cpu', 'cuda') for dtype in DTYPES[device]
]
# output_mask of mmdice::dim_conv_backward: all four gradients.
ALL_GRADS = [True] * 4
# Which of (input, weight_depth, weight_height, weight_width) need a gradient:
# all, none, the input only (frozen weights), the weights only, one weight.
GRADIENT_SUBSETS = [(True, True, True, True), (False, False, False, False),
                    (True, False, False, False), (False, True, True, True),
                    (False, False, True, False)]
# Largest allowed error relative to max(1, largest expected magnitude).
TOLERANCES = {
    torch.float64: 1e-10,
    torch.float32: 1e-5,
    torch.float16: 5e-3,
    torch.bfloat16: 2e-2,
}


@pytest.fixture(autouse=True)
def single_thread():
    """Run on one CPU thread (tiny inputs; immune to a busy machine); see
    test_threads_agree for the multi-threaded path."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_close_scaled(actual, expected, dtype, name):
    """Max abs error of ``actual`` within the dtype tolerance times the size of ``expected``."""
    assert actual.shape == expected.shape, f'{name}: shape {actual.shape} != {expected.shape}'
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    error = (actual.double() - expected.double()).abs().max().item() if expected.numel() else 0.0
    assert error <= TOLERANCES[dtype] * scale, \
        f'{name}: max error {error:.3g} exceeds {TOLERANCES[dtype]} x {scale:.3g}'


def make_inputs(batch, channels, size, build_size, kernel_size, dtype, device, seed=0):
    """Input (N, C, H, W) and weights (C | Hm | Wm, 1, k, k), rounded to ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=generator, dtype=torch.float64)
    weights = [
        torch.randn(rows, 1, kernel_size, kernel_size, generator=generator,
                    dtype=torch.float64) / kernel_size
        for rows in (channels, *build_size)
    ]
    return [t.to(device=device, dtype=dtype) for t in (x, *weights)]


def values_and_grads(fn, tensors, grad_output=None, dtype=None):
    """fn(*tensors) and the gradients of <fn(...), grad_output> w.r.t. all tensors."""
    leaves = [t.detach().to(dtype or t.dtype).requires_grad_() for t in tensors]
    output = fn(*leaves)
    if grad_output is None:
        grad_output = torch.randn_like(output)
    grads = torch.autograd.grad(output, leaves, grad_output.to(output.dtype))
    return output.detach(), grads, grad_output


def shifted_sum_dim_conv(x, weight_depth, weight_height, weight_width, dilation):
    """DimConv straight from its formulas, one shifted slice per tap (input size = build size).

    y_D[n,c,h,w] = sum Wd[c,a,b] x[n,c,h+oa,w+ob]; y_H[n,c,h,w] = sum Wh[h,a,b] x[n,c+oa,h,w+ob];
    y_W[n,c,h,w] = sum Ww[w,a,b] x[n,c+ob,h+oa,w]; output channel 3c+{0,1,2} = {y_D,y_H,y_W}[c].
    """
    n, c, h, w = x.shape
    k = weight_depth.shape[-1]
    reach = (k - 1) // 2 * max(dilation)
    padded = F.pad(x, (reach, ) * 6)  # zero padding of W, H and C

    def window(dc, dh, dw):  # x[:, c + dc, h + dh, w + dw] for all c, h, w
        return padded[:, reach + dc:reach + dc + c, reach + dh:reach + dh + h,
                      reach + dw:reach + dw + w]

    branches = [torch.zeros_like(x) for _ in range(3)]
    d_depth, d_height, d_width = dilation
    for a, b in itertools.product(range(k), repeat=2):
        i, j = a - (k - 1) // 2, b - (k - 1) // 2
        branches[0] += weight_depth[:, 0, a, b].view(1, c, 1, 1) * window(0, i * d_depth,
                                                                          j * d_depth)
        branches[1] += weight_height[:, 0, a, b].view(1, 1, h, 1) * window(
            i * d_height, 0, j * d_height)
        branches[2] += weight_width[:, 0, a, b].view(1, 1, 1, w) * window(
            j * d_width, i * d_width, 0)
    return torch.stack(branches, dim=2).reshape(n, 3 * c, h, w)


def channel_shuffle(x, groups):
    """The authors' Shuffle(groups): view, transpose, contiguous, view."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


class AuthorsDimConv(nn.Module):
    """DimConv of the authors' DICE unit: grouped convs on transposed copies.

    ``dilation`` is in the authors' order [channel, width, height].
    """

    def __init__(self, channels, height, width, kernel_size, dilation):
        super().__init__()

        def grouped_conv(groups, rate):
            return nn.Conv2d(groups, groups, kernel_size, padding=(kernel_size - 1) // 2 * rate,
                             dilation=rate, groups=groups, bias=False)

        self.conv_channel = grouped_conv(channels, dilation[0])
        self.conv_width = grouped_conv(width, dilation[1])
        self.conv_height = grouped_conv(height, dilation[2])
        self.height = height
        self.width = width

    @staticmethod
    def resize(x, size):
        if tuple(x.shape[2:]) == tuple(size):
            return x
        if x.shape[2] < size[0] or x.shape[3] < size[1]:
            return F.interpolate(x, mode='bilinear', size=size, align_corners=True)
        return F.adaptive_avg_pool2d(x, output_size=size)

    def forward(self, x):
        _, _, height, width = x.size()
        out_ch_wise = self.conv_channel(x)

        x_h_wise = self.resize(x.clone(), (self.height, width)).transpose(1, 2).contiguous()
        out_h_wise = self.conv_height(x_h_wise).transpose(1, 2).contiguous()
        out_h_wise = self.resize(out_h_wise, (height, width))

        x_w_wise = self.resize(x.clone(), (height, self.width)).transpose(1, 3).contiguous()
        out_w_wise = self.conv_width(x_w_wise).transpose(1, 3).contiguous()
        out_w_wise = self.resize(out_w_wise, (height, width))

        return channel_shuffle(torch.cat((out_ch_wise, out_h_wise, out_w_wise), 1), 3)


def authors_dim_conv(x, weight_depth, weight_height, weight_width, dilation):
    """AuthorsDimConv with the given weights (differentiable in all four tensors)."""
    d_depth, d_height, d_width = dilation
    module = AuthorsDimConv(x.shape[1], weight_height.shape[0], weight_width.shape[0],
                            weight_depth.shape[-1], [d_depth, d_width, d_height])
    weights = {'conv_channel.weight': weight_depth, 'conv_height.weight': weight_height,
               'conv_width.weight': weight_width}
    return torch.func.functional_call(module.to(x.device, x.dtype), weights, (x, ))


def count_calls(monkeypatch, name):
    """Replace ``mmdice.ops.dim_conv.<name>`` by a wrapper; returns its list of calls."""
    calls = []
    original = getattr(dim_conv_module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(dim_conv_module, name, wrapper)
    return calls


def fused_or_reference(x, weight_depth, weight_height, weight_width, dilation):
    """The fused kernel itself when the sizes allow it, else ``dim_conv``."""
    if x.shape[2:] == (weight_height.shape[0], weight_width.shape[0]) and EXT_AVAILABLE:
        return torch.ops.mmdice.dim_conv(x, weight_depth, weight_height, weight_width,
                                         list(dilation))
    return dim_conv(x, weight_depth, weight_height, weight_width, dilation)


@requires_ext
@pytest.mark.parametrize('device,dtype', DEVICE_DTYPES)
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('channels', [1, 3, 116])
@pytest.mark.parametrize('size', [(7, 7), (6, 9)], ids=['7x7', '6x9'])
@pytest.mark.parametrize('kernel_size', [3, 5])
@pytest.mark.parametrize('dilation', [(1, 1, 1), (1, 2, 3)], ids=['d111', 'd123'])
def test_fused_matches_reference(device, dtype, batch, channels, size, kernel_size, dilation):
    inputs = make_inputs(batch, channels, size, size, kernel_size, dtype, device)
    output, grads, grad_output = values_and_grads(
        lambda *t: torch.ops.mmdice.dim_conv(*t, list(dilation)), inputs)
    expected, expected_grads, _ = values_and_grads(
        lambda *t: dim_conv_reference(*t, dilation), inputs, grad_output, torch.float64)
    assert output.dtype == dtype and output.is_contiguous()
    assert_close_scaled(output, expected, dtype, 'output')
    for name, grad, expected_grad in zip(('input', 'weight_depth', 'weight_height',
                                          'weight_width'), grads, expected_grads):
        assert grad.dtype == dtype
        assert_close_scaled(grad, expected_grad, dtype, f'grad of {name}')
    # dim_conv dispatches same-size inputs to this very kernel.
    assert torch.equal(dim_conv(*inputs, dilation), output)


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel_size,dilation', [(1, (1, 1, 1)), (3, (1, 1, 1)), (3, (2, 3, 1)),
                                                  (5, (1, 2, 3)), (7, (1, 1, 1))])
def test_fused_matches_shifted_sum(device, kernel_size, dilation):
    inputs = make_inputs(2, 5, (6, 8), (6, 8), kernel_size, torch.float64, device, seed=1)
    expected = shifted_sum_dim_conv(*inputs, dilation)
    assert_close_scaled(torch.ops.mmdice.dim_conv(*inputs, list(dilation)), expected,
                        torch.float64, 'fused')
    assert_close_scaled(dim_conv_reference(*inputs, dilation), expected, torch.float64,
                        'reference')


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('size', [(9, 3), (3, 9), (5, 2), (1, 1), (4, 16), (3, 28)],
                         ids=lambda size: f'{size[0]}x{size[1]}')
@pytest.mark.parametrize('kernel_size,dilation', [(3, (3, 1, 3)), (5, (2, 3, 2))])
def test_fused_matches_on_narrow_planes(device, size, kernel_size, dilation):
    """Shifts as wide as the plane or wider (taps that read only zero padding),
    planes smaller than one block, and rows that are already multiples of 8."""
    inputs = make_inputs(2, 6, size, size, kernel_size, torch.float64, device, seed=2)
    output, grads, grad_output = values_and_grads(
        lambda *t: torch.ops.mmdice.dim_conv(*t, list(dilation)), inputs)
    assert_close_scaled(output, shifted_sum_dim_conv(*inputs, dilation), torch.float64, 'output')
    _, expected_grads, _ = values_and_grads(lambda *t: dim_conv_reference(*t, dilation), inputs,
                                            grad_output)
    for name, grad, expected in zip(('input', 'weight_depth', 'weight_height', 'weight_width'),
                                    grads, expected_grads):
        assert_close_scaled(grad, expected, torch.float64, f'grad of {name}')


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('size,build_size', [((7, 7), (9, 5)), ((6, 9), (4, 12)),
                                             ((8, 5), (8, 7))])
@requires_ext
def test_scaled_input_uses_fused_path(monkeypatch, device, size, build_size):
    """Inputs of another size than the build size run the fused op (banded
    kernels or resampling passes), not the reference, and match the authors'
    resize-transpose-convolve DimConv."""
    reference_calls = count_calls(monkeypatch, 'dim_conv_reference')
    fused_calls = count_calls(monkeypatch, 'fused_dim_conv')
    inputs = make_inputs(2, 3, size, build_size, 3, torch.float64, device)
    output, grads, grad_output = values_and_grads(
        lambda *t: dim_conv(*t, (1, 2, 1)), inputs)
    assert (len(fused_calls), len(reference_calls)) == (1, 0)
    expected, expected_grads, _ = values_and_grads(
        lambda *t: authors_dim_conv(*t, (1, 2, 1)), inputs, grad_output)
    assert output.shape == (2, 9, *size)
    torch.testing.assert_close(output, expected)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('build_size,size', [
    ((28, 28), (28, 28)),  # fused kernel
    ((28, 28), (32, 32)),  # adaptive pooling down, bilinear up
    ((28, 28), (24, 24)),  # bilinear up, pooling down
    ((28, 28), (32, 20)),  # height pooled, width interpolated
    ((6, 9), (6, 9)),  # non-square build size, fused
    ((6, 9), (8, 5)),
])
@pytest.mark.parametrize('kernel_size,dilation', [(3, (1, 1, 1)), (5, (1, 2, 3))],
                         ids=['k3', 'k5-d123'])
def test_module_matches_authors_dim_conv(device, build_size, size, kernel_size, dilation):
    torch.manual_seed(0)
    module = DimConv2d(4, build_size, kernel_size, dilation).to(device, torch.float64)
    d_depth, d_height, d_width = dilation
    authors = AuthorsDimConv(4, *build_size, kernel_size,
                             [d_depth, d_width, d_height]).to(device, torch.float64)
    with torch.no_grad():
        authors.conv_channel.weight.copy_(module.weight_depth)
        authors.conv_height.weight.copy_(module.weight_height)
        authors.conv_width.weight.copy_(module.weight_width)
    x = torch.randn(2, 4, *size, device=device, dtype=torch.float64)
    output, (grad_x, ), grad_output = values_and_grads(module, [x])
    expected, (expected_grad_x, ), _ = values_and_grads(authors, [x], grad_output)
    assert output.shape == (2, 12, *size)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(grad_x, expected_grad_x)
    module.zero_grad()
    authors.zero_grad()
    module(x).backward(grad_output)
    authors(x).backward(grad_output)
    for ours, theirs in ((module.weight_depth, authors.conv_channel.weight),
                         (module.weight_height, authors.conv_height.weight),
                         (module.weight_width, authors.conv_width.weight)):
        torch.testing.assert_close(ours.grad, theirs.grad)


AUTOCAST_DTYPES = [
    pytest.param('cpu', torch.bfloat16, id='cpu-bfloat16'),
    pytest.param('cuda', torch.float16, marks=requires_cuda, id='cuda-float16'),
    pytest.param('cuda', torch.bfloat16, marks=requires_cuda, id='cuda-bfloat16'),
]


@pytest.mark.parametrize('device,dtype', AUTOCAST_DTYPES)
@pytest.mark.parametrize('size,build_size', [((7, 6), (7, 6)), ((8, 6), (7, 6))],
                         ids=['fused', 'resampled'])
def test_autocast_forward_backward(device, dtype, size, build_size):
    """Under torch.autocast float32 weights meet a low-precision input (the
    output of an autocast convolution): the op runs in the autocast dtype, and
    the float32 leaves get float32 gradients close to the float32 ones."""
    x, *weights = make_inputs(2, 5, size, build_size, 3, torch.float32, device)
    grad_output = torch.randn(2, 15, *size, device=device)
    expected, expected_grads, _ = values_and_grads(lambda *t: dim_conv(*t, (1, 2, 1)),
                                                   (x, *weights), grad_output)

    def autocast_dim_conv(x, *weights):
        with torch.autocast(device, dtype=dtype):
            return dim_conv(x.to(dtype), *weights, (1, 2, 1))

    output, grads, _ = values_and_grads(autocast_dim_conv, (x, *weights), grad_output)
    assert output.dtype == dtype
    assert_close_scaled(output, expected, dtype, 'output')
    for name, grad, expected_grad in zip(('input', 'weight_depth', 'weight_height',
                                          'weight_width'), grads, expected_grads):
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all(), name
        # the gradients sum products over the batch and plane: a few rounding steps each
        assert_close_scaled(grad, expected_grad, dtype, f'grad of {name}')


@pytest.mark.parametrize('device,dtype', AUTOCAST_DTYPES)
def test_autocast_leaves_float64_alone(device, dtype):
    """As autocast's conv2d: float64 tensors are not cast, and mixing them
    with float32 weights is still an error."""
    x, *weights = make_inputs(1, 3, (5, 5), (5, 5), 3, torch.float64, device)
    with torch.autocast(device, dtype=dtype):
        assert dim_conv(x, *weights).dtype == torch.float64
        with pytest.raises(ValueError, match='weight_depth has dtype .* input has torch.float64'):
            dim_conv(x, weights[0].float(), *weights[1:])


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel_size,dilation', [(1, (1, 1, 1)), (3, (1, 1, 1)),
                                                  (3, (1, 2, 3)), (5, (2, 1, 1)),
                                                  (7, (1, 1, 1))])
@pytest.mark.parametrize('requires_grad', [(True, True, True, True), (True, False, False, False),
                                           (False, True, True, True), (False, False, True, False)],
                         ids=['all', 'input', 'weights', 'weight_height'])
def test_gradcheck(device, kernel_size, dilation, requires_grad):
    inputs = [
        t.requires_grad_(needed) for t, needed in zip(
            make_inputs(2, 4, (5, 6), (5, 6), kernel_size, torch.float64, device),
            requires_grad)
    ]
    assert torch.autograd.gradcheck(lambda *t: torch.ops.mmdice.dim_conv(*t, list(dilation)),
                                    inputs, fast_mode=True)


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('shape,kernel_size,dilation', [((2, 3, 5, 4), 3, [1, 2, 1]),
                                                        ((1, 6, 7, 7), 5, [2, 1, 1]),
                                                        ((3, 2, 4, 6), 1, [1, 1, 1])])
def test_opcheck(device, shape, kernel_size, dilation):
    """Schema, autograd registration, fake kernels and AOT dispatch, for
    inputs that all, some or none need a gradient, and output masks to match."""
    n, c, h, w = shape
    tensors = make_inputs(n, c, (h, w), (h, w), kernel_size, torch.float64, device)
    for requires_grad in GRADIENT_SUBSETS:
        forward_args = [t.detach().requires_grad_(needed)
                        for t, needed in zip(tensors, requires_grad)]
        torch.library.opcheck(torch.ops.mmdice.dim_conv.default, (*forward_args, dilation))
    grad_output = torch.randn(n, 3 * c, h, w, device=device, dtype=torch.float64)
    for output_mask in GRADIENT_SUBSETS:
        torch.library.opcheck(torch.ops.mmdice.dim_conv_backward.default,
                              (grad_output, *tensors, dilation, list(output_mask)))


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
def test_backward_computes_only_the_masked_gradients(device):
    tensors = make_inputs(2, 5, (6, 7), (6, 7), 3, torch.float64, device)
    grad_output = torch.randn(2, 15, 6, 7, device=device, dtype=torch.float64)
    full = torch.ops.mmdice.dim_conv_backward(grad_output, *tensors, [1, 2, 1], ALL_GRADS)
    _, expected, _ = values_and_grads(lambda *t: dim_conv_reference(*t, (1, 2, 1)), tensors,
                                      grad_output)
    for name, grad, expected_grad in zip(('input', 'weight_depth', 'weight_height',
                                          'weight_width'), full, expected):
        assert_close_scaled(grad, expected_grad, torch.float64, name)
    for output_mask in itertools.product((False, True), repeat=4):
        grads = torch.ops.mmdice.dim_conv_backward(grad_output, *tensors, [1, 2, 1],
                                                   list(output_mask))
        for needed, grad, full_grad in zip(output_mask, grads, full):
            if needed:
                assert torch.equal(grad, full_grad)
            else:
                assert grad is None
    # without weight gradients the input is not read: an expanded scalar stands in for it
    stand_in = torch.zeros((), device=device, dtype=torch.float64).expand(tensors[0].shape)
    grad_input, *no_grads = torch.ops.mmdice.dim_conv_backward(
        grad_output, stand_in, *tensors[1:], [1, 2, 1], [True, False, False, False])
    assert torch.equal(grad_input, full[0]) and no_grads == [None] * 3


@requires_ext
@pytest.mark.parametrize('frozen,saves_input,mask', [
    ('weights', False, [True, False, False, False]),
    ('input', True, [False, True, True, True]),
    ('weight_height', True, [True, True, False, True]),
])
def test_autograd_saves_and_computes_only_what_is_needed(monkeypatch, frozen, saves_input,
                                                         mask):
    """Frozen weights (frozen stages) need no input saved and no weight
    gradients; an input that needs no gradient gets no grad_input."""
    x, *weights = make_inputs(2, 4, (5, 6), (5, 6), 3, torch.float64, 'cpu')
    names = ('input', 'weight_depth', 'weight_height', 'weight_width')
    leaves = [t.requires_grad_(not (name == frozen or frozen == 'weights' and name != 'input'))
              for name, t in zip(names, (x, *weights))]
    masks = []
    backward_op = torch.ops.mmdice.dim_conv_backward

    def recording_backward(*args):
        masks.append(args[-1])
        return backward_op(*args)

    output = dim_conv(*leaves, (1, 1, 2))
    assert (output.grad_fn.saved_tensors[0] is not None) == saves_input
    monkeypatch.setattr(torch.ops.mmdice, 'dim_conv_backward', recording_backward)
    grad_output = torch.randn_like(output)
    output.backward(grad_output)
    assert masks == [mask]
    _, expected, _ = values_and_grads(lambda *t: dim_conv_reference(*t, (1, 1, 2)), leaves,
                                      grad_output)
    for name, leaf, needed, expected_grad in zip(names, leaves, mask, expected):
        if needed:
            assert_close_scaled(leaf.grad, expected_grad, torch.float64, name)
        else:
            assert leaf.grad is None


@requires_ext
@pytest.mark.parametrize('change,message', [
    (dict(weight_height=(6, 1, 3, 3)),
     r'weight_height must have shape \(5, 0 or an odd band, 3, 3\)'),
    (dict(weight_width=(6, 1, 5, 5)),
     r'weight_width must have shape \(6, 0 or an odd band, 3, 3\)'),
    (dict(weight_depth=(3, 1, 3, 3)), r'weight_depth must have shape \(4, 0 or 1, 3, 3\)'),
    (dict(x=(4, 5, 6)), r'input must be \(N, C, H, W\)'),
])
def test_fake_kernel_checks_shapes(change, message):
    """The fake (meta) kernels reject what the C++ kernels reject."""
    shapes = dict(x=(2, 4, 5, 6), weight_depth=(4, 1, 3, 3), weight_height=(5, 1, 3, 3),
                  weight_width=(6, 1, 3, 3))
    shapes.update(change)
    tensors = [torch.empty(shape, device='meta') for shape in shapes.values()]
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmdice.dim_conv(*tensors, [1, 1, 1])
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmdice.dim_conv_backward(torch.empty(2, 12, 5, 6, device='meta'), *tensors,
                                           [1, 1, 1], ALL_GRADS)


@requires_ext
def test_fake_backward_checks_grad_output():
    tensors = [torch.empty(shape, device='meta')
               for shape in ((2, 4, 5, 6), (4, 1, 3, 3), (5, 1, 3, 3), (6, 1, 3, 3))]
    with pytest.raises(RuntimeError, match=r'grad_output must have shape \(2, 12, 5, 6\)'):
        torch.ops.mmdice.dim_conv_backward(torch.empty(2, 4, 5, 6, device='meta'), *tensors,
                                           [1, 1, 1], ALL_GRADS)


@requires_ext
@pytest.mark.parametrize('grad_output,message', [
    (lambda g: g[:, :6], r'grad_output must have shape \(N, 3C, H, W\) = \[2, 12, 5, 6\]'),
    (lambda g: g.unsqueeze(0), r'grad_output must have shape'),
    (lambda g: g.float(), r'grad_output dtype Float differs from input dtype Double'),
])
def test_backward_checks_grad_output(grad_output, message):
    tensors = make_inputs(2, 4, (5, 6), (5, 6), 3, torch.float64, 'cpu')
    good = torch.randn(2, 12, 5, 6, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmdice.dim_conv_backward(grad_output(good), *tensors, [1, 1, 1], ALL_GRADS)


@requires_ext
@requires_cuda
def test_backward_checks_grad_output_device():
    tensors = make_inputs(2, 4, (5, 6), (5, 6), 3, torch.float32, 'cuda')
    with pytest.raises(RuntimeError, match='grad_output is on cpu but input is on cuda'):
        torch.ops.mmdice.dim_conv_backward(torch.randn(2, 12, 5, 6), *tensors, [1, 1, 1],
                                           ALL_GRADS)


@requires_ext
@pytest.mark.parametrize('requires_grad', [(True, True, True, True), (True, False, False, False)],
                         ids=['all', 'frozen-weights'])
def test_torch_compile_matches_eager(requires_grad):
    """Dynamo and AOTAutograd trace the op, its fake kernels and its backward
    (backend 'aot_eager': no C++ toolchain needed, so nothing to skip)."""
    torch._dynamo.reset()
    inputs = make_inputs(2, 3, (6, 5), (6, 5), 3, torch.float64, 'cpu')
    compiled = torch.compile(lambda *t: dim_conv(*t, (1, 1, 2)), backend='aot_eager',
                             fullgraph=True)
    leaves = [t.requires_grad_(needed) for t, needed in zip(inputs, requires_grad)]
    output = compiled(*leaves)
    grad_output = torch.randn_like(output)
    output.backward(grad_output)
    _, expected_grads, _ = values_and_grads(lambda *t: dim_conv_reference(*t, (1, 1, 2)),
                                            leaves, grad_output)
    assert_close_scaled(output, dim_conv_reference(*inputs, (1, 1, 2)), torch.float64, 'output')
    for leaf, expected_grad in zip(leaves, expected_grads):
        if leaf.requires_grad:
            assert_close_scaled(leaf.grad, expected_grad, torch.float64, 'gradient')
        else:
            assert leaf.grad is None


@requires_ext
@pytest.mark.parametrize('device', DEVICES)
def test_backward_is_deterministic(device):
    inputs = make_inputs(3, 16, (7, 7), (7, 7), 3, torch.float32, device)
    grad_output = torch.randn(3, 48, 7, 7, device=device)
    first = torch.ops.mmdice.dim_conv_backward(grad_output, *inputs, [1, 1, 1], ALL_GRADS)
    second = torch.ops.mmdice.dim_conv_backward(grad_output, *inputs, [1, 1, 1], ALL_GRADS)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@requires_ext
def test_threads_agree():
    """Two threads split the planes into two chunks with their own partial
    weight gradients; the results match one thread and the reference."""
    inputs = make_inputs(4, 96, (14, 14), (14, 14), 3, torch.float64, 'cpu')
    grad_output = torch.randn(4, 288, 14, 14, dtype=torch.float64)
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results[threads] = (torch.ops.mmdice.dim_conv(*inputs, [1, 1, 2]),
                            *torch.ops.mmdice.dim_conv_backward(grad_output, *inputs, [1, 1, 2],
                                                                ALL_GRADS))
    _, expected_grads, _ = values_and_grads(lambda *t: dim_conv_reference(*t, (1, 1, 2)),
                                            inputs, grad_output)
    assert torch.equal(results[1][0], results[2][0])
    for one, two, expected in zip(results[1][1:], results[2][1:], expected_grads):
        torch.testing.assert_close(one, two, rtol=1e-12, atol=1e-12)
        assert_close_scaled(two, expected, torch.float64, 'two-thread gradient')


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('layout', ['transposed', 'sliced', 'channels_last'])
def test_non_contiguous_input(device, layout):
    x, *weights = make_inputs(2, 6, (7, 7), (7, 7), 3, torch.float32, device)
    if layout == 'transposed':
        strided = x.transpose(2, 3).contiguous().transpose(2, 3)
    elif layout == 'sliced':
        strided = torch.stack((x, x), dim=2).flatten(1, 2)[:, ::2]
    else:
        strided = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(strided, x) and not strided.is_contiguous()
    strided_weights = [w.transpose(2, 3).contiguous().transpose(2, 3) for w in weights]
    output = dim_conv(strided, *strided_weights, (1, 2, 1))
    torch.testing.assert_close(output, dim_conv(x, *weights, (1, 2, 1)), rtol=0, atol=0)
    assert output.is_contiguous()


@pytest.mark.parametrize('device', DEVICES)
def test_empty_batch(device):
    x, *weights = [
        t.requires_grad_() for t in make_inputs(0, 4, (5, 6), (5, 6), 3, torch.float32, device)
    ]
    output = dim_conv(x, *weights)
    assert output.shape == (0, 12, 5, 6)
    output.sum().backward()
    assert x.grad.shape == x.shape
    for weight in weights:
        assert torch.equal(weight.grad, torch.zeros_like(weight))


@pytest.mark.parametrize('kwargs,argument', [
    (dict(x=torch.zeros(4, 5, 6)), 'input'),
    (dict(x=torch.zeros(2, 4, 5, 6, dtype=torch.int64)), 'input'),
    (dict(weight_depth=torch.zeros(3, 1, 3, 3)), 'weight_depth'),
    (dict(weight_height=torch.zeros(5, 1, 3)), 'weight_height'),
    (dict(weight_width=torch.zeros(6, 2, 3, 3)), 'weight_width'),
    (dict(weight_width=torch.zeros(6, 1, 5, 5)), 'weight_width'),
    (dict(weight_depth=torch.zeros(4, 1, 2, 2), weight_height=torch.zeros(5, 1, 2, 2),
          weight_width=torch.zeros(6, 1, 2, 2)), 'kernel size'),
    (dict(weight_height=torch.zeros(5, 1, 3, 3, dtype=torch.float64)), 'weight_height'),
    (dict(dilation=0), 'dilation'),
    (dict(dilation=(1, 2)), 'dilation'),
    (dict(dilation=(1, 1.5, 1)), 'dilation'),
])
def test_bad_input_raises(kwargs, argument):
    args = dict(x=torch.zeros(2, 4, 5, 6), weight_depth=torch.zeros(4, 1, 3, 3),
                weight_height=torch.zeros(5, 1, 3, 3), weight_width=torch.zeros(6, 1, 3, 3))
    args.update(kwargs)
    for fn in (dim_conv, dim_conv_reference):
        with pytest.raises(ValueError, match=argument):
            fn(**args)


@requires_cuda
def test_device_mismatch_raises():
    with pytest.raises(ValueError, match='weight_depth.*device'):
        dim_conv(torch.zeros(2, 4, 5, 6, device='cuda'), torch.zeros(4, 1, 3, 3),
                 torch.zeros(5, 1, 3, 3, device='cuda'), torch.zeros(6, 1, 3, 3, device='cuda'))


@pytest.mark.parametrize('kwargs,argument', [
    (dict(channels=0), 'channels'),
    (dict(channels=2.0), 'channels'),
    (dict(build_size=(7, )), 'build_size'),
    (dict(build_size=(7, 0)), 'build_size'),
    (dict(kernel_size=4), 'kernel_size'),
    (dict(kernel_size=0), 'kernel_size'),
    (dict(dilation=(1, 0, 1)), 'dilation'),
])
def test_module_bad_arguments_raise(kwargs, argument):
    args = dict(channels=4, build_size=7)
    args.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        DimConv2d(**args)


def test_module_parameters_and_repr():
    module = DimConv2d(4, (6, 9), kernel_size=5, dilation=(1, 2, 3))
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == dict(weight_depth=(4, 1, 5, 5), weight_height=(6, 1, 5, 5),
                          weight_width=(9, 1, 5, 5))
    assert 'dilation=(1, 2, 3)' in repr(module)


def test_missing_extension_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(extension, 'EXT_AVAILABLE', False)
    monkeypatch.setattr(extension, '_fallback_warned', False)
    inputs = make_inputs(2, 3, (5, 6), (5, 6), 3, torch.float32, 'cpu')
    with pytest.warns(RuntimeWarning, match='mmdice._ext'):
        output = dim_conv(*inputs)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        dim_conv(*inputs)
    torch.testing.assert_close(output, dim_conv_reference(*inputs), rtol=0, atol=0)


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_double_backward_raises():
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(rows, 1, 3, 3, dtype=torch.float64) for rows in (4, 6, 6)]
    (grad, ) = torch.autograd.grad(dim_conv(x, *weights).sum(), x)
    assert grad.shape == x.shape
    with pytest.raises(NotImplementedError, match='double backward'):
        torch.autograd.grad(dim_conv(x, *weights).sum(), x, create_graph=True)


def test_device_without_kernel_uses_reference(monkeypatch):
    """A device type mmdice._ext has no kernel for (a CUDA tensor with a
    CPU-only build) runs the reference instead of failing in the dispatcher."""
    monkeypatch.setitem(extension.KERNEL_DEVICE_TYPES, 'dim_conv', frozenset())
    reference_calls = count_calls(monkeypatch, 'dim_conv_reference')
    x, *weights = make_inputs(2, 3, (5, 7), (5, 7), 3, torch.float64, 'cpu')
    assert not extension.use_fused_kernel(extension.DIM_CONV, (x, ), weights)
    output = dim_conv(x, *weights, (1, 2, 1))
    assert len(reference_calls) == 1
    assert_close_scaled(output, shifted_sum_dim_conv(x, *weights, (1, 2, 1)), torch.float64,
                        'output')


@pytest.mark.parametrize('version,supported', [('2.3.1', False), ('1.13.0+cu117', False),
                                               ('2.4.0', True), ('2.14.1+cpu', True),
                                               ('3.0.0a0', True), ('unknown', False)])
def test_torch_version_check(version, supported):
    if supported:
        extension.check_torch_version(version)
    else:
        with pytest.raises(ImportError, match=rf'needs torch >= 2.4.*found torch {re.escape(version)}'):
            extension.check_torch_version(version)

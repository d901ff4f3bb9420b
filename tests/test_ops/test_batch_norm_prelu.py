"""Tests of the fused BatchNorm + PReLU op against the stock operators."""
import pytest
import torch
from torch import nn

from mmdice.ops import EXT_AVAILABLE, batch_norm_prelu, batch_norm_prelu_reference

requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
TOLERANCES = {torch.float64: 1e-10, torch.float32: 2e-5}


def make_arguments(shape, dtype=torch.float32, seed=0, mean=0.5, std=2.0, slopes=None):
    """(x, running_mean, running_var, weight, bias, slope), parameters needing grad."""
    torch.manual_seed(seed)
    channels = shape[1]
    x = (torch.randn(shape, dtype=dtype) * std + mean).requires_grad_()
    running_mean = torch.randn(channels, dtype=dtype)
    running_var = torch.rand(channels, dtype=dtype) + 0.5
    weight = torch.randn(channels, dtype=dtype).requires_grad_()
    bias = torch.randn(channels, dtype=dtype).requires_grad_()
    slope = (torch.rand(slopes or channels, dtype=dtype) - 0.3).requires_grad_()
    return x, running_mean, running_var, weight, bias, slope


def assert_close(actual, expected, dtype):
    tolerance = TOLERANCES[dtype]
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)


def run_both(shape, dtype, training, slopes=None, **kwargs):
    """Outputs, gradients and running statistics of the fused and stock paths."""
    results = []
    for function in (batch_norm_prelu, batch_norm_prelu_reference):
        x, running_mean, running_var, weight, bias, slope = make_arguments(
            shape, dtype, slopes=slopes, **kwargs)
        out = function(x, running_mean, running_var, weight, bias, slope, training, 0.1, 1e-5)
        grad = torch.randn(out.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad(out, (x, weight, bias, slope), grad)
        results.append((out, grads, running_mean, running_var))
    return results


@requires_ext
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('shape', [(4, 6, 5, 7), (3, 5, 1, 1), (2, 3, 17, 19), (8, 4, 7, 7)])
def test_matches_batch_norm_then_prelu(dtype, training, shape):
    fused, stock = run_both(shape, dtype, training)
    assert_close(fused[0], stock[0], dtype)
    for actual, expected in zip(fused[1], stock[1]):
        assert_close(actual, expected, dtype)
    assert_close(fused[2], stock[2], dtype)  # running statistics updated alike
    assert_close(fused[3], stock[3], dtype)
    if training:
        assert not torch.equal(fused[2], make_arguments(shape, dtype)[1])


@requires_ext
def test_one_shared_slope():
    fused, stock = run_both((4, 6, 5, 5), torch.float32, True, slopes=1)
    assert_close(fused[0], stock[0], torch.float32)
    assert fused[1][3].shape == (1, )
    assert_close(fused[1][3], stock[1][3], torch.float32)


@requires_ext
def test_statistics_of_a_large_mean_stay_exact():
    # Sums of x - x[0, c]: a mean 1000x the standard deviation does not cancel.
    fused, stock = run_both((8, 3, 16, 16), torch.float32, True, mean=1000.0, std=0.5)
    torch.testing.assert_close(fused[0], stock[0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(fused[3], stock[3], rtol=1e-3, atol=1e-6)


@requires_ext
@pytest.mark.parametrize('training', [True, False])
def test_gradcheck_float64(training):
    x, running_mean, running_var, weight, bias, slope = make_arguments((3, 4, 5, 6),
                                                                       torch.float64)

    def function(x, weight, bias, slope):
        return batch_norm_prelu(x, running_mean.clone(), running_var.clone(), weight, bias,
                                slope, training)

    assert torch.autograd.gradcheck(function, (x, weight, bias, slope))


@requires_ext
def test_without_running_statistics_uses_batch_statistics():
    x, _, _, weight, bias, slope = make_arguments((4, 6, 5, 5))
    torch.testing.assert_close(
        batch_norm_prelu(x, None, None, weight, bias, slope, True),
        batch_norm_prelu_reference(x, None, None, weight, bias, slope, True))
    torch.testing.assert_close(batch_norm_prelu(x, None, None, None, None, slope, True),
                               batch_norm_prelu_reference(x, None, None, None, None, slope, True))
    with pytest.raises(ValueError, match='must be given when not training'):
        batch_norm_prelu(x, None, None, weight, bias, slope, False)


@requires_ext
@pytest.mark.parametrize('batch_stats', [True, False])
def test_opcheck(batch_stats):
    x, running_mean, running_var, weight, bias, slope = make_arguments((3, 4, 5, 6),
                                                                       torch.float64)
    stats = (None, None) if batch_stats else (running_mean, running_var)
    samples = [(x, weight, bias, slope, *stats, 1e-5),
               (x.detach(), weight, bias.detach(), slope, *stats, 1e-3),
               (x, weight.detach(), bias.detach(), slope.detach(), *stats, 1e-5)]
    for sample in samples:
        torch.library.opcheck(torch.ops.mmdice.batch_norm_prelu.default, sample)


@requires_ext
def test_input_without_grad_gets_only_parameter_grads():
    x, running_mean, running_var, weight, bias, slope = make_arguments((2, 3, 4, 4))
    out = batch_norm_prelu(x.detach(), running_mean, running_var, weight, bias, slope, True)
    grads = torch.autograd.grad(out.sum(), (weight, bias, slope))
    expected = torch.autograd.grad(
        batch_norm_prelu_reference(x.detach(), running_mean.clone(), running_var.clone(), weight,
                                   bias, slope, True).sum(), (weight, bias, slope))
    for actual, wanted in zip(grads, expected):
        torch.testing.assert_close(actual, wanted, rtol=2e-5, atol=2e-5)


def count_fused_calls(function):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        function()
    return sum(event.count for event in profile.key_averages()
               if event.key == 'mmdice::batch_norm_prelu')


@requires_ext
def test_runs_the_fused_op_only_where_it_applies():
    x, running_mean, running_var, weight, bias, slope = make_arguments((2, 4, 6, 6))
    args = (running_mean, running_var, weight, bias, slope, True)
    assert count_fused_calls(lambda: batch_norm_prelu(x, *args)) == 1
    channels_last = x.detach().to(memory_format=torch.channels_last)
    assert count_fused_calls(lambda: batch_norm_prelu(channels_last, *args)) == 0
    out = batch_norm_prelu(channels_last, *args)
    assert out.is_contiguous(memory_format=torch.channels_last)  # as the stock operators
    bf16 = [t.detach().bfloat16() for t in (x, running_mean, running_var, weight, bias, slope)]
    assert count_fused_calls(lambda: batch_norm_prelu(bf16[0], *bf16[1:], True)) == 0


@requires_ext
def test_compiles_without_graph_breaks():
    x, running_mean, running_var, weight, bias, slope = make_arguments((2, 4, 6, 6))
    norm, act = nn.BatchNorm2d(4), nn.PReLU(4)

    def function(x):
        return batch_norm_prelu(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                act.weight, True)

    explanation = torch._dynamo.explain(function)(x)
    assert explanation.graph_break_count == 0
    compiled = torch.compile(function, backend='aot_eager', fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, batch_norm_prelu_reference(
        x, None, None, norm.weight, norm.bias, act.weight, True))
    (grad, ) = torch.autograd.grad(out.sum(), x)
    (expected, ) = torch.autograd.grad(batch_norm_prelu_reference(
        x, None, None, norm.weight, norm.bias, act.weight, True).sum(), x)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)
    assert count_fused_calls(lambda: compiled(x)) == 1  # the op runs inside the graph


@requires_ext
def test_double_backward_is_refused():
    x, running_mean, running_var, weight, bias, slope = make_arguments((2, 3, 4, 4),
                                                                       torch.float64)
    out = batch_norm_prelu(x, running_mean, running_var, weight, bias, slope, True)
    (grad, ) = torch.autograd.grad(out.sum(), x, create_graph=False)
    with pytest.raises(NotImplementedError, match='differentiable once'):
        torch.autograd.grad(
            batch_norm_prelu(x, running_mean, running_var, weight, bias, slope, True).sum(), x,
            create_graph=True)
    assert grad.shape == x.shape


def test_bad_arguments_name_themselves():
    x, running_mean, running_var, weight, bias, slope = make_arguments((2, 3, 4, 4))
    with pytest.raises(ValueError, match='slope must be a 1-D tensor of 1 or C slopes'):
        batch_norm_prelu(x, running_mean, running_var, weight, bias, torch.ones(2))
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        batch_norm_prelu(x[:1, :, :1, :1], running_mean, running_var, weight, bias, slope,
                         True)


@requires_ext
def test_cpp_checks_name_the_argument():
    x = torch.randn(2, 3, 4, 4)
    ones, zeros = torch.ones(3), torch.zeros(3)
    with pytest.raises(RuntimeError, match=r'weight must have shape \(3\)'):
        torch.ops.mmdice.batch_norm_prelu(x, torch.ones(4), zeros, ones, None, None, 1e-5)
    with pytest.raises(RuntimeError, match='bias must have the input\'s dtype'):
        torch.ops.mmdice.batch_norm_prelu(x, ones, zeros.double(), ones, None, None, 1e-5)
    with pytest.raises(RuntimeError, match='give both mean and var'):
        torch.ops.mmdice.batch_norm_prelu(x, ones, zeros, ones, zeros, None, 1e-5)
    with pytest.raises(RuntimeError, match='input must be'):
        torch.ops.mmdice.batch_norm_prelu(x[0], ones, zeros, ones, None, None, 1e-5)
    with pytest.raises(RuntimeError, match='grad_output must have the input\'s shape'):
        torch.ops.mmdice.batch_norm_prelu_backward(x[:1], x, ones, zeros, ones, zeros, ones,
                                                   1e-5, True, True)
    with pytest.raises(RuntimeError, match='grad_output must have the input\'s dtype'):
        torch.ops.mmdice.batch_norm_prelu_backward(x.double(), x, ones, zeros, ones, zeros, ones,
                                                   1e-5, True, True)

"""ConvNormAct and norm_act: the fused BatchNorm + PReLU inside models equals
mmcv's ConvModule and the stock layers, running statistics included."""
import copy

import pytest
import torch
from mmcv.cnn import ConvModule
from torch import nn

from mmdice.models.layers import ConvNormAct, DiCEUnit, norm_act
from mmdice.ops import EXT_AVAILABLE

requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
CONV_ARGS = dict(in_channels=4, out_channels=6, kernel_size=3, padding=1,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='PReLU', num_parameters=6))


def fused_op_calls(function):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        function()
    return sum(event.count for event in profile.key_averages()
               if event.key == 'mmdice::batch_norm_prelu')


def randomise(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-0.8, 0.8)
    return module


def test_same_state_dict_keys_as_conv_module():
    assert ConvNormAct(**CONV_ARGS).state_dict().keys() == ConvModule(**CONV_ARGS).state_dict(
    ).keys()


@requires_ext
@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('train', [True, False])
def test_conv_norm_act_equals_conv_module(momentum, train):
    stock = randomise(ConvModule(**CONV_ARGS))
    stock.norm.momentum = momentum
    fused = ConvNormAct(**CONV_ARGS)
    fused.load_state_dict(stock.state_dict())
    fused.norm.momentum = momentum
    stock.train(train)
    fused.train(train)
    x = torch.randn(3, 4, 9, 9)
    for _ in range(2):  # the second step sees the updated running statistics
        outs, grads = [], []
        for module in (fused, stock):
            xi = x.clone().requires_grad_()
            out = module(xi)
            out.backward(torch.ones_like(out))
            outs.append(out)
            grads.append([xi.grad] + [p.grad.clone() for p in module.parameters()])
            module.zero_grad()
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
        for actual, expected in zip(*grads):
            torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    for name, buffer in stock.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[name], buffer, rtol=1e-6, atol=1e-6)
    assert fused_op_calls(lambda: fused(x)) == 1


@requires_ext
def test_other_norms_activations_and_flags_run_conv_module_forward():
    x = torch.randn(2, 4, 8, 8)
    for changes in (dict(act_cfg=dict(type='ReLU')), dict(norm_cfg=dict(type='GN', num_groups=2)),
                    dict(norm_cfg=None), dict(order=('conv', 'act', 'norm'))):
        args = dict(CONV_ARGS, **changes)
        stock = randomise(ConvModule(**args))
        fused = ConvNormAct(**args)
        fused.load_state_dict(stock.state_dict())
        torch.testing.assert_close(fused(x), stock(x))
        assert fused_op_calls(lambda: fused(x)) == 0
    fused = ConvNormAct(**CONV_ARGS)
    assert fused_op_calls(lambda: fused(x, activate=False)) == 0
    assert fused_op_calls(lambda: fused(x, norm=False)) == 0


@requires_ext
def test_norm_act_without_tracking_and_frozen_norm():
    x = torch.randn(3, 5, 6, 6, requires_grad=True)
    for norm in (nn.BatchNorm2d(5, track_running_stats=False), nn.BatchNorm2d(5).eval()):
        act = nn.PReLU(5)
        stock_norm, stock_act = copy.deepcopy(norm), copy.deepcopy(act)
        out = norm_act(x, norm, act)
        torch.testing.assert_close(out, stock_act(stock_norm(x)), rtol=1e-5, atol=1e-5)
        (grad, ) = torch.autograd.grad(out.sum(), x)
        (expected, ) = torch.autograd.grad(stock_act(stock_norm(x)).sum(), x)
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4)


@requires_ext
def test_dice_unit_training_step_runs_the_fused_op_per_norm():
    unit = DiCEUnit(8, 8, 6).train()
    x = torch.randn(2, 8, 6, 6)
    # dim_norm + dim_act, local fusion and spatial fusion
    assert fused_op_calls(lambda: unit(x).sum().backward()) == 3

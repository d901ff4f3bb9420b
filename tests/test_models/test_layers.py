"""DiCE building blocks: equivalence with the reference DICE, block wiring, helpers."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdice.models.layers import (ChannelGate, DiCEUnit, DimFuse, ShuffleDiCEBlock, StridedDiCE,
                                  act_cfg_for, build_act, channel_shuffle)

BUILD_SIZE = (28, 28)


# --------------------------------------------------------------------------------------------
# An independent functional version of EdgeNets' DICE, written in the reference's own order:
# per-branch grouped convs on transposed tensors, concat [D, H, W], BN + PReLU over the concat,
# Shuffle(3), local fusion, SE gate on Y_G, spatial fusion, product. Parameters use the
# reference's state-dict names.
# --------------------------------------------------------------------------------------------
def _to_size(x, axis, size):
    """Reference dynamic scaling of one axis: bilinear (align_corners) up, adaptive pool down."""
    current = x.shape[axis]
    if current == size:
        return x
    target = list(x.shape[2:])
    target[axis - 2] = size
    if current < size:
        return F.interpolate(x, size=target, mode='bilinear', align_corners=True)
    return F.adaptive_avg_pool2d(x, target)


def _cbr(x, params, prefix, groups, padding):
    x = F.conv2d(x, params[f'{prefix}.0.weight'], padding=padding, groups=groups)
    x = F.batch_norm(x, params[f'{prefix}.1.running_mean'], params[f'{prefix}.1.running_var'],
                     params[f'{prefix}.1.weight'], params[f'{prefix}.1.bias'], False, 0.0, 1e-5)
    return F.prelu(x, params[f'{prefix}.2.weight'])


def reference_dice(x, params, height_build, width_build):
    n, c, h, w = x.shape
    y_channel = F.conv2d(x, params['conv_channel.weight'], padding=1, groups=c)

    rows = _to_size(x, 2, height_build).transpose(1, 2)  # N x Hm x C x W
    y_height = F.conv2d(rows, params['conv_height.weight'], padding=1, groups=height_build)
    y_height = _to_size(y_height.transpose(1, 2), 2, h)

    columns = _to_size(x, 3, width_build).transpose(1, 3)  # N x Wm x H x C
    y_width = F.conv2d(columns, params['conv_width.weight'], padding=1, groups=width_build)
    y_width = _to_size(y_width.transpose(1, 3), 3, w)

    concat = torch.cat([y_channel, y_height, y_width], dim=1)
    concat = F.batch_norm(concat, params['br_act.br.0.running_mean'],
                          params['br_act.br.0.running_var'], params['br_act.br.0.weight'],
                          params['br_act.br.0.bias'], False, 0.0, 1e-5)
    concat = F.prelu(concat, params['br_act.br.1.weight'])
    # Shuffle(3): view (3, C), swap, flatten.
    shuffled = concat.view(n, 3, c, h, w).transpose(1, 2).reshape(n, 3 * c, h, w)

    y_g = _cbr(shuffled, params, 'weight_avg_layer.cbr', groups=c, padding=0)
    gate = F.adaptive_avg_pool2d(y_g, 1)
    gate = F.relu(F.conv2d(gate, params['linear_comb_layer.1.weight']))
    gate = torch.sigmoid(F.conv2d(gate, params['linear_comb_layer.3.weight']))
    c_out = params['proj_layer.cbr.0.weight'].shape[0]
    y_s = _cbr(y_g, params, 'proj_layer.cbr', groups=math.gcd(c, c_out), padding=1)
    return y_s * gate


def random_reference_params(c, c_out, height_build, width_build, generator):
    """Random reference DICE parameters and BN statistics (reference names and shapes)."""

    def normal(*shape, std=0.3):
        return torch.randn(*shape, generator=generator) * std

    def uniform(*shape, low, high):
        return torch.rand(*shape, generator=generator) * (high - low) + low

    def bn_prelu(prefix, channels, bn, act):
        return {
            f'{prefix}.{bn}.weight': uniform(channels, low=0.5, high=1.5),
            f'{prefix}.{bn}.bias': normal(channels, std=0.2),
            f'{prefix}.{bn}.running_mean': normal(channels, std=0.2),
            f'{prefix}.{bn}.running_var': uniform(channels, low=0.5, high=2.0),
            f'{prefix}.{act}.weight': uniform(channels, low=-0.2, high=0.6),
        }

    groups = math.gcd(c, c_out)
    params = {
        'conv_channel.weight': normal(c, 1, 3, 3),
        'conv_height.weight': normal(height_build, 1, 3, 3),
        'conv_width.weight': normal(width_build, 1, 3, 3),
        'weight_avg_layer.cbr.0.weight': normal(c, 3, 1, 1, std=0.5),
        'proj_layer.cbr.0.weight': normal(c_out, c // groups, 3, 3, std=0.2),
        'linear_comb_layer.1.weight': normal(c // 4, c, 1, 1),
        'linear_comb_layer.3.weight': normal(c_out, c // 4, 1, 1),
    }
    params.update(bn_prelu('br_act.br', 3 * c, 0, 1))
    params.update(bn_prelu('weight_avg_layer.cbr', c, 1, 2))
    params.update(bn_prelu('proj_layer.cbr', c_out, 1, 2))
    return params


def reference_to_ours(params, c):
    """Map reference DICE keys to DiCEUnit keys (the documented index mapping)."""

    def interleave(tensor):  # our channel 3c + g == reference channel g*C + c
        return tensor.view(3, c).t().reshape(3 * c)

    state = {
        'dim_conv.weight_depth': params['conv_channel.weight'],
        'dim_conv.weight_height': params['conv_height.weight'],
        'dim_conv.weight_width': params['conv_width.weight'],
        'dim_fuse.gate.reduce.conv.weight': params['linear_comb_layer.1.weight'],
        'dim_fuse.gate.expand.conv.weight': params['linear_comb_layer.3.weight'],
        'dim_act.weight': interleave(params['br_act.br.1.weight']),
    }
    for stat in ('weight', 'bias', 'running_mean', 'running_var'):
        state[f'dim_norm.{stat}'] = interleave(params[f'br_act.br.0.{stat}'])
    for ours, ref in (('local_fusion', 'weight_avg_layer'), ('spatial_fusion', 'proj_layer')):
        state[f'dim_fuse.{ours}.conv.weight'] = params[f'{ref}.cbr.0.weight']
        state[f'dim_fuse.{ours}.activate.weight'] = params[f'{ref}.cbr.2.weight']
        for stat in ('weight', 'bias', 'running_mean', 'running_var'):
            state[f'dim_fuse.{ours}.bn.{stat}'] = params[f'{ref}.cbr.1.{stat}']
    return state


@pytest.mark.parametrize('channels_out', [20, 30])
def test_dice_unit_matches_reference(channels_out):
    channels = 20
    generator = torch.Generator().manual_seed(channels_out)
    params = random_reference_params(channels, channels_out, *BUILD_SIZE, generator)
    unit = DiCEUnit(channels, channels_out, BUILD_SIZE)
    missing, unexpected = unit.load_state_dict(reference_to_ours(params, channels), strict=False)
    assert not unexpected
    assert all(key.endswith('num_batches_tracked') for key in missing), missing
    unit.eval()
    for height, width in [(28, 28), (32, 32), (24, 24), (32, 20)]:
        x = torch.randn(2, channels, height, width, generator=generator)
        expected = reference_dice(x, params, *BUILD_SIZE)
        with torch.no_grad():
            actual = unit(x)
        assert actual.shape == (2, channels_out, height, width)
        assert (actual - expected).abs().max().item() < 1e-5, (height, width)


def test_dim_conv_branches_match_the_shift_formula():
    """Spec 2.2 written as explicit shifts: row kernels over (channel, width), column kernels
    over (height, channel); validates the kernel orientation of both the unit and the
    transposed-conv reference above."""
    channels, height, width = 6, 5, 7
    unit = DiCEUnit(channels, channels, (height, width))
    x = torch.randn(2, channels, height, width)
    padded = F.pad(x, (1, 1, 1, 1, 1, 1))  # zero padding on width, height and channel axes
    k_rows = unit.dim_conv.weight_height.detach()[:, 0]  # (H, 3, 3): [row, channel, width]
    k_cols = unit.dim_conv.weight_width.detach()[:, 0]  # (W, 3, 3): [col, height, channel]
    y_height = torch.zeros_like(x)
    y_width = torch.zeros_like(x)
    for a in range(3):
        for b in range(3):
            # x[n, c + a - 1, h, w + b - 1] and x[n, c + b - 1, h + a - 1, w]
            y_height += k_rows[:, a, b].view(1, 1, height, 1) * \
                padded[:, a:a + channels, 1:1 + height, b:b + width]
            y_width += k_cols[:, a, b].view(1, 1, 1, width) * \
                padded[:, b:b + channels, a:a + height, 1:1 + width]
    with torch.no_grad():
        interleaved = unit.dim_conv(x)
    assert torch.allclose(interleaved[:, 1::3], y_height, atol=1e-5)
    assert torch.allclose(interleaved[:, 2::3], y_width, atol=1e-5)
    params = {'conv_channel.weight': unit.dim_conv.weight_depth.detach(),
              'conv_height.weight': unit.dim_conv.weight_height.detach(),
              'conv_width.weight': unit.dim_conv.weight_width.detach()}
    rows = x.transpose(1, 2)
    ref_height = F.conv2d(rows, params['conv_height.weight'], padding=1, groups=height)
    assert torch.allclose(ref_height.transpose(1, 2), y_height, atol=1e-5)


def test_dice_unit_interleaving_is_not_the_concat_order():
    """A loader that skipped the BN/PReLU re-indexing would give a different output."""
    channels = 12
    generator = torch.Generator().manual_seed(3)
    params = random_reference_params(channels, channels, *BUILD_SIZE, generator)
    state = reference_to_ours(params, channels)
    state['dim_norm.running_mean'] = params['br_act.br.0.running_mean']
    unit = DiCEUnit(channels, channels, BUILD_SIZE)
    unit.load_state_dict(state, strict=False)
    unit.eval()
    x = torch.randn(1, channels, 28, 28, generator=generator)
    with torch.no_grad():
        assert (unit(x) - reference_dice(x, params, *BUILD_SIZE)).abs().max() > 1e-3


def test_dice_unit_state_dict_names_and_shapes():
    unit = DiCEUnit(116, 116, (28, 14))
    shapes = {key: tuple(value.shape) for key, value in unit.state_dict().items()}
    assert shapes['dim_conv.weight_depth'] == (116, 1, 3, 3)
    assert shapes['dim_conv.weight_height'] == (28, 1, 3, 3)
    assert shapes['dim_conv.weight_width'] == (14, 1, 3, 3)
    assert shapes['dim_norm.running_var'] == (348, )
    assert shapes['dim_act.weight'] == (348, )
    assert shapes['dim_fuse.local_fusion.conv.weight'] == (116, 3, 1, 1)
    assert shapes['dim_fuse.local_fusion.activate.weight'] == (116, )
    assert shapes['dim_fuse.spatial_fusion.conv.weight'] == (116, 1, 3, 3)
    assert shapes['dim_fuse.gate.reduce.conv.weight'] == (29, 116, 1, 1)
    assert shapes['dim_fuse.gate.expand.conv.weight'] == (116, 29, 1, 1)
    # 11,408 parameters for DICE(116, 116, 28, 28) (spec section 2.1)
    square = DiCEUnit(116, 116, 28)
    assert sum(p.numel() for p in square.parameters()) == 11408
    assert not any(name.endswith('bias') and 'conv' in name for name in unit.state_dict())


def test_dice_unit_train_mode_backward_and_default_eps():
    unit = DiCEUnit(16, 16, (8, 8))
    unit.init_weights()
    assert unit.dim_norm.eps == 1e-5
    assert unit.dim_fuse.local_fusion.bn.eps == 1e-5
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    unit(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in unit.parameters())


def test_dice_unit_init_is_kaiming_fan_out():
    torch.manual_seed(0)
    unit = DiCEUnit(64, 64, (56, 56))
    unit.init_weights()
    # torch's fan_out of a (rows, 1, 3, 3) weight is rows * 9; std = sqrt(2 / fan_out)
    for weight in (unit.dim_conv.weight_depth, unit.dim_conv.weight_height):
        expected = math.sqrt(2.0 / (weight.shape[0] * 9))
        assert weight.std().item() == pytest.approx(expected, rel=0.15)
    spatial = unit.dim_fuse.spatial_fusion.conv.weight
    assert spatial.std().item() == pytest.approx(math.sqrt(2.0 / (64 * 9)), rel=0.15)
    assert torch.all(unit.dim_fuse.spatial_fusion.bn.weight == 1)
    assert torch.all(unit.dim_fuse.spatial_fusion.bn.bias == 0)
    assert torch.allclose(unit.dim_act.weight, torch.full((192, ), 0.25))


def test_dim_fuse_and_gate_shapes():
    fuse = DimFuse(12, 18)
    assert fuse.spatial_fusion.conv.groups == 6
    assert fuse.local_fusion.conv.groups == 12
    assert fuse(torch.randn(2, 36, 5, 7)).shape == (2, 18, 5, 7)
    gate = ChannelGate(12, 18)
    value = gate(torch.randn(2, 12, 5, 7))
    assert value.shape == (2, 18, 1, 1)
    assert torch.all((value > 0) & (value < 1))
    assert gate.reduce.conv.bias is None and gate.expand.conv.bias is None
    with pytest.raises(ValueError, match='in_channels'):
        ChannelGate(3, 3)


def test_channel_shuffle_matches_reference_formula():
    x = torch.arange(12.0).view(1, 12, 1, 1)
    out = channel_shuffle(x, 3).flatten()
    # output channel k*g + j = input channel j*(C/g) + k
    expected = torch.tensor([j * 4 + k for k in range(4) for j in range(3)], dtype=torch.float)
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match='divisible'):
        channel_shuffle(torch.randn(1, 5, 2, 2), 2)


def test_strided_dice_wiring():
    block = StridedDiCE(8, (4, 4)).eval()
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        out = block(x)
        left, right = block.left(x), block.right(x)
    assert out.shape == (2, 16, 4, 4)
    assert torch.equal(out[:, 0::2], left) and torch.equal(out[:, 1::2], right)
    assert block.left[0].conv.stride == (2, 2) and block.left[0].conv.groups == 8
    assert isinstance(block.right[0], nn.AvgPool2d) and block.right[0].count_include_pad
    assert isinstance(block.right[1], DiCEUnit)
    assert block.left[0].activate.weight.shape == (8, )


def test_shuffle_dice_block_wiring():
    block = ShuffleDiCEBlock(16, 32, (4, 4)).eval()
    assert block.left_channels == 8
    assert block.branch[0].conv.weight.shape == (24, 8, 1, 1)
    assert block.branch[1].in_channels == 24
    x = torch.randn(2, 16, 4, 4)
    with torch.no_grad():
        out = block(x)
        branch = block.branch(x[:, 8:])
    assert out.shape == (2, 32, 4, 4)
    concat = torch.cat([x[:, :8], branch], dim=1)  # Shuffle(2) of [left (8), branch (24)]
    assert torch.equal(out[:, 0::2], concat[:, :16]) and torch.equal(out[:, 1::2], concat[:, 16:])
    with pytest.raises(ValueError, match='out_channels'):
        ShuffleDiCEBlock(16, 7, (4, 4))


@pytest.mark.parametrize('block_type', ['strided', 'shuffle'])
def test_with_cp_gives_same_gradients(block_type):
    torch.manual_seed(0)
    if block_type == 'strided':
        plain, checkpointed = StridedDiCE(8, 4), StridedDiCE(8, 4, with_cp=True)
    else:
        plain, checkpointed = ShuffleDiCEBlock(16, 16, 8), ShuffleDiCEBlock(16, 16, 8, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, plain.in_channels, 8, 8)
    grads = []
    for block in (plain, checkpointed):
        block.train()
        block.zero_grad()
        block(x).square().sum().backward()
        grads.append([p.grad.clone() for p in block.parameters()])
    for grad_plain, grad_cp in zip(*grads):
        assert torch.allclose(grad_plain, grad_cp, atol=1e-5)


def test_act_cfg_helpers():
    assert act_cfg_for(dict(type='PReLU'), 7) == dict(type='PReLU', num_parameters=7)
    assert act_cfg_for(dict(type='PReLU', num_parameters=1), 7)['num_parameters'] == 1
    assert act_cfg_for(dict(type='ReLU'), 7) == dict(type='ReLU')
    assert act_cfg_for(None, 7) is None
    prelu = build_act(dict(type='PReLU'), 5)
    assert isinstance(prelu, nn.PReLU) and prelu.weight.shape == (5, )
    unit = DiCEUnit(8, 8, 4, act_cfg=dict(type='ReLU'))
    assert isinstance(unit.dim_act, nn.ReLU)


def test_dim_fuse_shuffled_with_equals_cat_then_shuffle():
    torch.manual_seed(0)
    fuse = DimFuse(6, 6).eval()
    x, left = torch.randn(2, 18, 5, 5), torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        expected = channel_shuffle(torch.cat((left, fuse(x)), 1), 2)
        torch.testing.assert_close(fuse.shuffled_with(left, x), expected)  # BatchNorm unfolded
        from mmdice.models import switch_to_deploy
        unit = DiCEUnit(6, 6, 5).eval()
        y = torch.randn(2, 6, 5, 5).contiguous(memory_format=torch.channels_last)
        expected = channel_shuffle(torch.cat((left, unit(y)), 1), 2)
        switch_to_deploy(unit)
        out = unit.shuffled_with(left.contiguous(memory_format=torch.channels_last), y)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)

"""The DiCE unit's spatial-layer and fusion choices (DiCENet Sec. 5.2, Tables 2 and 3)."""
import importlib
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.models import DiCENet
from mmdice.models.layers import DiCEUnit, DimFuse, ShuffleDiCEBlock, StridedDiCE
from mmdice.models.layers.dice_unit import FUSIONS, SPATIAL_LAYERS
from mmdice.models.utils import count_complexity

EXTENSION = importlib.import_module('mmdice.ops.extension')
VARIANTS = list(itertools.product(SPATIAL_LAYERS, FUSIONS))
RELATIVE_TOLERANCE = 1e-4


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics/affines and PReLU slopes; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                size = module.num_features
                module.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(size, generator=generator) * 0.6 - 0.3)
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.8
                                    - 0.3)
    return model.eval()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def out_channels_of(fusion: str, channels: int) -> int:
    return channels if fusion == 'se' else 2 * channels


def test_default_unit_is_dimconv_dimfuse_with_unchanged_keys():
    unit = DiCEUnit(8, 12, 16)
    assert (unit.spatial, unit.fusion_type, unit.stride) == ('dimconv', 'dimfuse', 1)
    assert unit.fuse_layer is unit.dim_fuse
    prefixes = sorted({key.split('.')[0] for key in unit.state_dict()})
    assert prefixes == ['dim_act', 'dim_conv', 'dim_fuse', 'dim_norm']
    assert sum(p.numel() for p in unit.parameters()) == sum(
        p.numel() for p in DiCEUnit(8, 12, (16, 16), 3, 1).parameters())


@pytest.mark.parametrize('spatial,fusion', VARIANTS)
@pytest.mark.parametrize('stride', [1, 2])
def test_variant_shapes_backward_and_other_sizes(spatial, fusion, stride):
    channels = 8
    out_channels = out_channels_of(fusion, channels)
    unit = DiCEUnit(channels, out_channels, 8, stride=stride, spatial=spatial, fusion=fusion)
    for size in (8 * stride, 12 * stride - 1):
        x = torch.randn(2, channels, size, size, requires_grad=True)
        out = unit(x)
        expected = math.ceil(size / stride)
        assert out.shape == (2, out_channels, expected, expected)
        out.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None for p in unit.parameters())
        unit.zero_grad()


@pytest.mark.parametrize('spatial,fusion', VARIANTS)
def test_fused_kernels_match_the_reference_path(spatial, fusion, monkeypatch):
    torch.manual_seed(0)
    unit = randomize(DiCEUnit(8, out_channels_of(fusion, 8), 8, spatial=spatial,
                              fusion=fusion, stride=2))
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        fused = unit(x)
        for op in list(EXTENSION.KERNEL_DEVICE_TYPES):
            monkeypatch.setitem(EXTENSION.KERNEL_DEVICE_TYPES, op, frozenset())
        reference = unit(x)
    assert relative_error(fused, reference) < RELATIVE_TOLERANCE


@pytest.mark.parametrize('spatial,fusion', VARIANTS)
@pytest.mark.parametrize('stride', [1, 2])
def test_deploy_form_equals_training_form(spatial, fusion, stride):
    torch.manual_seed(1)
    unit = randomize(DiCEUnit(8, out_channels_of(fusion, 8), 8, stride=stride,
                              spatial=spatial, fusion=fusion))
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        expected = unit(x)
        unit.switch_to_deploy()
        actual = unit(x)
        unit.switch_to_deploy()
        again = unit(x)
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE
    assert torch.equal(actual, again)
    assert not any(isinstance(m, _BatchNorm) for m in unit.modules()
                   if spatial == 'depthwise' or fusion in ('dimfuse', 'se'))
    built = DiCEUnit(8, out_channels_of(fusion, 8), 8, stride=stride, spatial=spatial,
                     fusion=fusion, deploy=True)
    assert sorted(built.state_dict()) == sorted(unit.state_dict())
    built.load_state_dict(unit.state_dict())
    with torch.no_grad():
        assert torch.equal(built.eval()(x), actual)


def expected_multiply_adds(spatial, fusion, channels, out_channels, size):
    """Multiply-adds of a stride-1 unit at its build size (the paper's FLOPs)."""
    pixels = size * size
    hidden = channels // 4
    spatial_macs = (27 if spatial == 'dimconv' else 9) * channels * pixels
    spatial_channels = 3 * channels if spatial == 'dimconv' else channels
    local_fusion = 3 * channels * pixels if spatial == 'dimconv' else 0
    if fusion == 'dimfuse':
        groups = math.gcd(channels, out_channels)
        fusion_macs = (local_fusion + 9 * channels // groups * out_channels * pixels
                       + channels * hidden + hidden * out_channels)
    elif fusion == 'se':
        fusion_macs = local_fusion + 2 * channels * hidden
    else:
        fusion_macs = spatial_channels * out_channels * pixels
        if fusion == 'pointwise_se':
            fusion_macs += 2 * out_channels * (out_channels // 4)
    return spatial_macs + fusion_macs


@pytest.mark.parametrize('spatial,fusion', VARIANTS)
def test_flops_are_the_layers_multiply_adds(spatial, fusion):
    out_channels = out_channels_of(fusion, 8)
    unit = DiCEUnit(8, out_channels, 12, spatial=spatial, fusion=fusion).eval()
    counts = count_complexity(unit, (torch.randn(1, 8, 12, 12), ))
    assert counts['paper_flops'] == expected_multiply_adds(spatial, fusion, 8, out_channels, 12)


def test_separable_unit_is_depthwise_then_pointwise():
    unit = DiCEUnit(8, 16, 8, spatial='depthwise', fusion='pointwise')
    assert unit.depthwise.conv.groups == 8 and unit.depthwise.conv.kernel_size == (3, 3)
    assert unit.fusion.pointwise.conv.kernel_size == (1, 1)
    assert unit.fusion.pointwise.conv.in_channels == 8 and unit.fusion.gate is None
    assert unit.build_size is None
    dimconv_pointwise = DiCEUnit(8, 16, 8, fusion='pointwise')
    assert dimconv_pointwise.fusion.pointwise.conv.in_channels == 24


@pytest.mark.parametrize('kwargs,match', [
    (dict(spatial='dimwise'), "spatial must be one of \\('dimconv', 'depthwise'\\)"),
    (dict(fusion='squeeze'), 'fusion must be one of'),
    (dict(fusion='se', out_channels=16), "fusion='se' keeps the channel count: out_channels"),
    (dict(stride=3), 'stride must be 1 or 2'),
    (dict(spatial='depthwise', dilation=(1, 2, 2)), 'dilation of spatial=.depthwise.'),
])
def test_bad_choices_name_the_argument(kwargs, match):
    arguments = dict(in_channels=8, out_channels=8, build_size=8)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DiCEUnit(**arguments)


def test_dim_fuse_without_local_fusion_replaces_a_pointwise_conv():
    fuse = DimFuse(8, 12, with_local_fusion=False)
    assert fuse.local_fusion is None
    assert fuse.spatial_fusion.conv.groups == 4
    assert fuse(torch.randn(2, 8, 5, 5)).shape == (2, 12, 5, 5)


@pytest.mark.parametrize('first_fusion', ['pointwise', 'dimfuse'])
@pytest.mark.parametrize('spatial,fusion', [('dimconv', 'dimfuse'), ('depthwise', 'se'),
                                            ('depthwise', 'pointwise')])
def test_shuffle_block_choices_deploy_exactly(first_fusion, spatial, fusion):
    torch.manual_seed(2)
    block = randomize(ShuffleDiCEBlock(16, 16, 8, spatial=spatial, fusion=fusion,
                                       first_fusion=first_fusion))
    assert isinstance(block.branch[0], DimFuse) == (first_fusion == 'dimfuse')
    assert (block.branch[1].spatial, block.branch[1].fusion_type) == (spatial, fusion)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        expected = block(x)
        block.switch_to_deploy()
        actual = block(x)
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_shuffle_block_rejects_an_unknown_first_fusion():
    with pytest.raises(ValueError, match="first_fusion must be one of \\('pointwise', 'dimfuse'\\)"):
        ShuffleDiCEBlock(16, 16, 8, first_fusion='se')


def test_strided_unit_passes_the_choices_to_its_dice_unit():
    unit = StridedDiCE(8, 4, spatial='depthwise', fusion='pointwise_se')
    assert (unit.right[1].spatial, unit.right[1].fusion_type) == ('depthwise', 'pointwise_se')
    assert unit(torch.randn(1, 8, 8, 8)).shape == (1, 16, 4, 4)


def test_dicenet_with_custom_channels_and_choices():
    channels = [16, 16, 40, 80, 160, 512]
    model = DiCENet(channels=channels, input_size=64, spatial='depthwise', fusion='pointwise',
                    first_fusion='dimfuse', out_indices=(2, 3, 4)).eval()
    assert model.widen_factor is None and model.channels == channels
    assert model.out_channels == (40, 80, 160)
    units = [m for m in model.modules() if isinstance(m, DiCEUnit)]
    assert units and all(u.spatial == 'depthwise' and u.fusion_type == 'pointwise'
                         for u in units)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 96))
    assert [o.shape[1:] for o in outs] == [(40, 12, 12), (80, 6, 6), (160, 3, 3)]
    assert DiCENet(input_size=64).channels == DiCENet.arch_settings[1.0]


@pytest.mark.parametrize('kwargs,match', [
    (dict(widen_factor=1.0, channels=[24, 24, 116, 232, 464, 1024]), 'not both'),
    (dict(channels=[24, 24, 115, 232, 464, 1024]), 'ch2, ch3 and ch4 even'),
    (dict(channels=[24, 24, 116]), r'channels must be \[ch0'),
    (dict(spatial='dwise'), 'spatial must be one of'),
    (dict(fusion='pw'), 'fusion must be one of'),
])
def test_dicenet_bad_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiCENet(input_size=64, **kwargs)


def test_readme_example_replaces_a_separable_convolution():
    readme = (Path(__file__).resolve().parents[2] / 'README.md').read_text(encoding='utf-8')
    section = readme.split('## The DiCE unit in your own network')[1]
    code = section.split('```python')[1].split('```')[0]
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    block = namespace['MyBlock'](8, 4)
    assert block(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    assert block(torch.randn(1, 8, 13, 13)).shape == (1, 16, 7, 7)


@pytest.mark.parametrize('first_fusion', ['pointwise', 'dimfuse'])
@pytest.mark.parametrize('spatial,fusion', VARIANTS)
def test_dicenet_variants_train_and_deploy_exactly(spatial, fusion, first_fusion):
    """The ShuffleNetV2 family of Tables 1-3 (the configs trace every entry at 224)."""
    torch.manual_seed(3)
    model = DiCENet(channels=[8, 8, 16, 32, 64, 512], input_size=64, spatial=spatial,
                    fusion=fusion, first_fusion=first_fusion, out_indices=(3, 4))
    x = torch.randn(2, 3, 96, 96, requires_grad=True)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(2, 32, 6, 6), (2, 64, 3, 3)]
    sum(o.square().mean() for o in outs).backward()
    assert torch.isfinite(x.grad).all()
    randomize(model)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(image)
        model.switch_to_deploy()
        actual = model(image)
    for got, want in zip(actual, expected):
        assert relative_error(got, want) < RELATIVE_TOLERANCE

"""DiCEResNet and DiCEBottleneck: every variant's shapes, gradients and deploy
form; stages, freezing, arguments and the registries of every codebase."""
import copy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.models import switch_to_deploy
from mmdice.models.backbones import DiCEResNet
from mmdice.models.layers import DiCEBottleneck, DiCEUnit, DimFuse
from mmdice.models.layers.norm_act import ConvNormAct

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test_deploy's helpers
from test_deploy import RELATIVE_TOLERANCE, randomize_statistics, relative_error  # noqa: E402

VARIANTS = [(spatial, fusion, first) for spatial in ('dimconv', 'depthwise')
            for fusion in ('dimfuse', 'pointwise', 'se', 'pointwise_se')
            for first in ('pointwise', 'dimfuse')]
ALL_LEVELS = (0, 1, 2, 3)
# small variant models: identity shortcuts in stage 2 only
DEPTHS = (1, 1, 2, 1)


def variant_id(variant):
    return '-'.join(variant)


def variant_kwargs(variant):
    spatial, fusion, first_fusion = variant
    return dict(spatial=spatial, fusion=fusion, first_fusion=first_fusion)


def level_shapes(model, batch, height, width):
    ceil = lambda size, stride: -(-size // stride)  # noqa: E731
    return [(batch, channels, ceil(height, 2**(level + 2)), ceil(width, 2**(level + 2)))
            for level, channels in enumerate(model.level_channels)]


def test_structure_channels_and_build_sizes():
    model = DiCEResNet(widen_factor=1.0)
    assert [len(stage) for stage in model.layers] == [3, 4, 6, 3]
    assert model.stem.conv.out_channels == 32
    assert model.level_channels == (64, 128, 256, 512)
    assert model.out_channels == (512, )
    for stage, (stage_blocks, build) in enumerate(zip(model.layers, (56, 28, 14, 7))):
        assert all(isinstance(block, DiCEBottleneck) for block in stage_blocks)
        assert [block.stride for block in stage_blocks] == [2 if stage else 1] + [1] * (
            len(stage_blocks) - 1)
        assert all(block.unit.build_size == (build, build) for block in stage_blocks)
        assert all(isinstance(block.shortcut, nn.Identity) for block in stage_blocks[1:])
        first = stage_blocks[0]
        assert isinstance(first.shortcut[-1], ConvNormAct)
        assert first.shortcut[-1].with_norm and not first.shortcut[-1].with_activation
        assert isinstance(first.shortcut[0], nn.AvgPool2d) == (stage > 0)
    assert isinstance(model.layers[0][0].first, ConvNormAct)
    assert model.layers[0][0].first.conv.kernel_size == (1, 1)


def test_widen_factor_rounds_to_multiples_of_8():
    model = DiCEResNet(widen_factor=0.25, input_size=64, depths=DEPTHS)
    assert model.stem.conv.out_channels == 8
    assert model.level_channels == (16, 32, 64, 128)
    model = DiCEResNet(widen_factor=0.3, input_size=64, depths=DEPTHS)
    assert model.stem.conv.out_channels == 16
    assert model.level_channels == (24, 40, 80, 152)


def test_custom_channels_replace_the_widen_factor():
    model = DiCEResNet(channels=(12, 20, 36, 68, 132), input_size=64, depths=DEPTHS)
    assert model.widen_factor is None
    assert model.stem.conv.out_channels == 12
    assert model.level_channels == (20, 36, 68, 132)
    assert DiCEResNet(input_size=64, depths=DEPTHS).level_channels == (64, 128, 256, 512)


def test_first_fusion_dimfuse_blocks():
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS, first_fusion='dimfuse')
    block = model.layers[1][0]
    assert isinstance(block.first, DimFuse) and block.first.local_fusion is None
    assert block.first.spatial_fusion.conv.groups == 16  # gcd(16, 32)


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_output_shapes(variant):
    model = DiCEResNet(0.25, depths=DEPTHS, out_indices=ALL_LEVELS,
                       **variant_kwargs(variant)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape) for o in outs] == level_shapes(model, 1, 224, 224)
    small = DiCEResNet(0.25, input_size=64, depths=DEPTHS, out_indices=ALL_LEVELS,
                       **variant_kwargs(variant)).eval()
    with torch.no_grad():
        for height, width in ((96, 96), (72, 100)):  # other sizes are resampled
            outs = small(torch.randn(2, 3, height, width))
            assert [tuple(o.shape) for o in outs] == level_shapes(small, 2, height, width)


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_forward_backward(variant):
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS, out_indices=(1, 3),
                       **variant_kwargs(variant))
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(out.mean() for out in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_deploy_form_matches_training_form(variant):
    spatial, fusion, _ = variant
    kwargs = dict(input_size=64, depths=DEPTHS, out_indices=(0, 2, 3), **variant_kwargs(variant))
    torch.manual_seed(0)
    trained = randomize_statistics(DiCEResNet(0.25, **kwargs))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    assert deployed.deploy
    assert all(m.deploy for m in deployed.modules()
               if isinstance(m, (DiCEUnit, DiCEBottleneck, DimFuse)))
    # folded, except a DimConv's when no local fusion follows it (its unit keeps it)
    norms = [name for name, m in deployed.named_modules() if isinstance(m, _BatchNorm)]
    assert all(name.endswith('.dim_norm') for name in norms)
    assert bool(norms) == (spatial == 'dimconv' and fusion.startswith('pointwise'))
    built = DiCEResNet(0.25, deploy=True, **kwargs)
    built.load_state_dict(deployed.state_dict(), strict=True)
    for size in ((64, 64), (96, 80)):  # the build size and a resampled one
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = trained(x)
            for model in (deployed, built.eval()):
                outs = model(x)
                for level, (actual, wanted) in enumerate(zip(outs, expected)):
                    error = relative_error(actual, wanted)
                    assert error < RELATIVE_TOLERANCE, f'level {level}: {error:.2e}'
    assert switch_to_deploy(deployed) is deployed  # idempotent


def test_bottleneck_computes_act_of_unit_plus_shortcut():
    torch.manual_seed(0)
    block = randomize_statistics(DiCEBottleneck(8, 16, 4, stride=2, spatial='depthwise',
                                                fusion='pointwise'))
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        out = block(x)
        pooled = nn.functional.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)
        expected = block.act(block.unit(block.first(x)) + block.shortcut[1](pooled))
    assert out.shape == (2, 16, 4, 5)
    assert torch.allclose(out, expected)
    assert isinstance(block.act, nn.PReLU) and block.act.num_parameters == 16


def test_with_cp_matches_plain():
    torch.manual_seed(0)
    plain = DiCEResNet(0.25, input_size=64, depths=DEPTHS)
    checkpointed = DiCEResNet(0.25, input_size=64, depths=DEPTHS, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    assert all(block.with_cp for stage in checkpointed.layers for block in stage)
    x = torch.randn(2, 3, 64, 64)
    losses = [model.train()(x)[0].square().mean() for model in (plain, checkpointed)]
    for loss in losses:
        loss.backward()
    assert torch.allclose(losses[0], losses[1])
    for p_plain, p_cp in zip(plain.parameters(), checkpointed.parameters()):
        assert torch.allclose(p_plain.grad, p_cp.grad, atol=1e-6)


def test_outputs_are_shallowest_first_and_deeper_levels_are_skipped():
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS, out_indices=(2, 0)).eval()
    assert model.out_channels == (16, 64)
    calls = []
    model.layers[3].register_forward_hook(lambda *args: calls.append('layers.3'))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 64, 4, 4)]
    assert calls == []


@pytest.mark.parametrize('frozen_stages', [0, 2, 4])
def test_frozen_stages(frozen_stages):
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS, frozen_stages=frozen_stages)
    model.train()
    for module in (model.stem, *model.layers[:frozen_stages]):
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in model.layers[frozen_stages:]:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())


def test_norm_eval():
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS, norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.layers[0][0].training
    before = model.stem.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.stem.bn.running_mean, before)


def test_bad_inputs():
    model = DiCEResNet(0.25, input_size=64, depths=DEPTHS)
    with pytest.raises(ValueError, match=r'DiCEResNet input must be .*\(N, 3, H, W\)'):
        model(torch.randn(3, 64, 64))


@pytest.mark.parametrize('kwargs, argument', [
    (dict(widen_factor=0), 'widen_factor'),
    (dict(channels=(8, 16, 32, 64, 128)), 'give widen_factor or channels, not both'),
    (dict(widen_factor=None, channels=(8, 16, 32)), r'channels must be \(stem, width0'),
    (dict(widen_factor=None, channels=(8, 16, 0, 64, 128)), r'channels must be \(stem, width0'),
    (dict(input_size=96 + 16), 'input_size'),
    (dict(input_size=(64, 64, 64)), 'input_size'),
    (dict(depths=(1, 1, 1)), 'depths'),
    (dict(depths=(1, 0, 1, 1)), 'depths'),
    (dict(depths=(1, 1.5, 1, 1)), 'depths'),
    (dict(depths=3), 'depths'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(first_fusion='se'), 'first_fusion'),
    (dict(spatial='standard'), 'spatial'),
    (dict(fusion='concat'), 'fusion'),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        DiCEResNet(**dict(dict(widen_factor=0.25, input_size=64, depths=DEPTHS), **kwargs))


def test_bottleneck_bad_stride():
    with pytest.raises(ValueError, match='stride'):
        DiCEBottleneck(8, 8, 4, stride=3)


@pytest.mark.parametrize('default_scope', [None, 'mmpretrain', 'mmseg', 'mmdet'])
def test_builds_from_each_codebase_registry(default_scope):
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MMPRETRAIN_MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='mmdice.DiCEResNet', widen_factor=0.25, input_size=64,
                          depths=DEPTHS),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=128)))
    assert isinstance(classifier.backbone, DiCEResNet)
    with torch.no_grad():
        assert classifier.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    with DefaultScope.overwrite_default_scope(default_scope):
        for registry in (MMPRETRAIN_MODELS, MMSEG_MODELS, MMDET_MODELS):
            backbone = registry.build(dict(type='mmdice.DiCEResNet', widen_factor=0.25,
                                           input_size=64, depths=DEPTHS,
                                           out_indices=(0, 1, 2, 3)))
            assert isinstance(backbone, DiCEResNet)
            assert backbone.out_channels == (16, 32, 64, 128)

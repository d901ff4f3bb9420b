"""Deploy form (switch_to_deploy, DiCENet(deploy=True)): exactness against the
training form in eval mode, idempotence, and the channel order helpers."""
import copy

import pytest
import torch
from mmcv.cnn import ConvModule, fuse_conv_bn
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.models import DiCENet, switch_to_deploy
from mmdice.models.layers import DiCEUnit, DimFuse, channel_shuffle, shuffled_concat
from mmdice.ops import DimConvFuse2d

# Deploy outputs equal the training form's within this relative error (float32).
RELATIVE_TOLERANCE = 1e-4


def randomize_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics/affines and PReLU slopes, so that folding matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                size = module.num_features
                module.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(size, generator=generator) * 0.6 - 0.3)
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.8
                                    - 0.3)
    return model.eval()


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def assert_outputs_match(deployed, trained, x):
    with torch.no_grad():
        expected, actual = trained(x), deployed(x)
    for level, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape
        error = relative_error(a, e)
        assert error < RELATIVE_TOLERANCE, f'level {level}: relative error {error:.2e}'


@pytest.mark.parametrize('widen_factor', sorted(DiCENet.arch_settings))
def test_every_scale_matches_training_form(widen_factor):
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENet(widen_factor, input_size=64, out_indices=(2, 3, 4)))
    deployed = copy.deepcopy(trained)
    deployed.switch_to_deploy()
    assert deployed.deploy
    assert not any(isinstance(m, _BatchNorm) for m in deployed.modules())
    assert sum(isinstance(m, DimConvFuse2d) for m in deployed.modules()) == 16
    # The build size runs the fused op, another size its resampling path.
    assert_outputs_match(deployed, trained, torch.randn(1, 3, 64, 64))
    if widen_factor in (0.1, 2.4):
        assert_outputs_match(deployed, trained, torch.randn(1, 3, 96, 64))


def test_stem_max_pools_before_a_non_negative_prelu():
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENet(1.0, input_size=64, out_indices=(1, 2, 4)))
    deployed = copy.deepcopy(trained)
    deployed.switch_to_deploy()
    slopes = deployed.stem.activate.weight
    assert (slopes < 0).any() and not deployed._pool_before_stem_activation()
    with torch.no_grad():
        slopes.abs_()
        trained.stem.activate.weight.abs_()
    assert deployed._pool_before_stem_activation()
    assert_outputs_match(deployed, trained, torch.randn(2, 3, 64, 64))
    deployed.out_indices = (0, 2)  # the stem output itself is wanted
    assert not deployed._pool_before_stem_activation()
    assert not trained._pool_before_stem_activation()


def test_dead_batch_norm_channels_fold_exactly():
    """The released checkpoints hold channels with running_var ~ 5.6e-45: eps decides."""
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENet(0.5, input_size=64, out_indices=(4, )))
    with torch.no_grad():
        for module in trained.modules():
            if isinstance(module, _BatchNorm):
                module.running_var[::3] = 5.6e-45
                module.weight[::3] = 2e-3
    deployed = switch_to_deploy(copy.deepcopy(trained))
    assert_outputs_match(deployed, trained, torch.randn(2, 3, 64, 64))


def test_conversion_is_idempotent_and_built_deploy_form_has_the_same_keys():
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENet(0.2, input_size=64, out_indices=(4, )))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    state = {k: v.clone() for k, v in deployed.state_dict().items()}
    assert switch_to_deploy(deployed) is deployed
    deployed.switch_to_deploy()
    assert deployed.state_dict().keys() == state.keys()
    assert all(torch.equal(deployed.state_dict()[k], v) for k, v in state.items())
    built = DiCENet(0.2, input_size=64, out_indices=(4, ), deploy=True)
    assert built.deploy
    built.load_state_dict(state, strict=True)
    assert_outputs_match(built.eval(), trained, torch.randn(1, 3, 64, 64))
    built.init_weights()  # the deploy form initialises too (before loading a checkpoint)


def test_deploy_outputs_are_channels_last():
    deployed = DiCENet(0.1, input_size=64, out_indices=(2, 4), deploy=True).eval()
    with torch.no_grad():
        outs = deployed(torch.randn(2, 3, 64, 64))
    assert all(o.is_contiguous(memory_format=torch.channels_last) for o in outs)


def test_generic_conversion_of_a_classifier():
    """Any model: every DiCE unit fused, the mmdice modules' conv + BN folded; another
    ConvModule is folded only on request (mmcv's fuse_conv_bn)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    torch.manual_seed(0)
    # the scope of its own codebase, whatever an earlier test left as the default
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = ImageClassifier(
            backbone=dict(type='mmdice.DiCENet', widen_factor=0.5, input_size=64),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='mmdice.DiCEClsHead', num_classes=7, in_channels=192,
                      mid_channels=64, loss=dict(type='CrossEntropyLoss')))
    classifier.extra = ConvModule(3, 4, 3, norm_cfg=dict(type='BN'))  # not a DiCE module
    randomize_statistics(classifier)
    deployed = switch_to_deploy(copy.deepcopy(classifier))
    assert deployed.extra.with_norm and isinstance(deployed.extra.bn, nn.BatchNorm2d)
    fuse_conv_bn(deployed.extra)
    assert isinstance(deployed.extra.bn, nn.Identity) and deployed.extra.conv.bias is not None
    assert all(unit.deploy for unit in deployed.modules() if isinstance(unit, DiCEUnit))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = classifier(x, mode='tensor')
        assert relative_error(deployed(x, mode='tensor'), expected) < RELATIVE_TOLERANCE
        assert relative_error(deployed.extra(x), classifier.extra(x)) < RELATIVE_TOLERANCE


class DiCENetBesideForeignModules(nn.Module):
    """DiCENet next to mmpretrain's RepVGGBlock and a user's conv -> BN ConvModule."""

    def __init__(self):
        super().__init__()
        from mmpretrain.models.backbones.repvgg import RepVGGBlock
        self.backbone = DiCENet(0.2, input_size=64, out_indices=(4, ))
        self.repvgg = RepVGGBlock(3, 3)  # with all three branches
        self.conv = ConvModule(3, 8, 3, padding=1, norm_cfg=dict(type='BN'))

    def forward(self, x):
        return (*self.backbone(x), self.conv(self.repvgg(x)))


def test_foreign_modules_are_left_as_they_are():
    """Only mmdice's modules convert: mmpretrain's RepVGGBlock keeps deploy=False
    and its branches (its deploy flag alone would select a branch it lacks),
    the user's ConvModule its BatchNorm."""
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENetBesideForeignModules())
    foreign_state = {name: {key: value.clone() for key, value in
                            getattr(trained, name).state_dict().items()}
                     for name in ('repvgg', 'conv')}
    deployed = switch_to_deploy(copy.deepcopy(trained))
    assert deployed.backbone.deploy
    assert not any(isinstance(m, _BatchNorm) for m in deployed.backbone.modules())
    assert all(unit.deploy for unit in deployed.modules() if isinstance(unit, DiCEUnit))
    repvgg = deployed.repvgg
    assert repvgg.deploy is False and not hasattr(repvgg, 'branch_reparam')
    assert all(isinstance(getattr(repvgg, name), nn.Module)
               for name in ('branch_3x3', 'branch_1x1', 'branch_norm'))
    assert deployed.conv.with_norm and isinstance(deployed.conv.bn, nn.BatchNorm2d)
    for name, state in foreign_state.items():
        actual = getattr(deployed, name).state_dict()
        assert actual.keys() == state.keys()
        assert all(torch.equal(actual[key], value) for key, value in state.items())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (expected_dice, expected_foreign), (actual_dice, actual_foreign) = trained(x), deployed(x)
    assert relative_error(actual_dice, expected_dice) < RELATIVE_TOLERANCE
    assert torch.equal(actual_foreign, expected_foreign)


def test_a_dim_fuse_alone_keeps_its_input_form():
    """Outside a DiCE unit the deploy DimFuse still takes the 3C DimConv channels."""
    torch.manual_seed(0)
    trained = randomize_statistics(DimFuse(6, 8))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    assert deployed.deploy and deployed.gate.deploy
    assert not any(isinstance(m, _BatchNorm) for m in deployed.modules())
    x = torch.randn(2, 18, 5, 5)
    with torch.no_grad():
        assert relative_error(deployed(x), trained(x)) < RELATIVE_TOLERANCE


def test_non_piecewise_linear_activation_is_refused():
    unit = DiCEUnit(4, 4, 8, act_cfg=dict(type='GELU'))
    with pytest.raises(ValueError, match='PReLU, LeakyReLU, ReLU or no activation'):
        unit.switch_to_deploy()


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('left,right,groups', [(24, 254, 2), (139, 139, 2), (5, 7, 3)])
def test_shuffled_concat_is_cat_then_shuffle(left, right, groups, channels_last):
    parts = [torch.randn(2, c, 3, 4) for c in (left, right)]
    if channels_last:
        parts = [p.contiguous(memory_format=torch.channels_last) for p in parts]
    out = shuffled_concat(parts, groups)
    assert torch.equal(out, channel_shuffle(torch.cat(parts, 1), groups))
    assert out.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_deploy_form_compiles_into_one_graph():
    torch.manual_seed(0)
    trained = randomize_statistics(DiCENet(1.0, input_size=64, out_indices=(2, 4)))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        explanation = torch._dynamo.explain(deployed)(x)
        assert explanation.graph_break_count == 0, explanation.break_reasons
        compiled = torch.compile(deployed, backend='aot_eager', fullgraph=True)
        for actual, expected in zip(compiled(x), trained(x)):
            assert relative_error(actual, expected) < RELATIVE_TOLERANCE

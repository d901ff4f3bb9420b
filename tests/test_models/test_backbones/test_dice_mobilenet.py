"""DiCEMobileNet: every unit variant's shapes, gradients and deploy form; stages,
freezing, arguments, FLOPs and the registries of every codebase."""
import copy
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.models import switch_to_deploy
from mmdice.models.backbones import DiCEMobileNet
from mmdice.models.layers import DiCEUnit
from mmdice.models.utils import classifier_paper_flops, count_complexity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test_deploy's helpers
from test_deploy import RELATIVE_TOLERANCE, randomize_statistics, relative_error  # noqa: E402

# spatial x fusion combinations that change the channel count ('se' cannot).
VARIANTS = [(spatial, fusion) for spatial in ('dimconv', 'depthwise')
            for fusion in ('dimfuse', 'pointwise', 'pointwise_se')]
ALL_LEVELS = (0, 1, 2, 3, 4)


def variant_id(variant):
    return '-'.join(variant)


def level_shapes(model, batch, height, width):
    ceil = lambda size, stride: -(-size // stride)  # noqa: E731
    return [(batch, channels, ceil(height, 2**(level + 1)), ceil(width, 2**(level + 1)))
            for level, channels in enumerate(model.level_channels)]


def test_structure_channels_and_build_sizes():
    model = DiCEMobileNet(widen_factor=1.0)
    assert [len(stage) for stage in model.layers] == [1, 2, 2, 6, 2]
    assert model.stem.conv.out_channels == 32
    assert model.level_channels == (64, 128, 256, 512, 1024)
    assert model.out_channels == (1024, )
    units = [unit for stage in model.layers for unit in stage]
    assert all(isinstance(unit, DiCEUnit) for unit in units)
    assert [(unit.out_channels, unit.stride) for unit in units] == list(
        DiCEMobileNet.arch_settings)
    builds = [unit.build_size for unit in units]
    assert builds == [(112, 112)] + [(56, 56)] * 2 + [(28, 28)] * 2 + [(14, 14)] * 6 + [
        (7, 7)] * 2


@pytest.mark.parametrize('widen_factor, stem, levels', [
    (0.25, 8, (16, 32, 64, 128, 256)),
    (0.75, 24, (48, 96, 192, 384, 768)),
    (0.3, 16, (24, 40, 80, 152, 304)),
])
def test_widen_factor_rounds_to_multiples_of_8(widen_factor, stem, levels):
    model = DiCEMobileNet(widen_factor=widen_factor, input_size=64)
    assert model.stem.conv.out_channels == stem
    assert model.level_channels == levels


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_output_shapes(variant):
    spatial, fusion = variant
    model = DiCEMobileNet(0.25, spatial=spatial, fusion=fusion, out_indices=ALL_LEVELS).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape) for o in outs] == level_shapes(model, 1, 224, 224)
    small = DiCEMobileNet(0.25, input_size=64, spatial=spatial, fusion=fusion,
                          out_indices=ALL_LEVELS).eval()
    with torch.no_grad():
        for height, width in ((96, 96), (72, 100)):  # other sizes are resampled
            outs = small(torch.randn(2, 3, height, width))
            assert [tuple(o.shape) for o in outs] == level_shapes(small, 2, height, width)


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_forward_backward(variant):
    spatial, fusion = variant
    model = DiCEMobileNet(0.25, input_size=64, spatial=spatial, fusion=fusion,
                          out_indices=(2, 4))
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(out.mean() for out in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variant_deploy_form_matches_training_form(variant):
    spatial, fusion = variant
    torch.manual_seed(0)
    trained = randomize_statistics(
        DiCEMobileNet(0.25, input_size=64, spatial=spatial, fusion=fusion,
                      out_indices=(0, 2, 4)))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    assert deployed.deploy
    assert all(unit.deploy for unit in deployed.modules() if isinstance(unit, DiCEUnit))
    # folded, except a DimConv's when no local fusion follows it (its unit keeps it)
    norms = [name for name, m in deployed.named_modules() if isinstance(m, _BatchNorm)]
    assert all(name.endswith('.dim_norm') for name in norms)
    assert bool(norms) == (spatial == 'dimconv' and fusion.startswith('pointwise'))
    built = DiCEMobileNet(0.25, input_size=64, spatial=spatial, fusion=fusion,
                          out_indices=(0, 2, 4), deploy=True)
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


def test_outputs_are_shallowest_first_and_deeper_levels_are_skipped():
    model = DiCEMobileNet(0.25, input_size=64, out_indices=(3, 1)).eval()
    assert model.out_channels == (32, 128)
    calls = []
    model.layers[4].register_forward_hook(lambda *args: calls.append('layers.4'))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 16), (1, 128, 4, 4)]
    assert calls == []


def test_with_cp_matches_plain():
    torch.manual_seed(0)
    plain = DiCEMobileNet(0.25, input_size=64)
    checkpointed = DiCEMobileNet(0.25, input_size=64, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    losses = [model.train()(x)[0].square().mean() for model in (plain, checkpointed)]
    for loss in losses:
        loss.backward()
    assert torch.allclose(losses[0], losses[1])
    for p_plain, p_cp in zip(plain.parameters(), checkpointed.parameters()):
        assert torch.allclose(p_plain.grad, p_cp.grad, atol=1e-6)


@pytest.mark.parametrize('frozen_stages', [0, 2, 5])
def test_frozen_stages(frozen_stages):
    model = DiCEMobileNet(0.25, input_size=64, frozen_stages=frozen_stages)
    model.train()
    frozen = [model.stem, *model.layers[:frozen_stages]]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in model.layers[frozen_stages:]:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())


def test_norm_eval():
    model = DiCEMobileNet(0.25, input_size=64, norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.layers[0][0].training
    before = model.stem.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.stem.bn.running_mean, before)


def test_bad_inputs():
    model = DiCEMobileNet(0.25, input_size=64)
    with pytest.raises(ValueError, match=r'DiCEMobileNet input must be .*\(N, 3, H, W\)'):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match='floating-point'):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


@pytest.mark.parametrize('kwargs, argument', [
    (dict(widen_factor=0), 'widen_factor'),
    (dict(widen_factor=-0.5), 'widen_factor'),
    (dict(widen_factor='1.0'), 'widen_factor'),
    (dict(widen_factor=True), 'widen_factor'),
    (dict(input_size=100), 'input_size'),
    (dict(input_size=(224, 200)), 'input_size'),
    (dict(out_indices=(5, )), 'out_indices'),
    (dict(out_indices=(-1, )), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=6), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(spatial='standard'), 'spatial'),
    (dict(fusion='concat'), 'fusion'),
    (dict(fusion='se'), 'out_channels'),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        DiCEMobileNet(**dict(dict(widen_factor=0.25, input_size=64), **kwargs))


def test_classifier_paper_flops():
    """Backbone + GAP + linear classifier; MobileNetV1 0.25 at 224 is the paper's 41 M."""
    backbone = DiCEMobileNet(0.25, spatial='depthwise', fusion='pointwise').train()
    flops = classifier_paper_flops(backbone)
    assert backbone.training
    with torch.no_grad():
        backbone_flops = count_complexity(backbone.eval(), torch.randn(1, 3, 224, 224))
    assert flops == backbone_flops['paper_flops'] + 256 * 1000
    assert round(flops / 1e6) == 41


@pytest.mark.parametrize('default_scope', [None, 'mmpretrain', 'mmseg', 'mmdet'])
def test_builds_from_each_codebase_registry(default_scope):
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MMPRETRAIN_MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='mmdice.DiCEMobileNet', widen_factor=0.25, input_size=64,
                          spatial='depthwise', fusion='pointwise'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=256)))
    assert isinstance(classifier.backbone, DiCEMobileNet)
    with torch.no_grad():
        assert classifier.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    with DefaultScope.overwrite_default_scope(default_scope):
        for registry in (MMPRETRAIN_MODELS, MMSEG_MODELS, MMDET_MODELS):
            backbone = registry.build(dict(type='mmdice.DiCEMobileNet', widen_factor=0.25,
                                           input_size=64, out_indices=(1, 2, 3)))
            assert isinstance(backbone, DiCEMobileNet)
            assert backbone.out_channels == (32, 64, 128)

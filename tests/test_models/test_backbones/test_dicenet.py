"""DiCENet backbone: shapes, stages, freezing, arguments, registries of every codebase."""
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.models.backbones import DiCENet
from mmdice.models.layers import DiCEUnit, ShuffleDiCEBlock, StridedDiCE

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_python(code: str, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter that can import mmdice from this checkout."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_default_levels_strides_and_channels():
    model = DiCENet(widen_factor=0.1, input_size=64, out_indices=(0, 1, 2, 3, 4)).eval()
    assert model.channels == [8, 8, 16, 32, 64, 512]
    assert model.level_channels == (8, 8, 16, 32, 64)
    assert model.out_channels == (8, 8, 16, 32, 64)
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8),
                                             (2, 32, 4, 4), (2, 64, 2, 2)]


def test_outputs_are_shallowest_first_and_deeper_levels_are_skipped():
    model = DiCENet(widen_factor=0.1, input_size=64, out_indices=(3, 1)).eval()
    assert model.out_channels == (8, 32)
    calls = []
    model.layers[2].register_forward_hook(lambda *args: calls.append('layers.2'))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 32, 4, 4)]
    assert calls == []


def test_structure_and_state_dict_names_at_224():
    model = DiCENet(widen_factor=1.0)
    assert [len(stage) for stage in model.layers] == [4, 8, 4]
    for stage, build in zip(model.layers, (28, 14, 7)):
        assert isinstance(stage[0], StridedDiCE)
        assert all(isinstance(block, ShuffleDiCEBlock) for block in stage[1:])
        units = [m for m in stage.modules() if isinstance(m, DiCEUnit)]
        assert len(units) == len(stage)
        assert all(unit.build_size == (build, build) for unit in units)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes['stem.conv.weight'] == (24, 3, 3, 3)
    assert shapes['stem.activate.weight'] == (24, )
    assert shapes['layers.0.0.left.0.conv.weight'] == (24, 1, 3, 3)
    assert shapes['layers.0.0.left.1.conv.weight'] == (24, 24, 1, 1)
    assert shapes['layers.0.0.right.1.dim_conv.weight_height'] == (28, 1, 3, 3)
    assert shapes['layers.0.0.right.2.conv.weight'] == (24, 24, 1, 1)
    # level3 first block: left = ch1 = 24 channels, right 24 -> 116 - 24 = 92
    assert shapes['layers.0.1.branch.0.conv.weight'] == (92, 24, 1, 1)
    assert shapes['layers.0.1.branch.1.dim_fuse.gate.reduce.conv.weight'] == (23, 92, 1, 1)
    assert shapes['layers.1.7.branch.1.dim_conv.weight_width'] == (14, 1, 3, 3)
    assert shapes['layers.2.3.branch.1.dim_norm.running_var'] == (3 * 232, )
    assert shapes['layers.2.3.branch.1.dim_fuse.spatial_fusion.conv.weight'] == (232, 1, 3, 3)
    assert 'maxpool' not in ''.join(shapes)
    # parameters without the classifier: 0.662 M (spec section 5.1)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(0.662e6, rel=2e-3)


@pytest.mark.parametrize('size', [(224, 224), (256, 256), (320, 224)])
def test_output_shapes_at_input_sizes(size):
    model = DiCENet(widen_factor=0.2, out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    for out, stride, channels in zip(outs, (2, 4, 8, 16, 32), model.level_channels):
        assert out.shape == (1, channels, size[0] // stride, size[1] // stride)


def test_non_square_build_size():
    model = DiCENet(widen_factor=0.1, input_size=(96, 64)).eval()
    assert model.layers[0][0].right[1].build_size == (12, 8)
    assert model.layers[2][3].branch[1].build_size == (3, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 64))[0].shape == (1, 64, 3, 2)
        # other run-time sizes go through the units' dynamic scaling
        assert model(torch.randn(1, 3, 64, 128))[0].shape == (1, 64, 2, 4)


def test_segmentation_setting_num_stages_2():
    model = DiCENet(widen_factor=0.5, input_size=224, num_stages=2, out_indices=(0, 1, 2, 3))
    assert len(model.layers) == 2
    assert model.out_channels == (24, 24, 48, 96)
    assert not any(key.startswith('layers.2') for key in model.state_dict())
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 256, 256))
    assert [tuple(o.shape) for o in outs] == [(1, 24, 128, 128), (1, 24, 64, 64),
                                             (1, 48, 32, 32), (1, 96, 16, 16)]


def test_train_mode_forward_backward():
    model = DiCENet(widen_factor=0.1, input_size=64, out_indices=(2, 4))
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(out.mean() for out in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.fixture
def one_thread():
    """One CPU thread: on a busy 2-core machine more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('device,dtype', [
    pytest.param('cpu', torch.bfloat16, id='cpu-bfloat16'),
    pytest.param('cuda', torch.float16, id='cuda-float16',
                 marks=pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')),
    pytest.param('cuda', torch.bfloat16, id='cuda-bfloat16',
                 marks=pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')),
])
def test_autocast_forward_backward(device, dtype, one_thread):
    """Mixed precision (tools/train.py --amp): the DiCE units take the
    low-precision output of the autocast stem; the float32 parameters get
    finite float32 gradients close to those of a float32 pass (eval mode, so
    that batch statistics do not amplify the rounding)."""
    torch.manual_seed(0)
    model = DiCENet(widen_factor=0.5, input_size=64).to(device).eval()
    x = torch.randn(4, 3, 64, 64, device=device)

    def output_and_grads(autocast):
        model.zero_grad()
        with torch.autocast(device, dtype=dtype, enabled=autocast):
            out = model(x)[-1]
        out.float().square().mean().backward()
        return out, torch.cat([p.grad.flatten() for p in model.parameters()])

    expected, expected_grads = output_and_grads(False)
    out, grads = output_and_grads(True)
    assert out.dtype == dtype
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(grads).all()
    # measured on the CPU in bfloat16: 0.4 % on the output, 1.8 % on the gradients
    assert (out.float() - expected).norm() / expected.norm() < 0.02
    assert (grads - expected_grads).norm() / expected_grads.norm() < 0.06


def test_with_cp_matches_plain():
    torch.manual_seed(0)
    plain = DiCENet(widen_factor=0.1, input_size=64)
    checkpointed = DiCENet(widen_factor=0.1, input_size=64, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    assert all(unit.with_cp for stage in checkpointed.layers for unit in stage)
    x = torch.randn(2, 3, 64, 64)
    losses = [model.train()(x)[0].square().mean() for model in (plain, checkpointed)]
    for loss in losses:
        loss.backward()
    assert torch.allclose(losses[0], losses[1])
    for p_plain, p_cp in zip(plain.parameters(), checkpointed.parameters()):
        assert torch.allclose(p_plain.grad, p_cp.grad, atol=1e-6)


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_frozen_stages(frozen_stages):
    model = DiCENet(widen_factor=0.1, input_size=64, frozen_stages=frozen_stages)
    model.train()
    frozen = [model.stem, *model.layers[:frozen_stages]]
    trainable = list(model.layers[frozen_stages:])
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())


def test_norm_eval():
    model = DiCENet(widen_factor=0.1, input_size=64, norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.layers[0][0].right[1].dim_conv.training
    before = model.stem.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.stem.bn.running_mean, before)
    model = DiCENet(widen_factor=0.1, input_size=64, norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_init_weights_kaiming_fan_out():
    torch.manual_seed(0)
    model = DiCENet(widen_factor=1.0)
    model.init_weights()
    conv = model.layers[1][0].left[1].conv.weight  # (116, 116, 1, 1), fan_out 116
    assert conv.std().item() == pytest.approx(math.sqrt(2 / 116), rel=0.05)
    dim_conv = model.layers[1][3].branch[1].dim_conv.weight_depth  # (116, 1, 3, 3)
    assert dim_conv.std().item() == pytest.approx(math.sqrt(2 / (116 * 9)), rel=0.15)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    assert torch.all(model.stem.activate.weight == 0.25)


@pytest.mark.parametrize('kwargs, argument', [
    (dict(widen_factor=0.3), 'widen_factor'),
    (dict(widen_factor=[1.0]), 'widen_factor'),
    (dict(widen_factor=True), 'widen_factor'),
    (dict(input_size=100), 'input_size'),
    (dict(input_size=(224, 200)), 'input_size'),
    (dict(input_size=(224, 224, 224)), 'input_size'),
    (dict(num_stages=0), 'num_stages'),
    (dict(num_stages=4), 'num_stages'),
    (dict(out_indices=(5, )), 'out_indices'),
    (dict(num_stages=2, out_indices=(4, )), 'out_indices'),
    (dict(out_indices=(-1, )), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=4), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(num_stages=1, out_indices=(2, ), frozen_stages=2), 'frozen_stages'),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        DiCENet(**kwargs)


def test_widen_factor_message_lists_allowed_values():
    with pytest.raises(ValueError, match=r'0\.1, 0\.2, 0\.5.*2\.4'):
        DiCENet(widen_factor=3.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    model = DiCENet(widen_factor=0.5, out_indices=(2, 3, 4))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = model(x)
        actual = model.cuda()(x.cuda())
    for out_cpu, out_cuda in zip(expected, actual):
        assert torch.allclose(out_cpu, out_cuda.cpu(), atol=1e-4, rtol=1e-4)
    model.train()
    model(torch.randn(2, 3, 256, 256, device='cuda'))[-1].mean().backward()


# ------------------------------------------------------------------------------------------
# Registries: every codebase builds ``mmdice.*`` types by the scope prefix alone.
# ------------------------------------------------------------------------------------------
CLASSIFIER_CFG = """
    model_cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='mmdice.DiCENet', widen_factor=0.1, input_size=64),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='mmdice.DiCEClsHead', num_classes=3, in_channels=64, mid_channels=512))
"""


@pytest.mark.parametrize('default_scope', [None, 'mmpretrain', 'mmseg', 'mmdet'])
def test_builds_from_each_codebase_registry_in_process(default_scope):
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    namespace = {}
    exec(textwrap.dedent(CLASSIFIER_CFG), namespace)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MMPRETRAIN_MODELS.build(namespace['model_cfg'])
    assert isinstance(classifier.backbone, DiCENet)
    assert type(classifier.head).__name__ == 'DiCEClsHead'
    with torch.no_grad():
        assert classifier.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    # the scope prefix resolves whatever default scope is current
    with DefaultScope.overwrite_default_scope(default_scope):
        for registry in (MMPRETRAIN_MODELS, MMSEG_MODELS, MMDET_MODELS):
            backbone = registry.build(dict(type='mmdice.DiCENet', widen_factor=0.1,
                                           input_size=64, num_stages=2,
                                           out_indices=(0, 1, 2, 3)))
            assert isinstance(backbone, DiCENet) and backbone.out_channels == (8, 8, 16, 32)


def test_import_mmdice_is_cheap():
    out = run_python("""
        import sys
        import mmdice
        heavy = ['mmdet', 'mmseg', 'mmpretrain', 'mmcv']
        print(sorted(name for name in heavy if name in sys.modules))
    """)
    assert out.strip() == '[]'


def test_scope_prefix_resolves_without_importing_mmdice():
    out = run_python(textwrap.dedent(CLASSIFIER_CFG) + textwrap.dedent("""
        import sys
        import torch
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
        from mmseg.registry import MODELS as MMSEG_MODELS
        from mmdet.registry import MODELS as MMDET_MODELS
        assert 'mmdice' not in sys.modules
        classifier = MMPRETRAIN_MODELS.build(model_cfg)
        print(type(classifier.backbone).__module__, type(classifier.head).__name__)
        for registry in (MMSEG_MODELS, MMDET_MODELS):
            backbone = registry.build(dict(type='mmdice.DiCENet', widen_factor=0.1,
                                           input_size=64, num_stages=2, out_indices=(3, )))
            print(type(backbone).__name__, backbone(torch.randn(1, 3, 64, 64))[0].shape[1])
    """))
    assert out.split() == ['mmdice.models.backbones.dicenet', 'DiCEClsHead',
                           'DiCENet', '32', 'DiCENet', '32']


def test_scope_prefix_with_custom_imports(tmp_path):
    config = tmp_path / 'dicenet_cfg.py'
    config.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['mmdice.models'], allow_failed_imports=False)
        default_scope = 'mmseg'
        model = dict(type='mmdice.DiCENet', widen_factor=0.1, input_size=64)
    """))
    out = run_python(f"""
        import sys
        from mmengine.config import Config
        cfg = Config.fromfile({str(config)!r})
        assert 'mmdice.models' in sys.modules
        from mmseg.registry import MODELS as MMSEG_MODELS
        from mmdet.registry import MODELS as MMDET_MODELS
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
        for registry in (MMSEG_MODELS, MMDET_MODELS, MMPRETRAIN_MODELS):
            print(type(registry.build(cfg.model)).__name__)
    """)
    assert out.split() == ['DiCENet'] * 3

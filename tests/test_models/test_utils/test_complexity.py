"""FLOP counting: the paper's table, the DimConv handle and tools/analysis_tools/get_flops.py."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmdice.models.backbones import DiCENet
from mmdice.ops import EXT_AVAILABLE
from mmdice.models.utils import count_complexity, dim_conv_flop_jit

REPO_ROOT = Path(__file__).resolve().parents[3]
EXTENSION = importlib.import_module('mmdice.ops.extension')
CONFIG_DIR = REPO_ROOT / 'tests' / 'data' / 'configs'

# EdgeNets README / spec section 5.1: s -> (MFLOPs = conv multiply-adds, params in M) at 224x224.
PAPER_TABLE = {
    0.1: (6.49, 0.549),
    0.2: (14.90, 1.131),
    0.5: (24.71, 1.214),
    0.75: (46.83, 1.496),
    1.0: (70.71, 1.806),
    1.25: (98.11, 2.163),
    1.5: (135.48, 2.652),
    1.75: (182.24, 3.265),
    2.0: (236.29, 3.979),
    2.4: (297.94, 5.114),
}


def build_imagenet_classifier(widen_factor):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    channels = DiCENet.arch_settings[widen_factor]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='mmdice.DiCENet', widen_factor=widen_factor, input_size=224),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='mmdice.DiCEClsHead', num_classes=1000,
                          in_channels=channels[4], mid_channels=channels[5],
                          dropout_ratio=0.1 if widen_factor <= 1 else 0.2)))


def test_paper_table_at_224():
    pytest.importorskip('mmpretrain')
    inputs = (torch.randn(1, 3, 224, 224), )
    measured = {}
    for widen_factor, (paper_mflops, paper_params) in PAPER_TABLE.items():
        model = build_imagenet_classifier(widen_factor).eval()
        with torch.no_grad():
            counts = count_complexity(model, inputs)
        measured[widen_factor] = (counts['paper_flops'] / 1e6, counts['params'] / 1e6)
        assert not any('dim_conv' in name for name in counts['unsupported_ops'])
        if EXT_AVAILABLE:  # the fused operator runs at the build size and is counted
            assert counts['by_operator']['dim_conv'] > 0
        if widen_factor == 1.0:
            by_operator = counts['by_operator']
            # mmengine's total = conv 70.71 + BN 5.72 + pooling 0.43 (README)
            assert round(counts['flops'] / 1e6, 2) == 76.87
            assert round(by_operator['batch_norm'] / 1e6, 2) == 5.72
            assert round(by_operator['adaptive_avg_pool2d'] / 1e6, 2) == 0.43
    # the table's printed precision: the convention is the same, not just close
    for widen_factor, (paper_mflops, paper_params) in PAPER_TABLE.items():
        mflops, params = measured[widen_factor]
        assert round(mflops, 2) == paper_mflops, (widen_factor, mflops)
        assert round(params, 3) == paper_params, (widen_factor, params)


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_fused_and_reference_paths_count_the_same(monkeypatch):
    model = DiCENet(widen_factor=0.1, input_size=64).eval()
    inputs = (torch.randn(1, 3, 64, 64), )
    with torch.no_grad():
        fused = count_complexity(model, inputs)
        monkeypatch.setitem(EXTENSION.KERNEL_DEVICE_TYPES, 'dim_conv', frozenset())
        reference = count_complexity(model, inputs)
    assert fused['by_operator']['dim_conv'] > 0
    assert reference['by_operator']['dim_conv'] == 0
    assert fused['paper_flops'] == reference['paper_flops']
    assert fused['flops'] == reference['flops']


class _FakeType:

    def __init__(self, shape):
        self.shape = shape

    def sizes(self):
        return list(self.shape)


class _FakeValue:
    """The parts of a torch._C.Value that mmengine's ``get_shape`` reads."""

    def __init__(self, shape):
        self.shape = shape

    def isCompleteTensor(self):  # noqa: N802 (torch's name)
        return True

    def type(self):
        return _FakeType(self.shape)


def test_dim_conv_flop_handle_formula():
    n, c, h, w, k = 2, 10, 6, 4, 3
    inputs = [_FakeValue(shape) for shape in ((n, c, h, w), (c, 1, k, k), (h, 1, k, k),
                                                (w, 1, k, k))]
    outputs = [_FakeValue((n, 3 * c, h, w))]
    # three k x k depth-wise convolutions over N*C*H*W outputs each
    assert dim_conv_flop_jit(inputs, outputs) == 3 * n * c * h * w * k * k


def run_get_flops(config, *args):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/get_flops.py', str(config), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _number(pattern, text):
    match = re.search(pattern, text)
    assert match, text
    return float(match.group(1))


def test_get_flops_on_classification_config():
    pytest.importorskip('mmpretrain')
    out = run_get_flops(CONFIG_DIR / 'dicenet-s1.0_in1k-224px_flops.py', '--shape', '224', '224')
    assert 'Paper-convention FLOPs (conv + dim_conv + linear multiply-adds): 70.71 M' in out
    assert 'mmengine FLOPs (total): 76.87 M' in out
    assert 'Params: 1.806 M' in out
    assert 'dim_conv' not in out.split('Operators mmengine does not count:')[1]


def test_get_flops_on_segmentation_config():
    pytest.importorskip('mmseg')
    out = run_get_flops(CONFIG_DIR / 'dicenet-s0.5_fcn-4cls-64px_flops.py', '--shape', '256')
    assert 'Input shape: (3, 256, 256)' in out
    paper = _number(r'Paper-convention FLOPs.*: ([\d.]+) M', out)
    total = _number(r'mmengine FLOPs \(total\): ([\d.]+) M', out)
    assert 0 < paper < total
    # at 256 the units (built for 224) resample: bilinear up-sampling is counted by mmengine
    assert 'upsample_bilinear2d' in out


class _ExtractFeat(torch.nn.Module):
    """What mmpretrain's get_flops counts: ``model.extract_feat``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.extract_feat(inputs)


def dim_conv_multiply_adds(model):
    """Multiply-adds of every DimConv2d of ``model`` run at its build size,
    from the modules' own attributes: 3 branches x C*H*W outputs x k*k taps."""
    from mmdice.ops import DimConv2d
    total = 0
    for module in model.modules():
        if isinstance(module, DimConv2d):
            height, width = module.build_size
            total += 3 * module.channels * height * width * module.kernel_size**2
    assert total > 0
    return total


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_mmpretrain_get_flops_counts_dim_conv():
    """mmpretrain's own tools/analysis_tools/get_flops.py (shipped in its
    wheel under .mim) counts DimConv once a config builds an mmdice model:
    importing mmdice.models registers the handle."""
    pytest.importorskip('mmpretrain')
    import mmpretrain
    from mmpretrain import get_model
    tool = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / 'analysis_tools' / 'get_flops.py'
    if not tool.is_file():
        pytest.skip(f'this mmpretrain install does not ship {tool}')
    config = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s1.0_8xb64_in1k.py'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    result = subprocess.run([sys.executable, str(tool), str(config)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The tool counts extract_feat (backbone + neck) with mmengine's operators:
    # conv 58.517264 + DimConv 11.049696 + BN 5.724768 + pooling 0.431984 M;
    # without the handle it printed 64.674M. The head's grouped 1x1 conv and
    # linear layer (0.118784 + 1.024 M) make up the 76.87 M of the classifier.
    assert 'Flops: 75.724M' in result.stdout
    assert 'Params: 1.806M' in result.stdout
    model = get_model(str(config))
    expected = dim_conv_multiply_adds(model)
    assert expected == 11049696
    counts = count_complexity(_ExtractFeat(model).eval(), (torch.randn(1, 3, 224, 224), ))
    assert counts['by_operator']['dim_conv'] == expected
    assert counts['flops'] == 75723712

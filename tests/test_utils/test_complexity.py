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
from mmdice.utils import count_complexity, dim_conv_flop_jit

REPO_ROOT = Path(__file__).resolve().parents[2]
DIM_CONV_MODULE = importlib.import_module('mmdice.ops.dim_conv')
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
            # mmengine's total = conv 70.71 + BN 5.72 + pooling 0.43
            assert counts['flops'] / 1e6 == pytest.approx(76.87, abs=0.01)
            assert by_operator['batch_norm'] / 1e6 == pytest.approx(5.72, abs=0.01)
            assert by_operator['adaptive_avg_pool2d'] / 1e6 == pytest.approx(0.43, abs=0.01)
    for widen_factor, (paper_mflops, paper_params) in PAPER_TABLE.items():
        mflops, params = measured[widen_factor]
        assert mflops == pytest.approx(paper_mflops, rel=0.01), widen_factor
        assert params == pytest.approx(paper_params, rel=0.01), widen_factor
    # the spec's counter agrees to 0.01 M: the convention is the same, not just close
    assert measured[1.0][0] == pytest.approx(70.71, abs=0.005)
    assert measured[2.4][0] == pytest.approx(297.94, abs=0.005)


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_fused_and_reference_paths_count_the_same(monkeypatch):
    model = DiCENet(widen_factor=0.1, input_size=64).eval()
    inputs = (torch.randn(1, 3, 64, 64), )
    with torch.no_grad():
        fused = count_complexity(model, inputs)
        monkeypatch.setattr(DIM_CONV_MODULE, '_fused_supported', lambda x: False)
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
    assert _number(r'Paper-convention FLOPs.*: ([\d.]+) M', out) == pytest.approx(70.71, abs=0.01)
    assert _number(r'mmengine FLOPs \(total\): ([\d.]+) M', out) == pytest.approx(76.87, abs=0.01)
    assert _number(r'Params: ([\d.]+) M', out) == pytest.approx(1.806, abs=0.001)
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

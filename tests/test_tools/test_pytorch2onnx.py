"""tools/deployment/pytorch2onnx.py and the ONNX translations of the mmdice ops:
exports checked by onnxruntime against PyTorch."""
import importlib.util
import os.path as osp

import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from mmdice.apis import check_onnx, export_onnx  # noqa: E402
from mmdice.ops import EXT_AVAILABLE, DimConv2d, DimConvFuse2d  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
requires_ext = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')


def load_tool():
    path = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')
    spec = importlib.util.spec_from_file_location('pytorch2onnx', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@requires_ext
@pytest.mark.parametrize('slope', [0.25, 1.5])  # Max(x, a x) form, and the general one
def test_op_translations_match_onnxruntime(tmp_path, slope):
    torch.manual_seed(0)
    fused = DimConvFuse2d(6, (5, 7), dilation=(1, 2, 1))
    with torch.no_grad():
        for name in ('branch_scale', 'branch_bias', 'fuse_weight', 'fuse_bias'):
            getattr(fused, name).uniform_(-1, 1)
        fused.branch_slope.fill_(slope)
    x = torch.randn(2, 6, 5, 7)
    for index, module in enumerate((fused, DimConv2d(6, (5, 7), dilation=(2, 1, 3)))):
        path = str(tmp_path / f'op{index}.onnx')
        export_onnx(module, x, path)
        outputs, error = check_onnx(path, module, x)
        assert outputs == 1 and error < 1e-5


@requires_ext
def test_export_at_another_size_than_the_build_size(tmp_path):
    """Eagerly such inputs run the op with banded weights (and resampling
    passes); the export records the reference's resampling, which the op's
    one-kernel-per-row translation does not have to cover."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 14, 9)  # height 6 -> 14: resampling passes (B 7), width 6 -> 9: B 5
    for index, module in enumerate((DimConv2d(8, (6, 6)), DimConvFuse2d(8, (6, 6)))):
        path = str(tmp_path / f'scaled{index}.onnx')
        export_onnx(module, x, path)
        outputs, error = check_onnx(path, module, x)
        assert outputs == 1 and error < 1e-5


@pytest.mark.parametrize('config', [CLS_CONFIG, SEG_CONFIG])
def test_tool_exports_and_checks_the_deploy_form(tmp_path, config):
    out = tmp_path / 'model.onnx'
    argv = [config, '--output-file', str(out), '--shape', '1', '3', '64', '64', '--deploy']
    assert load_tool().main(argv) == 0
    assert out.stat().st_size > 0


def test_tool_rejects_missing_checkpoint(tmp_path):
    argv = [CLS_CONFIG, str(tmp_path / 'missing.pth'), '--output-file', str(tmp_path / 'm.onnx')]
    assert load_tool().main(argv) == 1

"""tools/deployment/pytorch2onnx.py and the ONNX translations of the mmdice ops:
exports checked by onnxruntime against PyTorch."""
import importlib.util
import os.path as osp
import shutil

import pytest
import torch
from torch import nn

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from mmdice.apis import (TensorModeWrapper, build_model_from_config, check_onnx,  # noqa: E402
                         export_onnx, onnx_session)
from mmdice.apis.end2end import raw_output_names  # noqa: E402
from mmdice.ops import EXT_AVAILABLE, DimConv2d, DimConvFuse2d  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
SSD_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
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


@pytest.mark.parametrize('config, form, output', [(CLS_CONFIG, [], 'logits'),
                                                  (SEG_CONFIG, [], 'seg_map'),
                                                  (SEG_CONFIG, ['--raw'], 'seg_logits')])
def test_tool_exports_and_checks_the_deploy_form(tmp_path, capsys, config, form, output):
    """The export is one named, self-contained file that runs at another batch size;
    random weights (no checkpoint) are a warning."""
    out = tmp_path / 'model.onnx'
    argv = [config, '--output-file', str(out), '--shape', '1', '3', '64', '64', '--deploy', *form]
    assert load_tool().main(argv) == 0
    assert (f'warning: no checkpoint given: exporting the randomly initialised weights of '
            f'{config}') in capsys.readouterr().err.splitlines()
    assert out.stat().st_size > 0
    assert [path.name for path in tmp_path.iterdir()] == ['model.onnx']
    moved = tmp_path / 'elsewhere' / 'copy.onnx'
    moved.parent.mkdir()
    shutil.copy(out, moved)
    session = onnx_session(str(moved))
    assert [value.name for value in session.get_outputs()] == [output]
    results = session.run(None, {'input': torch.randn(2, 3, 64, 64).numpy()})
    assert results[0].shape[0] == 2


def test_export_without_dimconv_has_dynamic_batch_and_spatial_axes(tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                           nn.Flatten())
    path = str(tmp_path / 'plain.onnx')
    assert export_onnx(module, torch.randn(1, 3, 32, 32), path, output_names=['logits']) == [path]
    assert [value.name for value in onnx_session(path).get_outputs()] == ['logits']
    outputs, error = check_onnx(path, module, torch.randn(2, 3, 48, 40))
    assert outputs == 1 and error < 1e-5


def test_ssd_outputs_are_named_by_head_and_level():
    model = build_model_from_config(SSD_CONFIG)
    with torch.no_grad():
        outputs = TensorModeWrapper(model)(torch.randn(1, 3, 300, 300))
    levels = len(outputs[0])
    assert raw_output_names(model, outputs) == (
        [f'cls_score_{level}' for level in range(levels)] +
        [f'bbox_pred_{level}' for level in range(levels)])


def assert_one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: '), err
    for needle in needles:
        assert needle in err, err


def test_tool_rejects_missing_checkpoint(tmp_path, capsys):
    argv = [CLS_CONFIG, str(tmp_path / 'missing.pth'), '--output-file', str(tmp_path / 'm.onnx')]
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, 'missing.pth')


def test_tool_rejects_truncated_checkpoint_and_writes_nothing(tmp_path, capsys):
    checkpoint = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'weight': torch.randn(1000)}}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000])
    out = tmp_path / 'out' / 'm.onnx'
    assert load_tool().main([CLS_CONFIG, str(checkpoint), '--output-file', str(out)]) == 1
    assert_one_error_line(capsys, 'cut.pth')
    assert not out.exists()


def test_tool_rejects_unwritable_output_folder_before_building(tmp_path, capsys, monkeypatch):
    tool = load_tool()
    monkeypatch.setattr('mmdice.apis.export_tools.build_model_from_config', None)  # never reached
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file, not a folder')
    out = blocker / 'm.onnx'
    assert tool.main([CLS_CONFIG, '--output-file', str(out)]) == 1
    assert_one_error_line(capsys, str(blocker))
    assert sorted(path.name for path in tmp_path.iterdir()) == ['blocker']


@pytest.mark.parametrize('config, shape, needle', [
    (CLS_CONFIG, ['1', '1', '64', '64'], 'input channels'),
    (SSD_CONFIG, ['1', '3', '64', '64'], 'cannot run at this shape'),
])
def test_tool_rejects_shape_the_model_cannot_take(tmp_path, capsys, config, shape, needle):
    out = tmp_path / 'm.onnx'
    assert load_tool().main([config, '--output-file', str(out), '--shape', *shape]) == 1
    assert_one_error_line(capsys, needle)
    assert not out.exists()


def test_tool_refuses_two_stage_detector_in_one_line(tmp_path, capsys):
    config = osp.join(REPO, 'tests', 'data', 'configs', 'swap',
                      'faster-rcnn_dicenet-s1.0_fpn_1x_coco.py')
    out = tmp_path / 'm.onnx'
    for form in ([], ['--raw']):
        argv = [config, '--output-file', str(out), '--shape', '1', '3', '224', '224', *form]
        assert load_tool().main(argv) == 1
        assert_one_error_line(capsys, 'FasterRCNN cannot be exported', 'single-stage detectors',
                              'two-stage detectors')
    assert not out.exists()


def test_tool_rejects_output_under_proc_up_front(capsys):
    assert load_tool().main([CLS_CONFIG, '--output-file', '/proc/x.onnx']) == 1
    assert_one_error_line(capsys, '/proc/x.onnx', 'cannot create files in folder /proc')

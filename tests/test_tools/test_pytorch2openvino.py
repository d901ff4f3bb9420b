"""tools/deployment/pytorch2openvino.py: classifier, segmentor and SSD exports with
the mmdice OpenVINO extension, checked against PyTorch, and its input errors."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

ov = pytest.importorskip('openvino')
pytest.importorskip('onnxscript')

from mmdice.apis import (TensorModeWrapper, build_model_from_config,  # noqa: E402
                         check_openvino, compile_openvino, export_openvino, flat_outputs)
from mmdice.ops import EXT_AVAILABLE  # noqa: E402
from mmdice.ops.openvino import load_openvino_extension  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
SSD_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEPARABLE_CONFIG = osp.join(REPO, 'configs', 'dice_unit', 'mobilenet_dwise-pw_41m_8xb64_in1k.py')

pytestmark = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')


def load_tool():
    path = osp.join(REPO, 'tools', 'deployment', 'pytorch2openvino.py')
    spec = importlib.util.spec_from_file_location('pytorch2openvino', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dice_fuse_nodes(path):
    core = ov.Core()
    load_openvino_extension(core)
    return sum(op.get_type_name() == 'DiCEFuse' for op in core.read_model(path).get_ops())


@pytest.mark.parametrize('config, shape, form, outputs', [
    (CLS_CONFIG, [1, 3, 64, 64], [], ['logits']),
    (SEG_CONFIG, [1, 3, 64, 64], [], ['seg_map']),
    (SEG_CONFIG, [1, 3, 64, 64], ['--raw'], ['seg_logits']),
    (SSD_CONFIG, [1, 3, 300, 300], [], ['dets', 'labels']),
    (SSD_CONFIG, [1, 3, 300, 300], ['--raw'], None),
])
def test_tool_exports_and_checks_the_deploy_form(tmp_path, capsys, config, shape, form, outputs):
    """The tool's own check runs the IR in float32 at two batch sizes (1e-4)."""
    out = tmp_path / 'model.xml'
    argv = [config, '--output-file', str(out), '--shape', *map(str, shape), *form]
    assert load_tool().main(argv) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ['model.bin', 'model.xml']
    assert 'OpenVINO f32 vs PyTorch at [2, ' in capsys.readouterr().out
    assert dice_fuse_nodes(str(out)) > 0
    compiled = compile_openvino(str(out))
    names = [output.get_any_name() for output in compiled.outputs]
    if outputs is not None:
        assert names == outputs
    else:
        levels = len(names) // 2
        assert names == ([f'cls_score_{level}' for level in range(levels)] +
                         [f'bbox_pred_{level}' for level in range(levels)])


def test_bf16_export_records_its_precision_and_runs(tmp_path):
    model = build_model_from_config(CLS_CONFIG, deploy=True)
    module = TensorModeWrapper(model).eval()
    example = torch.randn(2, 3, 64, 64)
    path = str(tmp_path / 'bf16.xml')
    export_openvino(module, example, path, precision='bf16', output_names=['logits'])
    core = ov.Core()
    load_openvino_extension(core)
    assert core.read_model(path).get_rt_info(
        ['runtime_options', 'INFERENCE_PRECISION_HINT']).astype(str) == 'bf16'
    outputs, error = check_openvino(path, module, example, 'bf16')
    assert outputs == 1 and error < 0.1
    outputs, error = check_openvino(path, module, example, 'f32')
    assert outputs == 1 and error < 1e-4
    with torch.no_grad():
        expected = flat_outputs(module(example))[0].numpy()
    actual = compile_openvino(path, 'f32')(example.numpy())[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def assert_one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: '), err
    for needle in needles:
        assert needle in err, err


def test_tool_rejects_unsupported_precision(tmp_path, capsys):
    out = tmp_path / 'm.xml'
    assert load_tool().main([CLS_CONFIG, '--output-file', str(out), '--precision', 'f16']) == 1
    assert_one_error_line(capsys, '--precision', "'f16'", 'bf16')
    assert not out.exists()


def test_export_api_rejects_unsupported_precision(tmp_path):
    module = TensorModeWrapper(build_model_from_config(CLS_CONFIG, deploy=True)).eval()
    with pytest.raises(ValueError, match="precision must be one of .*'int8'"):
        export_openvino(module, torch.randn(1, 3, 64, 64), str(tmp_path / 'm.xml'), 'int8')


def test_tool_rejects_a_model_without_dice_modules(tmp_path, capsys):
    out = tmp_path / 'm.xml'
    assert load_tool().main([SEPARABLE_CONFIG, '--output-file', str(out)]) == 1
    assert_one_error_line(capsys, 'no DiCE units', 'pytorch2onnx.py')
    assert not out.exists()


def test_tool_rejects_output_file_that_is_not_xml(tmp_path, capsys):
    assert load_tool().main([CLS_CONFIG, '--output-file', str(tmp_path / 'm.onnx')]) == 1
    assert_one_error_line(capsys, '--output-file', '.xml')


def test_tool_reports_a_compiler_failure_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('CXX', 'false')  # a "compiler" that fails
    monkeypatch.setenv('MMDICE_OPENVINO_CACHE', str(tmp_path / 'cache'))
    out = tmp_path / 'm.xml'
    argv = [CLS_CONFIG, '--output-file', str(out), '--shape', '1', '3', '64', '64']
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, 'building the mmdice OpenVINO extension failed')
    assert not out.exists()


def test_missing_extension_library_is_named(tmp_path):
    model = build_model_from_config(CLS_CONFIG, deploy=True)
    module = TensorModeWrapper(model).eval()
    path = str(tmp_path / 'm.xml')
    export_openvino(module, torch.randn(1, 3, 64, 64), path)
    with pytest.raises(RuntimeError, match='libgone.so'):
        compile_openvino(path, library=str(tmp_path / 'libgone.so'))

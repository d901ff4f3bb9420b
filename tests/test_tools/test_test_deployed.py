"""tools/deployment/test_deployed.py: an end-to-end export evaluated with the
config's test dataloader and evaluator through mmengine's Runner, and its
bad inputs (one error line each)."""
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip('onnxruntime')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'deployment', 'test_deployed.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('test_deployed', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(*args, cwd):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                          text=True, cwd=str(cwd), timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='2'))


def detection_options(root):
    return ['--cfg-options', f'test_dataloader.dataset.data_root={root}',
            f'test_evaluator.ann_file={root}/annotations/val.json']


def test_detector_export_is_evaluated_and_drawn(ssd_shapes_export, shapes_detection, tmp_path):
    config, _, path = ssd_shapes_export
    result = run_tool(config, path, '--work-dir', tmp_path / 'work', '--show-dir', 'vis',
                      *detection_options(shapes_detection), cwd=tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert re.search(r'coco/bbox_mAP: [\d.]+ +coco/bbox_mAP_50: [\d.]+', log)
    drawn = sorted((tmp_path / 'work').glob('*/vis/*.jpg'))
    assert len(drawn) == 2  # the held-out quarter of 8 images


def test_segmentor_export_is_evaluated(seg_shapes_export, shapes_segmentation, tmp_path):
    config, _, path = seg_shapes_export
    result = run_tool(config, path, '--work-dir', tmp_path / 'work', '--cfg-options',
                      f'test_dataloader.dataset.data_root={shapes_segmentation}', cwd=tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert re.search(r'mIoU: [\d.]+', log)


def assert_one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: '), err
    for needle in needles:
        assert needle in err, err


def test_model_file_of_another_task_is_one_error(ssd_shapes_export, seg_shapes_export,
                                                  shapes_segmentation, capsys):
    argv = [seg_shapes_export[0], ssd_shapes_export[2], '--cfg-options',
            f'test_dataloader.dataset.data_root={shapes_segmentation}']
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, "outputs ['dets', 'labels']", 'is a segmentor')


def test_backend_not_installed_is_one_error(ssd_shapes_export, shapes_detection, capsys,
                                            monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)
    argv = [ssd_shapes_export[0], ssd_shapes_export[2], '--backend', 'openvino',
            *detection_options(shapes_detection)]
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, 'backend openvino needs the openvino package')


def test_missing_extension_library_is_one_error(ssd_shapes_export, shapes_detection, capsys,
                                                tmp_path):
    pytest.importorskip('openvino')
    argv = [ssd_shapes_export[0], ssd_shapes_export[2], '--backend', 'openvino', '--library',
            str(tmp_path / 'libgone.so'), *detection_options(shapes_detection)]
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, 'libgone.so')


def test_missing_model_file_and_dataset_are_one_error(ssd_shapes_export, shapes_detection,
                                                      tmp_path, capsys):
    config, _, path = ssd_shapes_export
    assert load_tool().main([config, str(tmp_path / 'gone.onnx'),
                             *detection_options(shapes_detection)]) == 1
    assert_one_error_line(capsys, 'gone.onnx')
    assert load_tool().main([config, path, *detection_options(tmp_path / 'nowhere')]) == 1
    assert_one_error_line(capsys, 'nowhere')


def test_unreadable_image_of_the_test_set_is_one_error(seg_shapes_export, shapes_segmentation,
                                                       tmp_path, capsys):
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_segmentation, root)
    held_out = (root / 'ImageSets' / 'Segmentation' / 'val.txt').read_text().split()[0]
    broken = root / 'JPEGImages' / f'{held_out}.jpg'
    broken.write_bytes(b'not a jpeg')
    argv = [seg_shapes_export[0], seg_shapes_export[2], '--work-dir', str(tmp_path / 'work'),
            '--cfg-options', f'test_dataloader.dataset.data_root={root}']
    assert load_tool().main(argv) == 1
    assert_one_error_line(capsys, f'cannot read image {broken}', 'not an image file')

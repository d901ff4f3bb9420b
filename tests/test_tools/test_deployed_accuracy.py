"""tools/analysis_tools/deployed_accuracy.py: its table and targets, the int8
calibration images (the train split, none of the held-out one), and a failing
step as one error line (the full run trains two models: benchmarks/RESULTS.md)."""
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'deployed_accuracy.py')
    spec = importlib.util.spec_from_file_location('deployed_accuracy', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_marks_each_form_against_its_targets():
    tool = load_tool()
    rows = [('PyTorch', {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.8}),
            ('onnxruntime f32', {'coco/bbox_mAP': 0.504, 'coco/bbox_mAP_50': 0.8}),
            ('OpenVINO f32 (extension)', {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.79}),
            ('OpenVINO int8', {'coco/bbox_mAP': 0.45, 'coco/bbox_mAP_50': 0.792}),
            ('OpenVINO int8', {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.785})]
    lines = tool.table('SSD', rows, tool.DET_METRICS)
    assert lines[0] == ('| model | form | bbox mAP | bbox mAP@0.5 | bbox mAP - PyTorch | '
                        'bbox mAP@0.5 - PyTorch | within target |')
    assert lines[2].endswith('| +0.0000 | +0.0000 | - |')
    assert lines[3].endswith('| +0.0040 | +0.0000 | yes |')
    assert lines[4].endswith('| +0.0000 | -0.0100 | no |')
    # int8: mAP@0.5 within 0.01 of PyTorch, no target on mAP
    assert lines[5].endswith('| -0.0500 | -0.0080 | yes |')
    assert lines[6].endswith('| +0.0000 | -0.0150 | no |')
    seg = tool.table('seg', [('PyTorch', {'mIoU': 80.0}), ('onnxruntime f32', {'mIoU': 79.95}),
                             ('OpenVINO int8', {'mIoU': 78.5})], tool.SEG_METRICS)
    assert seg[3].endswith('| -0.0500 | yes |') and seg[4].endswith('| -1.5000 | no |')


def test_data_options_point_every_split_at_the_root():
    options = load_tool().data_options('detection', 'data/x')
    assert 'test_dataloader.dataset.data_root=data/x' in options
    assert 'test_evaluator.ann_file=data/x/annotations/val.json' in options
    assert not any('evaluator' in option
                   for option in load_tool().data_options('segmentation', 'data/y'))


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_calibration_images_are_the_train_split(task, tmp_path):
    from mmdice.testing import shapes
    root = str(tmp_path / task)
    if task == 'detection':
        shapes.generate_shapes_detection(root, num_images=8, image_size=32)
    else:
        shapes.generate_shapes_segmentation(root, num_images=8, image_size=32)
    tool = load_tool()
    folder = tool.calibration_folder(task, root, str(tmp_path / 'calib'))
    linked = sorted(os.listdir(folder))
    assert linked == sorted(osp.basename(path) for path in tool.train_images(task, root))
    assert len(linked) == 6  # the generator holds out a quarter
    if task == 'detection':
        with open(osp.join(root, 'annotations', 'val.json'), encoding='utf-8') as file:
            val_names = {image['file_name'] for image in json.load(file)['images']}
    else:
        with open(osp.join(root, 'ImageSets', 'Segmentation', 'val.txt'),
                  encoding='utf-8') as file:
            val_names = {f'{name}.jpg' for name in file.read().split()}
    assert len(val_names) == 2 and not val_names & set(linked)
    assert all(osp.isfile(osp.join(folder, name)) for name in linked)


def test_a_failing_tool_is_one_error_line(tmp_path, capsys, monkeypatch):
    tool = load_tool()

    def fail(*args, **kwargs):
        raise tool.subprocess.CalledProcessError(
            2, [sys.executable, osp.join(REPO, 'tools', 'train.py'), 'x.py'])

    monkeypatch.setattr(tool.subprocess, 'run', fail)
    status = tool.main(['--work-dir', str(tmp_path / 'work'), '--data-root',
                        str(tmp_path / 'data'), '--tasks', 'segmentation', '--seg-images', '8'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err == ['error: tools/train.py failed with exit status 2 (its output is above)']

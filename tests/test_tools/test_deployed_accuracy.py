"""tools/analysis_tools/deployed_accuracy.py: its table and targets (the full run
trains two models; it ran end to end with 16 images and one epoch each)."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'deployed_accuracy.py')
    spec = importlib.util.spec_from_file_location('deployed_accuracy', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_marks_each_form_against_the_targets():
    tool = load_tool()
    rows = [('PyTorch', {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.8}),
            ('onnxruntime f32', {'coco/bbox_mAP': 0.504, 'coco/bbox_mAP_50': 0.8}),
            ('OpenVINO f32 (extension)', {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.79})]
    lines = tool.table('SSD', rows, tool.DET_METRICS)
    assert lines[0] == ('| model | form | bbox mAP | bbox mAP@0.5 | bbox mAP - PyTorch | '
                        'bbox mAP@0.5 - PyTorch | within target |')
    assert lines[2].endswith('| +0.0000 | +0.0000 | - |')
    assert lines[3].endswith('| +0.0040 | +0.0000 | yes |')
    assert lines[4].endswith('| +0.0000 | -0.0100 | no |')


def test_data_options_point_every_split_at_the_root():
    options = load_tool().data_options('detection', 'data/x')
    assert 'test_dataloader.dataset.data_root=data/x' in options
    assert 'test_evaluator.ann_file=data/x/annotations/val.json' in options
    assert not any('evaluator' in option
                   for option in load_tool().data_options('segmentation', 'data/y'))

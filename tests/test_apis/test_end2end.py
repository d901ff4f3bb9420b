"""End-to-end exports (mmdice.apis.end2end) in onnxruntime and OpenVINO against
the codebases' own ``predict``: DiCENet-SSD and a stock FCOS (dynamic size,
centerness) against mmdet, the DiCENet segmentor against mmseg, a classifier
against its own logits."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from mmdice.apis import (PAD_LABEL, Runtime, build_model_from_config, deploy_module,  # noqa: E402
                         export_onnx, match_detections)
from mmdice.apis.end2end import raw_output_names  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SSD_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')

#: A small stock mmdet FCOS (ResNet-18, no DimConv: any input size).
FCOS_CONFIG = Config(dict(
    default_scope='mmdet',
    model=dict(
        type='FCOS',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(1, 2, 3),
                      norm_eval=False, style='pytorch'),
        neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=32, start_level=0,
                  add_extra_convs='on_output', num_outs=5, relu_before_extra_convs=True),
        bbox_head=dict(type='FCOSHead', num_classes=3, in_channels=32, stacked_convs=1,
                       feat_channels=32, strides=[8, 16, 32, 64, 128],
                       norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)),
        test_cfg=dict(nms_pre=300, min_bbox_size=0, score_thr=0.3,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=50))))


def mmdet_predictions(model, inputs):
    """mmdet's ``predict(rescale=False)`` of the batch ``inputs``."""
    from mmdet.structures import DetDataSample
    height, width = inputs.shape[2:]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1.0, 1.0),
                batch_input_shape=(height, width), pad_shape=(height, width))
    with torch.no_grad():
        samples = model.predict(inputs, [DetDataSample(metainfo=meta) for _ in inputs],
                                rescale=False)
    return [sample.pred_instances for sample in samples]


def assert_detections_match_mmdet(dets, labels, model, inputs):
    """Every detection of the export pairs with one of mmdet's (same label,
    boxes and score within 1e-3 relative) and none is left over."""
    total = 0
    for image, expected in enumerate(mmdet_predictions(model, inputs)):
        count = len(expected.labels)
        expected_dets = np.concatenate(
            [expected.bboxes.numpy(), expected.scores.numpy()[:, None]], 1)
        assert (labels[image] != PAD_LABEL).sum() == count
        pairs, unpaired, error = match_detections(dets[image], labels[image], expected_dets,
                                                  expected.labels.numpy(), tolerance=1e-3)
        assert unpaired == 0 and pairs == count, (image, pairs, unpaired, count)
        assert error <= 1e-3
        assert (dets[image][count:] == 0).all() and (labels[image][count:] == PAD_LABEL).all()
        total += count
    assert total > 0


@pytest.fixture(scope='module')
def ssd(ssd_shapes_export):
    """(PyTorch deploy-form model, its end-to-end .onnx)."""
    config, checkpoint, path = ssd_shapes_export
    return build_model_from_config(config, checkpoint, deploy=True), path


def test_ssd_end2end_in_onnxruntime_matches_mmdet_predict(ssd):
    model, path = ssd
    runtime = Runtime(path)
    assert runtime.output_names == ['dets', 'labels']
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 300, 300)
    dets, labels = runtime(inputs.numpy())
    assert dets.shape == (2, 200, 5) and labels.shape == (2, 200)
    assert_detections_match_mmdet(dets, labels, model, inputs)


def test_ssd_end2end_in_openvino_reads_the_same_onnx(ssd):
    pytest.importorskip('openvino')
    model, path = ssd
    torch.manual_seed(2)
    inputs = torch.randn(3, 3, 300, 300)
    dets, labels = Runtime(path, 'openvino')(inputs.numpy())
    assert_detections_match_mmdet(dets, labels, model, inputs)


def test_fcos_end2end_runs_at_other_sizes_and_applies_centerness(tmp_path):
    """Exported at 160 x 224, where the smallest level (stride 128) is 2 x 2: the
    graph then holds for inputs of 129 pixels or more per side."""
    torch.manual_seed(0)
    model = build_model_from_config(FCOS_CONFIG)
    example = torch.randn(2, 3, 160, 224)
    module, names = deploy_module(model, example)
    path = str(tmp_path / 'fcos.onnx')
    export_onnx(module, example, path, output_names=names)
    runtime = Runtime(path)
    assert runtime.input_shape == [None, 3, None, None]
    for shape in ((1, 3, 192, 288), (3, 3, 160, 224)):
        inputs = torch.randn(*shape)
        dets, labels = runtime(inputs.numpy())
        assert dets.shape == (shape[0], 50, 5)
        assert_detections_match_mmdet(dets, labels, model, inputs)


def test_raw_detector_outputs_are_named_for_every_dense_head():
    model = build_model_from_config(FCOS_CONFIG)
    module, names = deploy_module(model, torch.randn(1, 3, 64, 64), raw=True)
    assert names == ([f'cls_score_{i}' for i in range(5)] + [f'bbox_pred_{i}' for i in range(5)]
                     + [f'centerness_{i}' for i in range(5)])
    with torch.no_grad():
        assert raw_output_names(model, module(torch.randn(1, 3, 64, 64))) == names


def test_segmentor_end2end_equals_mmseg_pred_sem_seg(tmp_path):
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = build_model_from_config(SEG_CONFIG, deploy=True)
    module, names = deploy_module(model, torch.randn(1, 3, 64, 64))
    assert names == ['seg_map']
    path = str(tmp_path / 'seg.onnx')
    export_onnx(module, torch.randn(1, 3, 64, 64), path, output_names=names)
    inputs = torch.randn(2, 3, 64, 64)
    (seg_map, ) = Runtime(path)(inputs.numpy())
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64),
                padding_size=[0, 0, 0, 0])
    with torch.no_grad():
        samples = model.predict(inputs, [SegDataSample(metainfo=meta) for _ in inputs])
    expected = torch.stack([sample.pred_sem_seg.data[0] for sample in samples]).numpy()
    assert seg_map.shape == (2, 64, 64) and seg_map.dtype == np.int64
    assert np.mean(seg_map == expected) > 0.999


def test_classifier_end2end_logits_and_scores(tmp_path):
    torch.manual_seed(0)
    model = build_model_from_config(CLS_CONFIG, deploy=True)
    module, names = deploy_module(model, torch.randn(1, 3, 64, 64), scores=True)
    assert names == ['logits', 'scores']
    path = str(tmp_path / 'cls.onnx')
    export_onnx(module, torch.randn(1, 3, 64, 64), path, output_names=names)
    inputs = torch.randn(3, 3, 64, 64)
    logits, scores = Runtime(path)(inputs.numpy())
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores, expected.softmax(-1).numpy(), rtol=1e-4, atol=1e-5)


def test_two_stage_detector_is_refused_in_one_line():
    model = build_model_from_config(osp.join(REPO, 'tests', 'data', 'configs', 'swap',
                                             'faster-rcnn_dicenet-s1.0_fpn_1x_coco.py'))
    for raw in (False, True):
        with pytest.raises(ValueError, match='FasterRCNN cannot be exported.*single-stage'):
            deploy_module(model, torch.randn(1, 3, 224, 224), raw=raw)


def test_match_detections_pairs_by_label_and_box():
    expected = np.array([[0, 0, 10, 10, 0.9], [5, 5, 20, 20, 0.8], [0, 0, 0, 0, 0]])
    expected_labels = np.array([0, 1, PAD_LABEL])
    actual = np.array([[5, 5, 20.001, 20, 0.8], [0, 0, 10, 10, 0.9], [0, 0, 0, 0, 0]])
    assert match_detections(actual, np.array([1, 0, PAD_LABEL]), expected,
                            expected_labels) == (2, 0, pytest.approx(0.001 / 20))
    assert match_detections(actual, np.array([0, 1, PAD_LABEL]), expected,
                            expected_labels)[:2] == (0, 2)

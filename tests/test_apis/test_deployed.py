"""mmdice.apis.DeployedModel and inference_deployed: exported models in
onnxruntime / OpenVINO answering with the codebases' data samples, against
the PyTorch model on the same data batches."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

pytest.importorskip('onnxruntime')

from mmdice.apis import (BackendError, DeployedModel, build_model_from_config,  # noqa: E402
                         inference_deployed, match_detections)
from mmdice.utils import InputFileError, load_config  # noqa: E402


def first_batch(config, data_root):
    """(config, the first batch (2 images) of its test dataloader on ``data_root``)."""
    from mmengine.runner import Runner
    cfg = load_config(config)
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': data_root})
    cfg.test_dataloader.batch_size = 2
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return cfg, next(iter(Runner.build_dataloader(cfg.test_dataloader)))


def deployed_and_pytorch_samples(export, data_root):
    """The test_step samples of the export (DeployedModel, onnxruntime) and of
    the PyTorch deploy-form model on the first test batch of ``data_root``."""
    config, checkpoint, path = export
    cfg, data = first_batch(config, data_root)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = build_model_from_config(cfg, checkpoint, deploy=True)
        with torch.no_grad():
            expected = model.test_step(data)
        return DeployedModel(path, cfg).test_step(data), expected


def test_detector_samples_match_pytorch_in_original_pixels(ssd_shapes_export, shapes_detection):
    actual, expected = deployed_and_pytorch_samples(ssd_shapes_export, shapes_detection)
    for got, want in zip(actual, expected):
        assert got.metainfo['ori_shape'] == (96, 96)
        assert tuple(got.metainfo['scale_factor']) == pytest.approx((300 / 96, 300 / 96))
        got, want = got.pred_instances, want.pred_instances
        assert len(got) == len(want) > 0
        as_dets = [np.concatenate([item.bboxes.numpy(), item.scores.numpy()[:, None]], 1)
                   for item in (got, want)]
        pairs, unpaired, error = match_detections(as_dets[0], got.labels.numpy(), as_dets[1],
                                                  want.labels.numpy())
        assert unpaired == 0 and error <= 1e-3
        assert float(got.bboxes.max()) <= 96


def test_segmentor_samples_equal_pytorch(seg_shapes_export, shapes_segmentation):
    actual, expected = deployed_and_pytorch_samples(seg_shapes_export, shapes_segmentation)
    for got, want in zip(actual, expected):
        assert got.pred_sem_seg.data.shape == want.pred_sem_seg.data.shape == (1, 64, 64)
        assert (got.pred_sem_seg.data == want.pred_sem_seg.data).float().mean() > 0.999


def test_openvino_backend_runs_the_same_file(ssd_shapes_export, shapes_detection):
    pytest.importorskip('openvino')
    config, _, path = ssd_shapes_export
    cfg, data = first_batch(config, shapes_detection)
    with DefaultScope.overwrite_default_scope('mmdet'):
        by_onnxruntime = DeployedModel(path, cfg).test_step(data)
        by_openvino = DeployedModel(path, cfg, backend='openvino').test_step(data)
    for got, want in zip(by_openvino, by_onnxruntime):
        np.testing.assert_allclose(got.pred_instances.bboxes, want.pred_instances.bboxes,
                                   rtol=1e-4, atol=1e-3)


def test_inference_deployed_on_a_file_and_an_array(ssd_shapes_export, shapes_detection):
    import mmcv
    config, _, path = ssd_shapes_export
    image = f'{shapes_detection}/images/00007.jpg'
    from_file = inference_deployed(path, config, image)
    from_array = inference_deployed(path, config, [mmcv.imread(image)])[0]
    assert from_file.metainfo['ori_shape'] == (96, 96)
    assert len(from_file.pred_instances) > 0
    torch.testing.assert_close(from_file.pred_instances.bboxes, from_array.pred_instances.bboxes)


def test_unreadable_image_is_named(ssd_shapes_export, tmp_path):
    config, _, path = ssd_shapes_export
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(InputFileError, match='cannot read image .*broken.jpg'):
        inference_deployed(path, config, str(broken))


def test_model_file_of_another_task_is_refused(ssd_shapes_export, seg_shapes_export):
    with pytest.raises(BackendError, match=r"outputs \['seg_map'\]: the end-to-end export of a "
                       'segmentor; .* is a detector'):
        DeployedModel(seg_shapes_export[2], ssd_shapes_export[0])


def test_backend_not_installed_is_named(ssd_shapes_export, monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'openvino', None)
    with pytest.raises(BackendError, match='backend openvino needs the openvino package'):
        DeployedModel(ssd_shapes_export[2], ssd_shapes_export[0], backend='openvino')


def test_missing_extension_library_is_named(ssd_shapes_export, tmp_path):
    pytest.importorskip('openvino')
    with pytest.raises(BackendError, match='libgone.so'):
        DeployedModel(ssd_shapes_export[2], ssd_shapes_export[0], backend='openvino',
                      library=str(tmp_path / 'libgone.so'))


def test_input_of_another_size_is_refused(ssd_shapes_export):
    deployed = DeployedModel(ssd_shapes_export[2], ssd_shapes_export[0])
    with pytest.raises(ValueError, match=r'takes inputs of shape \[None, 3, 300, 300\]'):
        deployed(torch.zeros(1, 3, 320, 320))


def test_readme_snippet_runs(ssd_shapes_export, seg_shapes_export, shapes_detection,
                             shapes_segmentation, tmp_path, monkeypatch):
    import os
    import shutil
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    section = (repo / 'README.md').read_text(encoding='utf-8').split(
        '### End-to-end deployment: export, evaluate, run')[1]
    code = section.split('```python')[1].split('```')[0]
    shutil.copy(ssd_shapes_export[2], tmp_path / 'ssd.onnx')
    shutil.copy(seg_shapes_export[2], tmp_path / 'seg.onnx')
    shutil.copy(f'{shapes_detection}/images/00007.jpg', tmp_path / 'demo.jpg')
    shutil.copy(f'{shapes_segmentation}/JPEGImages/00007.jpg', tmp_path / 'shapes-64px.jpg')
    os.symlink(repo / 'configs', tmp_path / 'configs')
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    assert namespace['boxes'].shape[1] == 4 and len(namespace['boxes']) > 0
    assert tuple(namespace['class_map'].shape) == (64, 64)

"""DiCENet-SSD through mmdet's inference APIs and mmdet's own tools/test.py.

The detector is the stock COCO SSD300 config with random weights saved as an
mmengine checkpoint: what is checked is that every API runs end to end on a
real photo (scikit-image's astronaut()) and returns well-formed detections.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('mmdet')
skimage_data = pytest.importorskip('skimage.data')

import mmdice.models  # noqa: E402,F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet_ssd300_coco.py')
NUM_CLASSES = 80


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A randomly initialised DiCENet-SSD300 COCO model as a Runner-style checkpoint."""
    from mmdet.evaluation import get_classes
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = tmp_path_factory.mktemp('ckpt') / 'dicenet_ssd300_coco.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=get_classes('coco')))), str(path))
    return str(path)


def photo_bgr():
    return np.ascontiguousarray(skimage_data.astronaut()[..., ::-1])


def check_detections(bboxes, scores, labels, image_shape):
    bboxes, scores, labels = (torch.as_tensor(np.asarray(v)) for v in (bboxes, scores, labels))
    assert bboxes.ndim == 2 and bboxes.shape[1] == 4 and len(bboxes) > 0
    assert len(scores) == len(labels) == len(bboxes) <= 200
    assert ((scores >= 0) & (scores <= 1)).all()
    assert ((labels >= 0) & (labels < NUM_CLASSES)).all()
    height, width = image_shape
    assert (bboxes[:, 0::2] >= 0).all() and (bboxes[:, 0::2] <= width).all()
    assert (bboxes[:, 1::2] >= 0).all() and (bboxes[:, 1::2] <= height).all()


def test_init_detector_and_inference_detector(checkpoint):
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(CONFIG, checkpoint, device='cpu')
    image = photo_bgr()
    result = inference_detector(model, image)
    instances = result.pred_instances
    check_detections(instances.bboxes, instances.scores, instances.labels, image.shape[:2])


def test_det_inferencer_draws_predictions(checkpoint, tmp_path):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=CONFIG, weights=checkpoint, device='cpu',
                               show_progress=False)
    from PIL import Image
    image_file = tmp_path / 'astronaut.jpg'
    Image.fromarray(skimage_data.astronaut()).save(image_file)
    out = inferencer(str(image_file), out_dir=str(tmp_path / 'out'), no_save_pred=False)
    prediction = out['predictions'][0]
    check_detections(prediction['bboxes'], prediction['scores'], prediction['labels'],
                     (512, 512))
    assert (tmp_path / 'out' / 'preds' / 'astronaut.json').is_file()
    drawn = tmp_path / 'out' / 'vis' / 'astronaut.jpg'
    assert drawn.is_file() and drawn.stat().st_size > 0


def test_inference_rejects_wrong_image_type(checkpoint):
    from mmdet.apis import init_detector
    from mmdice.models.backbones import DiCENet
    model = init_detector(CONFIG, checkpoint, device='cpu')
    with pytest.raises(ValueError, match=r'DiCENet input must be .*\(N, 3, H, W\)'):
        model.backbone(torch.zeros(1, 1, 300, 300))
    with pytest.raises(ValueError, match='floating'):
        DiCENet(widen_factor=0.5)(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_mmdet_own_test_script(checkpoint, tmp_path):
    """mmdet's shipped tools/test.py evaluates the shapes config from a checkpoint."""
    import mmdet
    from mmdice.testing import generate_shapes_detection
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    if not osp.isfile(script):
        pytest.skip(f'mmdet ships no {script}')
    data_root = tmp_path / 'shapes'
    generate_shapes_detection(str(data_root), num_images=8, image_size=96, seed=1,
                              val_fraction=0.5)
    config = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
    shapes_checkpoint = tmp_path / 'shapes.pth'
    _save_random_checkpoint(config, shapes_checkpoint)
    options = [f'{loader}.dataset.data_root={data_root}'
               for loader in ('test_dataloader', 'val_dataloader')]
    options.append(f'test_evaluator.ann_file={data_root}/annotations/val.json')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, script, config, str(shapes_checkpoint), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', *options],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'coco/bbox_mAP_50' in log


def _save_random_checkpoint(config, path):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=cfg.classes))), str(path))

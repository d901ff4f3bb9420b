"""The backbone-swap recipes of the README (tests/data/configs/swap): the codebases' own
RetinaNet, Faster R-CNN, FCN, DeepLabV3 and ResNet-50 classifier configs with DiCENet
swapped in build, take a training step and predict on a few generated shapes images."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

for codebase in ('mmpretrain', 'mmdet', 'mmseg'):
    pytest.importorskip(codebase)
from mmdice.models import DiCENet  # noqa: E402
from mmdice.testing import (SHAPE_CLASSES, generate_shapes_classification,
                            generate_shapes_detection, generate_shapes_segmentation)  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SWAP_DIR = REPO_ROOT / 'tests' / 'data' / 'configs' / 'swap'
NUM_IMAGES = 2


def shapes_config(folder, name):
    return Config.fromfile(str(REPO_ROOT / 'configs' / folder / name))


def classification_dataset(root):
    generate_shapes_classification(str(root), num_images=8, image_size=64, seed=0)
    dataset = shapes_config('dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py').train_dataloader.dataset
    dataset.update(data_root=str(root), pipeline=[dict(type='LoadImageFromFile'),
                                                  dict(type='PackInputs')])
    return dataset, 64


def detection_dataset(root):
    generate_shapes_detection(str(root), num_images=8, image_size=128, seed=0)
    dataset = shapes_config('ssd', 'dicenet-s0.5_ssd300_shapes.py').train_dataloader.dataset
    dataset.update(type='CocoDataset', data_root=str(root), pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(128, 128), keep_ratio=True),  # sets the scale factor
        dict(type='PackDetInputs')])
    return dataset, 128


def segmentation_dataset(root):
    generate_shapes_segmentation(str(root), num_images=8, image_size=64, seed=0)
    cfg = shapes_config('dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
    dataset = cfg.train_dataloader.dataset
    dataset.update(data_root=str(root), pipeline=cfg.test_pipeline)
    return dataset, 64


def shrink_classifier(cfg, size):
    cfg.model.head.num_classes = len(SHAPE_CLASSES)
    cfg.model.data_preprocessor = dict(cfg.data_preprocessor, num_classes=len(SHAPE_CLASSES))


def shrink_retinanet(cfg, size):
    cfg.model.bbox_head.num_classes = len(SHAPE_CLASSES)


def shrink_faster_rcnn(cfg, size):
    cfg.model.roi_head.bbox_head.num_classes = len(SHAPE_CLASSES)


def shrink_segmentor(cfg, size):
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.num_classes = len(SHAPE_CLASSES) + 1  # and background
    cfg.model.data_preprocessor.size = (size, size)


SWAPS = {
    'resnet50-head_dicenet-s1.0_8xb32_in1k.py': (classification_dataset, shrink_classifier),
    'retinanet_dicenet-s1.0_fpn_1x_coco.py': (detection_dataset, shrink_retinanet),
    'faster-rcnn_dicenet-s1.0_fpn_1x_coco.py': (detection_dataset, shrink_faster_rcnn),
    'fcn_dicenet-s1.0_4xb2-40k_cityscapes-512x1024.py': (segmentation_dataset, shrink_segmentor),
    'deeplabv3_dicenet-s1.0_4xb2-40k_cityscapes-512x1024.py': (segmentation_dataset,
                                                               shrink_segmentor),
}


def test_every_swap_config_is_tested():
    assert sorted(path.name for path in SWAP_DIR.glob('*.py')) == sorted(SWAPS)


def test_swap_configs_give_the_necks_and_heads_the_backbone_channels():
    for name in SWAPS:
        cfg = Config.fromfile(str(SWAP_DIR / name))
        backbone = {key: value for key, value in cfg.model.backbone.items() if key != 'type'}
        channels = DiCENet(**dict(backbone, input_size=64)).out_channels
        model = cfg.model
        if 'neck' in model and 'in_channels' in model.neck:
            assert tuple(model.neck.in_channels) == channels, name
        elif 'decode_head' in model:
            assert model.decode_head.in_channels == channels[model.decode_head.in_index]
            assert model.auxiliary_head.in_channels == channels[model.auxiliary_head.in_index]
        else:
            assert model.head.in_channels == channels[-1], name


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_swap_config_trains_a_step_and_predicts_on_shapes(name, tmp_path):
    make_dataset, shrink = SWAPS[name]
    cfg = Config.fromfile(str(SWAP_DIR / name))
    assert cfg.model.backbone.type == 'mmdice.DiCENet'
    dataset_cfg, size = make_dataset(tmp_path / 'shapes')
    cfg.model.backbone.input_size = size
    shrink(cfg, size)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import DATASETS, MODELS
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN runs only distributed
    model.init_weights()
    dataset = DATASETS.build(dataset_cfg)
    data = pseudo_collate([dataset[index] for index in range(NUM_IMAGES)])

    model.train()
    stem = model.backbone.stem.conv.weight
    before = stem.detach().clone()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(value) for value in losses.values()), losses
    assert not torch.equal(stem.detach(), before)  # the step reached the backbone

    model.eval()
    with torch.no_grad():
        predictions = model.val_step(data)
    assert len(predictions) == NUM_IMAGES


def test_readme_channel_table_is_dicenet_level_channels():
    readme = (REPO_ROOT / 'README.md').read_text()
    rows = re.findall(r'^\| (\d+(?:\.\d+)?) +\|((?: +\d+ +\|){5})$', readme, flags=re.M)
    table = {float(width): tuple(int(c) for c in cells.split('|') if c.strip())
             for width, cells in rows}
    assert table == {width: DiCENet(width, input_size=64).level_channels
                     for width in DiCENet.arch_settings}

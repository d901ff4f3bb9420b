"""Classification configs of configs/dicenet: they load, build, and follow the recipes."""
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmpretrain')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import mmdice.models  # noqa: E402,F401
from mmdice.models.backbones.dicenet import DiCENet  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
SCALES = (0.1, 0.2, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.4)
E150 = 'dicenet-s{}_8xb64_in1k.py'
E300 = 'dicenet-s{}_8xb64-accum4-e300-ls-ema_in1k.py'
NUM_GPUS = 8  # the "8x" of the config names


def load(name):
    return Config.fromfile(str(CONFIG_DIR / 'dicenet' / name))


def imagenet_configs():
    return [pattern.format(s) for s in SCALES for pattern in (E150, E300)]


def crop_range(cfg):
    crop = next(t for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] == 'RandomResizedCrop')
    assert crop['scale'] == 224
    return tuple(crop['crop_ratio_range'])


def test_every_config_is_covered():
    names = {path.name for path in (CONFIG_DIR / 'dicenet').glob('*.py')}
    assert set(imagenet_configs()) <= names
    assert 'dicenet-s0.5_1xb32_shapes-64px.py' in names
    assert 'dicenet-s2.4_8xb64_coco-multilabel.py' in names


# Configs that show swapping DiCENet into a codebase's own config (they inherit it
# through the `mmdet::` prefix on purpose; tests/test_configs/test_ssd_configs.py builds it).
BACKBONE_SWAP_CONFIGS = ('ssd/ssdlite_dicenet-s2.4-scratch_8xb24-600e_coco.py', )


def test_no_cross_package_bases():
    for path in CONFIG_DIR.rglob('*.py'):
        if path.relative_to(CONFIG_DIR).as_posix() in BACKBONE_SWAP_CONFIGS:
            continue
        text = path.read_text()
        assert not re.search(r'\w+::', text), f'{path} uses a cross-package _base_'
    for name in BACKBONE_SWAP_CONFIGS:
        assert (CONFIG_DIR / name).read_text().startswith('# Backbone swapping')


@pytest.mark.parametrize('s', SCALES)
def test_imagenet_e150_recipe(s):
    cfg = load(E150.format(s))
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmdice.models' in cfg.custom_imports.imports
    channels = DiCENet.arch_settings[s]
    assert cfg.model.backbone.type == 'mmdice.DiCENet'
    assert cfg.model.backbone.widen_factor == s
    assert cfg.model.head.type == 'mmdice.DiCEClsHead'
    assert (cfg.model.head.in_channels, cfg.model.head.mid_channels) == (channels[4], channels[5])
    assert cfg.model.head.num_classes == 1000
    assert cfg.model.head.dropout_ratio == (0.1 if s <= 1.0 else 0.2)
    assert cfg.model.head.loss.type == 'CrossEntropyLoss'
    # under 80 MFLOPs (s <= 1.0) the crop keeps >= 20 % of the image
    assert crop_range(cfg) == ((0.2, 1.0) if s <= 1.0 else (0.08, 1.0))
    val_pipeline = [t['type'] for t in cfg.val_dataloader.dataset.pipeline]
    assert val_pipeline == ['LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs']
    assert cfg.val_dataloader.dataset.pipeline[1].scale == 256
    assert cfg.val_dataloader.dataset.pipeline[2].crop_size == 224
    assert cfg.train_dataloader.batch_size * NUM_GPUS == 512
    assert cfg.optim_wrapper.get('accumulative_counts', 1) == 1
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == \
        ('SGD', 0.1, 0.9, 4e-5)
    assert cfg.auto_scale_lr.base_batch_size == 512
    assert cfg.train_cfg.max_epochs == 150
    assert not cfg.get('custom_hooks')


@pytest.mark.parametrize('s', SCALES)
def test_imagenet_e300_recipe(s):
    cfg = load(E300.format(s))
    e150 = load(E150.format(s))
    assert cfg.model.backbone == e150.model.backbone
    assert cfg.model.head.dropout_ratio == e150.model.head.dropout_ratio
    assert crop_range(cfg) == crop_range(e150)
    assert cfg.model.head.loss.type == 'LabelSmoothLoss'
    assert cfg.model.head.loss.label_smooth_val == 0.1
    accumulative_counts = cfg.optim_wrapper.accumulative_counts
    assert accumulative_counts * cfg.train_dataloader.batch_size * NUM_GPUS == 2048
    assert [hook.type for hook in cfg.custom_hooks] == ['EMAHook']
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.param_scheduler[-1].end == 300
    # linear scaling of E150's lr 0.1 @ 512 to the 2048 effective batch
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.1 * 2048 / 512)


@pytest.mark.parametrize('name', [*imagenet_configs(), 'dicenet-s0.5_1xb32_shapes-64px.py',
                                  'dicenet-s2.4_8xb64_coco-multilabel.py'])
def test_model_builds(name):
    cfg = load(name)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    head = model.head
    assert head.grouped_fc.in_channels == model.backbone.channels[4]
    assert head.fc.out_features == cfg.model.head.num_classes


@pytest.mark.parametrize('name', [E150.format(0.1), E300.format(1.0)])
def test_forward_224(name):
    cfg = load(name)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        scores = model(torch.randn(1, 3, 224, 224), mode='tensor')
    assert scores.shape == (1, 1000)
    assert torch.isfinite(scores).all()


def build_scheduler(cfg, optimizer, epoch_length=10):
    """Build like mmengine's Runner (epoch-based; warm-ups converted to iterations)."""
    cfg = dict(cfg)
    scheduler_type = PARAM_SCHEDULERS.get(cfg.pop('type'))
    if cfg.pop('convert_to_iter_based', False):
        return scheduler_type.build_iter_from_epoch(optimizer, epoch_length=epoch_length,
                                                    **cfg)
    return scheduler_type(optimizer, **cfg)


@pytest.mark.parametrize('name', [E150.format(1.0), E300.format(1.0)])
def test_param_schedulers_build_and_follow_the_recipe(name):
    cfg = load(name)
    init_default_scope(cfg.default_scope)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                lr=cfg.optim_wrapper.optimizer.lr)
    scheduler_cfgs = cfg.param_scheduler
    if isinstance(scheduler_cfgs, dict):
        scheduler_cfgs = [scheduler_cfgs]
    schedulers = [build_scheduler(scheduler, optimizer) for scheduler in scheduler_cfgs]
    if 'e300' in name:
        # 5 warm-up epochs (of 10 iterations here) up to lr 0.4, cosine to 0 at epoch 300
        assert [type(s).__name__ for s in schedulers] == ['LinearLR', 'CosineAnnealingLR']
        assert (schedulers[0].end, schedulers[1].begin, schedulers[1].end) == (5 * 10, 5, 300)
        return
    # E150: the EdgeNets hybrid schedule, lr 0.1 then 5-epoch cycles 0.5 .. 0.1
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    assert lrs == pytest.approx([0.1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.5, 0.4])


def test_shapes_config_runs_on_cpu():
    cfg = load('dicenet-s0.5_1xb32_shapes-64px.py')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model.backbone.input_size == 64
    assert cfg.model.head.num_classes == 3
    assert cfg.train_dataloader.dataset.data_root == 'data/shapes/classification'
    assert cfg.train_cfg.val_interval == 1
    assert cfg.default_hooks.checkpoint.interval == 1
    assert tuple(cfg.val_evaluator.topk) == (1, )


def test_coco_multilabel_config():
    cfg = load('dicenet-s2.4_8xb64_coco-multilabel.py')
    head = cfg.model.head
    assert head.type == 'mmdice.DiCEMultiLabelClsHead'
    assert head.num_classes == 80
    assert head.loss.type == 'CrossEntropyLoss' and head.loss.use_sigmoid
    assert cfg.data_preprocessor.to_onehot
    assert cfg.train_dataloader.dataset.type == 'MultiLabelDataset'
    metrics = {metric.type for metric in cfg.val_evaluator}
    assert metrics == {'MultiLabelMetric', 'AveragePrecision'}

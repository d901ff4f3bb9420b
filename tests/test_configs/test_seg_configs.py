"""Every DiCENet segmentation config builds and encodes the EdgeNets recipe."""
import glob
import os.path as osp
import re

import pytest
import torch

pytest.importorskip('mmseg')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmdice.models  # noqa: E402,F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'dicenet_seg')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
NAME = re.compile(r'dicenet-s(?P<s>[\d.]+)_1xb(?P<batch>\d+)-(?P<epochs>\d+)e_'
                  r'(?P<data>voc12aug|cityscapes|shapes)-(?P<h>\d+)x(?P<w>\d+)\.py')
CHANNELS = {0.2: [16, 16, 32, 64], 0.5: [24, 24, 48, 96], 0.75: [24, 24, 86, 172],
            1.0: [24, 24, 116, 232], 1.25: [24, 24, 144, 288], 1.5: [24, 24, 176, 352],
            1.75: [24, 24, 210, 420]}


def test_expected_configs_exist():
    for s in (0.2, 0.5, 0.75, 1.0, 1.25, 1.75):
        assert f'dicenet-s{s}_1xb40-100e_voc12aug-256x256.py' in CONFIGS
        assert f'dicenet-s{s}_1xb32-100e_voc12aug-384x384.py' in CONFIGS
    for s in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75):
        assert f'dicenet-s{s}_1xb25-100e_cityscapes-256x512.py' in CONFIGS
        assert f'dicenet-s{s}_1xb6-100e_cityscapes-512x1024.py' in CONFIGS
    assert all(NAME.fullmatch(name) for name in CONFIGS), CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_follows_recipe(name):
    from mmseg.registry import MODELS
    fields = NAME.fullmatch(name).groupdict()
    scale, data = float(fields['s']), fields['data']
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert cfg.default_scope == 'mmseg'
    assert not any('::' in base for base in cfg.get('_base_', []) or [])
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)

    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert backbone.type == 'mmdice.DiCENet' and head.type == 'mmdice.DiCESegHead'
    assert backbone.widen_factor == scale and backbone.num_stages == 2
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert head.align_corners is True
    assert list(head.in_channels) == CHANNELS[scale]
    assert cfg.train_dataloader.batch_size == int(fields['batch'])
    assert cfg.train_cfg.max_epochs == int(fields['epochs'])
    assert cfg.model.data_preprocessor.bgr_to_rgb is True
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert tuple(cfg.model.data_preprocessor.size) == (int(fields['h']), int(fields['w']))

    scheduler, = cfg.param_scheduler
    assert scheduler.type == 'mmdice.HybridLR' and scheduler.by_epoch
    assert scheduler.end == cfg.train_cfg.max_epochs
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'SGD' and optimizer.momentum == 0.9
    assert optimizer.weight_decay == 4e-5
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['decode_head'].lr_mult == 10

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-5 for m in norms)
    fine_tune = data != 'shapes' and int(fields['h']) in (384, 512)
    if data == 'shapes':
        return
    assert backbone.input_size == 224
    assert scheduler.cyclic_epochs == 61
    if data == 'voc12aug':
        assert head.num_classes == 21 and head.channels == 10
    else:
        assert head.num_classes == 20 and head.channels == 10
        weights = head.loss_decode.class_weight
        assert len(weights) == 20 and weights[19] == 0.0
        assert weights[0] == pytest.approx(2.815, rel=1e-3)
    # stage 2 (fine-tuning): lr 0.005, BN affine frozen, running stats still tracked
    assert optimizer.lr == (0.005 if fine_tune else 0.009)
    assert all(m.weight.requires_grad is (not fine_tune) for m in norms)
    assert all(m.bias.requires_grad is (not fine_tune) for m in norms)
    assert all(m.track_running_stats for m in norms)
    if fine_tune:
        assert cfg.load_from.startswith('work_dirs/dicenet-s')
        prelus = [m for m in model.modules() if isinstance(m, torch.nn.PReLU)]
        assert all(m.weight.requires_grad for m in prelus)


def test_decoder_gets_ten_times_the_lr():
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dicenet-s0.5_1xb40-100e_voc12aug-256x256.py'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr_of = {id(p): group['lr'] for group in wrapper.optimizer.param_groups
             for p in group['params']}
    for name, param in model.named_parameters():
        expected = 0.09 if name.startswith('decode_head.') else 0.009
        assert lr_of[id(param)] == pytest.approx(expected), name


def test_frozen_bn_fine_tuning_keeps_affine_but_updates_running_stats():
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dicenet-s0.2_1xb32-100e_voc12aug-384x384.py'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).train()
    norm = model.backbone.stem.bn
    weight, mean = norm.weight.detach().clone(), norm.running_mean.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.randn(2, 3, 64, 64), mode='tensor')
    out.square().mean().backward()
    optimizer.step()
    assert torch.equal(norm.weight, weight)
    assert not torch.equal(norm.running_mean, mean)


def test_readme_lists_every_released_model():
    text = open(osp.join(CONFIG_DIR, 'README.md'), encoding='utf-8').read()
    for s in (0.2, 0.5, 0.75, 1.0, 1.25, 1.75):
        assert f'dicenet-s{s}_1xb40-100e_voc12aug-256x256.py' in text
        assert f'dicenet-s{s}_1xb32-100e_voc12aug-384x384.py' in text
    for s in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75):
        assert f'dicenet-s{s}_1xb6-100e_cityscapes-512x1024.py' in text
    for miou in ('54.31', '60.23', '64.76', '63.40', '52.10'):
        assert miou in text

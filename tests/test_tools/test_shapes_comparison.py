"""tools/analysis_tools/shapes_comparison.py: the shapes version of an ImageNet
classification config, one end-to-end run on the CPU, and its input errors."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('mmpretrain')
from mmengine.config import Config  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DICENET_CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s1.0_8xb64_in1k.py'
SMALL_CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s0.1_8xb64_in1k.py'
SEG_CONFIG = REPO_ROOT / 'configs' / 'dicenet_seg' / 'dicenet-s0.5_1xb16-20e_shapes-64x64.py'


def load_tool():
    path = REPO_ROOT / 'tools' / 'analysis_tools' / 'shapes_comparison.py'
    spec = importlib.util.spec_from_file_location('shapes_comparison', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


@pytest.fixture(scope='module')
def recipe():
    return Config.fromfile(tool.RECIPE)


def classifier_config(backbone, head):
    return Config(dict(default_scope='mmpretrain', model=dict(
        type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
        head=head)))


def data_roots(cfg):
    return {cfg[loader].dataset.data_root
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}


def test_shapes_config_of_dicenet_imagenet_config(recipe):
    cfg = tool.shapes_config(Config.fromfile(DICENET_CONFIG), recipe, 6, '/data/shapes', 3)
    assert cfg.model.backbone == dict(type='mmdice.DiCENet', widen_factor=1.0, input_size=64)
    head = cfg.model.head
    assert head.type == 'mmdice.DiCEClsHead'
    assert (head.in_channels, head.mid_channels, head.dropout_ratio) == (464, 1024, 0.1)
    assert head.num_classes == 3 and tuple(head.topk) == (1, )
    assert dict(type='Normal', layer='Linear', std=0.01, bias=0) in head.init_cfg
    assert cfg.model.neck == dict(type='GlobalAveragePooling')
    assert data_roots(cfg) == {'/data/shapes'}
    assert cfg.train_cfg.max_epochs == 6 and cfg.randomness.seed == 3
    assert cfg.param_scheduler == recipe.param_scheduler
    assert cfg.optim_wrapper == recipe.optim_wrapper
    assert tool.backbone_form(cfg) == 'dimconv / dimfuse / pointwise'


def test_shapes_config_drops_imagenet_settings(recipe):
    imagenet = Config.fromfile(
        REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s1.0_8xb64-accum4-e300-ls-ema_in1k.py')
    cfg = tool.shapes_config(imagenet, recipe, 6, '/data/shapes', 0)
    assert cfg.model.head.loss == recipe.model.head.loss  # not ImageNet's label smoothing
    assert 'custom_hooks' not in cfg  # no EMA
    assert cfg.train_dataloader == {**recipe.train_dataloader,
                                    'dataset': {**recipe.train_dataloader.dataset,
                                                'data_root': '/data/shapes'}}


def test_shapes_config_of_linear_head_config(recipe):
    imagenet = classifier_config(
        dict(type='mmdice.DiCENet', widen_factor=0.5, spatial='depthwise', fusion='pointwise'),
        dict(type='LinearClsHead', num_classes=1000, in_channels=192, topk=(1, 5)))
    cfg = tool.shapes_config(imagenet, recipe, 1, 'shapes', 0)
    assert cfg.model.backbone.input_size == 64
    assert cfg.model.head.type == 'LinearClsHead' and cfg.model.head.in_channels == 192
    assert cfg.model.head.num_classes == 3 and tuple(cfg.model.head.topk) == (1, )
    assert data_roots(cfg) == {'shapes'} and cfg.train_cfg.max_epochs == 1
    assert tool.backbone_form(cfg) == 'depthwise / pointwise / pointwise'
    # 1 epoch: the warm-up only
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR']
    params, flops = tool.complexity(cfg)
    assert params > 0 and flops > 0


def test_schedule_follows_epochs(recipe):
    cosine = tool._schedule(recipe.param_scheduler, 6, 10)[-1]
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max) == (
        'CosineAnnealingLR', 1, 10, 9)


def test_backbone_without_input_size(recipe):
    imagenet = classifier_config(
        dict(type='MobileNetV2', widen_factor=0.5),
        dict(type='LinearClsHead', num_classes=1000, in_channels=1280))
    cfg = tool.shapes_config(imagenet, recipe, 6, 'shapes', 0)
    assert 'input_size' not in cfg.model.backbone
    assert tool.backbone_form(cfg) == '- / - / -'


def test_end_to_end(tmp_path):
    out = tmp_path / 'tables' / 'table.md'
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'analysis_tools' / 'shapes_comparison.py'),
         str(SMALL_CONFIG), '--epochs', '1', '--num-images', '60',
         '--data-root', str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'work'),
         '--out', str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list((tmp_path / 'data' / 'train').glob('*/*.png'))) == 45
    assert (tmp_path / 'work' / SMALL_CONFIG.stem / 'epoch_1.pth').is_file()
    table = out.read_text()
    assert table in result.stdout
    assert 'not a reproduction of the ImageNet numbers' in table
    assert '1 epoch on 45 train / 15 val' in table and 'seed 0' in table
    link = os.path.relpath(SMALL_CONFIG, out.parent)
    row = re.search(rf'\| \[{SMALL_CONFIG.stem}\]\({re.escape(link)}\) '
                    r'\| dimconv / dimfuse / pointwise \| ([\d.]+) \| ([\d.]+) '
                    r'\| ([\d.]+) \| (\d+) \|', table)
    assert row, table
    params, mflops, top1, _ = map(float, row.groups())
    assert params > 0 and mflops > 0 and 0 <= top1 <= 100


@pytest.mark.parametrize('configs, options, message', [
    (['missing.py'], [], 'config missing.py does not exist'),
    ([str(SMALL_CONFIG), str(SEG_CONFIG)], [],
     f'{SEG_CONFIG}: not an mmpretrain ImageClassifier config'),
    ([str(SMALL_CONFIG)], ['--epochs', '0'], '--epochs must be at least 1, got 0'),
])
def test_bad_inputs(tmp_path, capsys, configs, options, message):
    out = tmp_path / 'table.md'
    status = tool.main([*configs, *options, '--data-root', str(tmp_path / 'data'),
                        '--work-dir', str(tmp_path / 'work'), '--out', str(out)])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(error) == 1
    assert error[0].startswith('error: ') and message in error[0]
    assert not out.exists() and not (tmp_path / 'data').exists()
    assert not (tmp_path / 'work').exists()

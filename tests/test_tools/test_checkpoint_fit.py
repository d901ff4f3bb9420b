"""A checkpoint that does not fit the config's model: tools/test.py, tools/train.py
(load_from) and build_model_from_config refuse it with one line naming the first
mismatching key, both shapes and the build settings of the checkpoint's meta;
--allow-partial-load loads it and lists every key in the log."""
import os
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmpretrain')
from mmengine.config import Config  # noqa: E402

from mmdice.apis import build_model_from_config, convert_edgenets_checkpoint  # noqa: E402
from mmdice.models.backbones.dicenet import DiCENet  # noqa: E402
from mmdice.testing import generate_shapes_classification  # noqa: E402
from mmdice.utils import CheckpointMismatchError, build_settings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s0.5_1xb32_shapes-64px.py'
MISMATCH = (rf'error: checkpoint (?P<path>\S+) does not fit the model of {CONFIG}: '
            r'(?P<count>\d+) tensors differ in shape \(first (?P<key>backbone\.\S+): '
            r'checkpoint (?P<theirs>\[[\d, ]+\]), model (?P<ours>\[[\d, ]+\])\), '
            r'missing keys: 1 \(first head\.fc\.bias\), '
            r'unexpected keys: 1 \(first extra\.weight\); '
            r'the checkpoint is for widen_factor=1\.0, the model builds widen_factor=0\.5; '
            r'--allow-partial-load loads only the tensors that fit$')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_classification(str(root), num_images=24, image_size=64, seed=0)
    return root


@pytest.fixture(scope='module')
def wider_checkpoint(tmp_path_factory):
    """An s=1.0 checkpoint for the s=0.5 config, one key missing and one unexpected."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.backbone.widen_factor = 1.0
    cfg.model.head.in_channels = DiCENet.arch_settings[1.0][-1]
    model = build_model_from_config(cfg)
    state_dict = model.state_dict()
    del state_dict['head.fc.bias']
    state_dict['extra.weight'] = torch.zeros(2)
    meta = build_settings(model)
    assert meta == dict(task='classification', widen_factor=1.0, input_size=[64, 64],
                        deploy=False)
    path = tmp_path_factory.mktemp('checkpoints') / 'dicenet-s1.0.pth'
    torch.save({'state_dict': state_dict, 'meta': meta}, path)
    return path


def run_tool(tool, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    return subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)],
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=600)


def data_options(data_root):
    return [f'{loader}.dataset.data_root={data_root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def assert_mismatch_line(result, checkpoint):
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(MISMATCH, line)
    assert match, line
    assert match['path'] == str(checkpoint)
    assert match['theirs'] != match['ours']


def test_test_tool_refuses_a_checkpoint_of_another_width(tmp_path, data_root, wider_checkpoint):
    result = run_tool('test.py', CONFIG, wider_checkpoint, '--work-dir', tmp_path / 'work',
                      '--cfg-options', *data_options(data_root), cwd=tmp_path)
    assert_mismatch_line(result, wider_checkpoint)


def test_test_tool_partial_load_lists_every_key_in_the_log(tmp_path, data_root,
                                                           wider_checkpoint):
    work_dir = tmp_path / 'work'
    result = run_tool('test.py', CONFIG, wider_checkpoint, '--work-dir', work_dir,
                      '--allow-partial-load', '--cfg-options', *data_options(data_root),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    logs = list(work_dir.glob('*/*.log'))
    assert len(logs) == 1, logs
    log = logs[0].read_text()
    assert f'partial load of checkpoint {wider_checkpoint} into the model of {CONFIG}:' in log
    assert 'shape differs: backbone.' in log
    assert 'missing key: head.fc.bias' in log
    assert 'unexpected key: extra.weight' in log
    assert 'accuracy/top1' in log


def test_train_tool_refuses_a_load_from_of_another_width(tmp_path, data_root, wider_checkpoint):
    result = run_tool('train.py', CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                      *data_options(data_root), f'load_from={wider_checkpoint}', cwd=tmp_path)
    assert_mismatch_line(result, wider_checkpoint)


def test_build_model_from_config_gives_the_same_error(wider_checkpoint):
    with pytest.raises(CheckpointMismatchError) as error:
        build_model_from_config(str(CONFIG), str(wider_checkpoint))
    message = str(error.value)
    assert message.startswith(f'checkpoint {wider_checkpoint} does not fit the model of '
                              f'{CONFIG}: ')
    assert 'the checkpoint is for widen_factor=1.0, the model builds widen_factor=0.5' in message
    assert '\n' not in message


def test_deploy_checkpoint_names_deploy_in_a_trained_config(tmp_path):
    from mmdice.apis import reparameterize_checkpoint
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'state_dict': build_model_from_config(str(CONFIG)).state_dict()}, checkpoint)
    deployed = tmp_path / 'deploy.pth'
    reparameterize_checkpoint(str(CONFIG), str(checkpoint), str(deployed))
    meta = torch.load(deployed, map_location='cpu', weights_only=True)['meta']
    assert meta == dict(task='classification', widen_factor=0.5, input_size=[64, 64],
                        deploy=True)
    with pytest.raises(CheckpointMismatchError,
                       match='the checkpoint is for deploy=True, the model builds deploy=False'):
        build_model_from_config(str(CONFIG), str(deployed))


WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO_ROOT, '..', 'shared', 'edgenets_weights'))


def test_converted_authors_checkpoint_names_its_width(tmp_path):
    pytest.importorskip('mmseg')
    src = osp.join(WEIGHTS, 'dicenet_s_0.5_pascal_256x256.pth')
    if not osp.isfile(src):
        pytest.skip(f'{src} missing (set MMDICE_EDGENETS_WEIGHTS)')
    dst = tmp_path / 'dicenet-s0.5_voc.pth'
    convert_edgenets_checkpoint(src, str(dst))
    meta = torch.load(dst, map_location='cpu', weights_only=True)['meta']
    assert (meta['task'], meta['widen_factor'], meta['input_size'], meta['deploy']) == \
        ('segmentation', 0.5, [224, 224], False)
    config = REPO_ROOT / 'configs' / 'dicenet_seg' / 'dicenet-s1.0_1xb40-100e_voc12aug-256x256.py'
    with pytest.raises(CheckpointMismatchError,
                       match=r'tensors differ in shape \(first backbone\.\S+: checkpoint '
                       r'\[.*the checkpoint is for widen_factor=0\.5, '
                       r'the model builds widen_factor=1\.0$'):
        build_model_from_config(str(config), str(dst))

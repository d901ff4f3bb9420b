"""End to end: tools/train.py, tools/test.py, --resume and torchrun on the shapes data.

Trains the small DiCENet of configs/dicenet/dicenet-s0.5_1xb32_shapes-64px.py
on a generated shapes set on the CPU, as subprocesses exactly as a user runs
them (one thread each, so the two-process run fits a 2-core machine).
"""
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmpretrain')
from mmdice.engine.launch import prepare_cpu_distributed  # noqa: E402
from mmdice.testing import SHAPE_CLASSES, generate_shapes_classification  # noqa: E402
from mmdice.utils.torch_load import allow_mmengine_checkpoint_globals  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s0.5_1xb32_shapes-64px.py'
TRAIN_IMAGES, VAL_IMAGES = 1920, 480
EPOCHS = 6  # the config's schedule
ITERS_PER_EPOCH = TRAIN_IMAGES // 32


def run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *map(str, args)], cwd=str(cwd), env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def data_options(data_root, **extra):
    options = {f'{loader}.dataset.data_root': str(data_root)
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update(extra)
    return ['--cfg-options', *(f'{key}={value}' for key, value in options.items())]


def logged_train_iter(log, epoch, iteration, iters_per_epoch):
    """Whether the log has the line of training iteration ``iteration`` of ``epoch``."""
    pattern = rf'Epoch\(train\)\s+\[\s*{epoch}\]\[\s*{iteration}/{iters_per_epoch}\]'
    return re.search(pattern, log) is not None


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    counts = generate_shapes_classification(
        str(root), num_images=TRAIN_IMAGES + VAL_IMAGES, image_size=64, seed=0,
        val_fraction=VAL_IMAGES / (TRAIN_IMAGES + VAL_IMAGES))
    assert counts == {'train': TRAIN_IMAGES, 'val': VAL_IMAGES}
    return root


@pytest.fixture(scope='module')
def trained(shapes_root, tmp_path_factory):
    """Work dir of a short training run of the shapes config."""
    work_dir = tmp_path_factory.mktemp('work')
    log = run([REPO_ROOT / 'tools' / 'train.py', CONFIG, '--work-dir', work_dir,
               *data_options(shapes_root, **{'train_cfg.max_epochs': EPOCHS})], cwd=work_dir)
    assert logged_train_iter(log, EPOCHS, ITERS_PER_EPOCH, ITERS_PER_EPOCH)
    return work_dir


def test_train_writes_checkpoints_and_validates(trained):
    assert (trained / f'epoch_{EPOCHS}.pth').is_file()
    assert (trained / 'last_checkpoint').read_text().strip().endswith(f'epoch_{EPOCHS}.pth')
    assert list(trained.glob('best_accuracy_top1_epoch_*.pth'))
    logs = list(trained.glob('*/*.log'))
    assert logs and re.search(r'Epoch\(val\)\s+\[1\]', logs[0].read_text())


def test_checkpoint_loads_with_weights_only(trained):
    checkpoint = trained / f'epoch_{EPOCHS}.pth'
    # stock torch >= 2.6 refuses the mmengine message hub (HistoryBuffer, numpy) ...
    code = ('import sys, torch; torch.load(sys.argv[1], weights_only=True)')
    refused = subprocess.run([sys.executable, '-c', code, str(checkpoint)],
                             capture_output=True, text=True)
    if hasattr(torch.serialization, 'add_safe_globals'):
        assert refused.returncode != 0 and 'HistoryBuffer' in refused.stderr
    # ... and loads it once mmdice has allow-listed exactly those globals
    allow_mmengine_checkpoint_globals()
    state = torch.load(str(checkpoint), map_location='cpu', weights_only=True)
    assert state['meta']['epoch'] == EPOCHS
    assert state['message_hub']['log_scalars']['train/loss'].mean() > 0
    assert 'backbone.stem.conv.weight' in state['state_dict']


def test_test_tool_accuracy_above_chance(trained, shapes_root):
    predictions = trained / 'predictions.pkl'
    log = run([REPO_ROOT / 'tools' / 'test.py', CONFIG, trained / f'epoch_{EPOCHS}.pth',
               '--work-dir', trained / 'test', '--out', predictions,
               *data_options(shapes_root)], cwd=trained)
    reported = float(re.findall(r'accuracy/top1: ([\d.]+)', log)[-1])
    with open(predictions, 'rb') as f:
        samples = pickle.load(f)
    assert len(samples) == VAL_IMAGES
    correct = sum(int(s['pred_label'][0]) == int(s['gt_label'][0]) for s in samples)
    accuracy = 100.0 * correct / len(samples)
    assert accuracy == pytest.approx(reported, abs=0.01)
    # chance is 33.3 %; 50 % on 480 images is 7.7 standard deviations above it
    assert len(SHAPE_CLASSES) == 3
    assert accuracy > 50.0, f'top-1 {accuracy:.1f} % is not clearly above chance'


def test_resume_continues_from_last_checkpoint(trained, shapes_root, tmp_path):
    # A copy of the training's work dir: the tests after this one see it as trained.
    work_dir = tmp_path / 'work'
    shutil.copytree(trained, work_dir)
    log = run([REPO_ROOT / 'tools' / 'train.py', CONFIG, '--work-dir', work_dir, '--resume',
               *data_options(shapes_root, **{'train_cfg.max_epochs': EPOCHS + 1})], cwd=work_dir)
    assert f'resumed epoch: {EPOCHS}, iter: {EPOCHS * ITERS_PER_EPOCH}' in log
    assert not re.search(r'Epoch\(train\)\s+\[\s*1\]', log)
    assert logged_train_iter(log, EPOCHS + 1, ITERS_PER_EPOCH, ITERS_PER_EPOCH)
    allow_mmengine_checkpoint_globals()
    state = torch.load(str(work_dir / f'epoch_{EPOCHS + 1}.pth'), map_location='cpu')
    assert (state['meta']['epoch'], state['meta']['iter']) == \
        (EPOCHS + 1, (EPOCHS + 1) * ITERS_PER_EPOCH)


def torchrun(args, cwd):
    return run(['-m', 'torch.distributed.run', '--nproc_per_node=2',
                f'--master_port={free_port()}', *args], cwd=cwd)


def test_torchrun_two_processes_gloo_exit_cleanly(shapes_root, tmp_path):
    """Two consecutive two-process trainings and a two-process test, each exiting 0.

    Before ``distributed_session`` a rank aborted at exit in about one run of
    four (gloo's threads outlived the never-destroyed process group).
    """
    options = data_options(shapes_root, **{'train_cfg.max_epochs': 1,
                                           'train_dataloader.dataset.indices': 128,
                                           'val_dataloader.dataset.indices': 64,
                                           'test_dataloader.dataset.indices': 64})
    work_dir = tmp_path / 'ddp'
    for _ in range(2):
        log = torchrun([REPO_ROOT / 'tools' / 'train.py', CONFIG, '--launcher', 'pytorch',
                        '--work-dir', work_dir, *options], cwd=tmp_path)
        assert 'Distributed training: True' in log
        # 128 images on 2 ranks x 32 per batch: 2 iterations per epoch (4 on one process)
        assert logged_train_iter(log, 1, 2, 2)
    assert (work_dir / 'epoch_1.pth').is_file()
    log = torchrun([REPO_ROOT / 'tools' / 'test.py', CONFIG, work_dir / 'epoch_1.pth',
                    '--launcher', 'pytorch', '--work-dir', tmp_path / 'ddp_test', *options],
                   cwd=tmp_path)
    assert re.search(r'accuracy/top1: [\d.]+', log)


DISTRIBUTED_SESSION_SCRIPT = """
import os, sys
import torch
from mmdice.engine.launch import distributed_session
with distributed_session():
    torch.distributed.init_process_group('gloo', rank=int(os.environ['RANK']),
                                         world_size=int(os.environ['WORLD_SIZE']))
    tensor = torch.ones(1000)
    for _ in range(20):
        torch.distributed.all_reduce(tensor)
    assert tensor[0] == 2 ** 20
assert not torch.distributed.is_initialized()
"""


def test_distributed_session_leaves_the_process_group(tmp_path):
    """Without the session this script aborts at exit in most runs on this machine."""
    script = tmp_path / 'session.py'
    script.write_text(DISTRIBUTED_SESSION_SCRIPT)
    for _ in range(4):
        torchrun([script], cwd=tmp_path)


def test_train_amp(shapes_root, tmp_path):
    """--amp trains in mixed precision: mmengine's AmpOptimWrapper with a GPU,
    mmdice.BF16OptimWrapper (bfloat16 autocast) on a CPU."""
    work_dir = tmp_path / 'amp'
    log = run([REPO_ROOT / 'tools' / 'train.py', CONFIG, '--amp', '--work-dir', work_dir,
               *data_options(shapes_root, **{'train_cfg.max_epochs': 1,
                                             'train_dataloader.dataset.indices': 64,
                                             'val_dataloader.dataset.indices': 32})],
              cwd=tmp_path)
    wrapper = 'AmpOptimWrapper' if torch.cuda.is_available() else 'mmdice.BF16OptimWrapper'
    assert f"type='{wrapper}'" in log
    assert logged_train_iter(log, 1, 2, 2)
    losses = [float(loss) for loss in re.findall(r'\bloss: ([\d.]+)', log)]
    assert losses and all(0 < loss < 10 for loss in losses)
    assert (work_dir / 'epoch_1.pth').is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU set-up is skipped with a GPU')
def test_cpu_distributed_needs_gloo_and_torchrun():
    from mmengine.config import Config
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert prepare_cpu_distributed(cfg, 'none') is False
    with pytest.raises(ValueError, match='gloo'):
        prepare_cpu_distributed(cfg, 'pytorch')
    with pytest.raises(ValueError, match='launcher'):
        prepare_cpu_distributed(cfg, 'slurm')

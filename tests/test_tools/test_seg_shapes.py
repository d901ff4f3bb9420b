"""End to end: train DiCENet segmentation on generated shapes with tools/train.py,
evaluate with tools/test.py, and beat the trivial all-background predictor."""
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('mmseg')
from mmdice.testing.shapes import SHAPE_CLASSES, generate_shapes_segmentation  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
EPOCHS = 12


def all_background_miou(data_root):
    """mIoU (%) of predicting 'background' everywhere, over classes present in val."""
    with open(osp.join(data_root, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        stems = f.read().split()
    counts = np.zeros(len(SHAPE_CLASSES) + 1)
    for stem in stems:
        mask = np.asarray(Image.open(osp.join(data_root, 'SegmentationClass', stem + '.png')))
        counts += np.bincount(mask.ravel(), minlength=counts.size)[:counts.size]
    present = counts > 0
    ious = np.zeros(counts.size)
    ious[0] = counts[0] / counts.sum()  # background: intersection = its pixels, union = all
    return 100 * ious[present].mean()


def run_tool(script, *args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
               # tiny model: one thread avoids OpenMP stalls on a busy 2-core box
               OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', script), *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_and_test_shapes_segmentation(tmp_path):
    data_root = str(tmp_path / 'shapes')
    counts = generate_shapes_segmentation(data_root, num_images=160, image_size=64, seed=0)
    assert counts == {'train': 120, 'val': 40}
    baseline = all_background_miou(data_root)

    roots = [f'{split}_dataloader.dataset.data_root={data_root}'
             for split in ('train', 'val', 'test')]
    work_dir = str(tmp_path / 'work')
    run_tool('train.py', CONFIG, '--work-dir', work_dir, '--cfg-options', *roots,
             f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
             f'param_scheduler.0.end={EPOCHS}', 'param_scheduler.0.cyclic_epochs=7',
             f'default_hooks.checkpoint.interval={EPOCHS}', cwd=str(tmp_path))
    checkpoint = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    assert osp.isfile(checkpoint)

    output = run_tool('test.py', CONFIG, checkpoint, '--work-dir', str(tmp_path / 'test'),
                      '--cfg-options', *roots, cwd=str(tmp_path))
    miou = float(re.findall(r'mIoU: ([\d.]+)', output)[-1])
    print(f'shapes mIoU {miou:.2f} vs all-background {baseline:.2f}')
    assert miou > baseline + 8

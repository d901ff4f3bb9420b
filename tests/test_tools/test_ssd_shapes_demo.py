"""The `make demo` path (tools/demo.sh) at reduced size: generate, train, test, draw."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip('mmdet')
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_demo_trains_tests_and_draws(tmp_path):
    work_dir, data_root = tmp_path / 'work', tmp_path / 'shapes'
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(REPO_ROOT),
               WORK_DIR=str(work_dir), DATA_ROOT=str(data_root), NUM_IMAGES='16',
               IMAGE_SIZE='96', OMP_NUM_THREADS='2',
               TRAIN_OPTIONS='train_cfg.max_epochs=1 train_dataloader.batch_size=4')
    result = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'demo.sh')], env=env,
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # 12 training images at batch 4: 3 iterations, then the checkpoint of epoch 1
    assert re.search(r'Epoch\(train\)\s+\[1\]\[3/3\]', log)
    assert (work_dir / 'epoch_1.pth').is_file()
    # mmdet's COCO bbox table of the held-out split
    assert 'Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=1000 ]' in log
    assert re.search(r'coco/bbox_mAP_50: [\d.]+', log)
    val_images = json.loads((data_root / 'annotations' / 'val.json').read_text())['images']
    drawn = sorted((work_dir / 'test').glob('*/vis/*.jpg'))
    assert len(drawn) == len(val_images) == 4
    with Image.open(drawn[0]) as image:
        # DetLocalVisualizer draws ground truth and prediction side by side
        assert image.size == (2 * 96, 96)


def test_missing_dataset_is_named_before_training(tmp_path):
    missing = tmp_path / 'no_shapes'
    config = REPO_ROOT / 'configs' / 'ssd' / 'dicenet-s0.5_ssd300_shapes.py'
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', f'train_dataloader.dataset.data_root={missing}'],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), cwd=str(tmp_path),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: train_dataloader.dataset: data_root '{missing}' is not a directory. Prepare "
        "the dataset (see the README of the config's folder) or point the config at it, e.g. "
        '--cfg-options train_dataloader.dataset.data_root=PATH')
    assert 'Traceback' not in result.stderr

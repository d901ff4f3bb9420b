"""The headline command, `tools/train.py configs/ssd/dicenet_ssd512_coco.py`, as a new user
runs it: COCO-format data with COCO's 80 categories in data/coco/ and no SSD300 checkpoint.

Without the SSD300 checkpoint of step 1 it stops with one line naming the recipe and both
ways forward; with `--cfg-options load_from=None` it trains (one iteration), validates with
the COCO metric, and its checkpoint passes mmdet's own tools/test.py (from mmdet's .mim).
Tiny generated images (the pipeline resizes them to 512) keep it to seconds of compute.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('mmdet')
from mmdice.testing import generate_shapes_detection  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'ssd' / 'dicenet_ssd512_coco.py'
STEP_ONE = REPO_ROOT / 'configs' / 'ssd' / 'dicenet_ssd300_coco.py'
# two images per split: one training iteration at batch 2, one validation batch
SMALL_RUN = ('train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
             'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
             'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False')


def run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='2')
    return subprocess.run([sys.executable, *map(str, args)], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def coco_project(tmp_path_factory):
    """A working directory with mmdet's COCO layout under data/coco (80 categories)."""
    from mmdet.datasets import CocoDataset
    root = tmp_path_factory.mktemp('project')
    generated = root / 'generated'
    counts = generate_shapes_detection(str(generated), num_images=4, image_size=64, seed=0,
                                       val_fraction=0.5,
                                       category_names=CocoDataset.METAINFO['classes'])
    assert counts == {'train': 2, 'val': 2}
    coco = root / 'data' / 'coco'
    (coco / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        (coco / 'annotations' / f'instances_{split}2017.json').symlink_to(
            generated / 'annotations' / f'{split}.json')
        (coco / f'{split}2017').symlink_to(generated / 'images')
    return root


def test_missing_ssd300_checkpoint_is_one_line_naming_the_recipe(coco_project):
    result = run([REPO_ROOT / 'tools' / 'train.py', CONFIG], cwd=coco_project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr[-3000:]
    message = lines[0]
    assert 'load_from checkpoint work_dirs/dicenet_ssd300_coco/epoch_100.pth does not exist' \
        in message
    assert f'python {REPO_ROOT / "tools" / "train.py"} {STEP_ONE}' in message
    assert f'writes work_dirs/dicenet_ssd300_coco/epoch_100.pth' in message
    assert '--cfg-options load_from=None' in message
    assert not (coco_project / 'work_dirs').exists()


def test_from_scratch_trains_validates_and_passes_mmdets_test_tool(coco_project):
    import mmdet
    work_dir = coco_project / 'work_dirs' / 'ssd512_scratch'
    result = run([REPO_ROOT / 'tools' / 'train.py', CONFIG, '--work-dir', work_dir,
                  '--cfg-options', 'load_from=None', *SMALL_RUN], cwd=coco_project)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert re.search(r'Epoch\(train\)\s+\[1\]\[1/1\]', log)
    assert re.search(r'Epoch\(val\) \[1\]\[1/1\]\s+coco/bbox_mAP: ', log)
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()

    mmdet_test = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'test.py'
    result = run([mmdet_test, CONFIG, checkpoint, '--work-dir', work_dir / 'mmdet_test',
                  '--cfg-options', *SMALL_RUN[-2:]], cwd=coco_project)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert re.search(r'Epoch\(test\) \[1/1\]\s+coco/bbox_mAP: ', log)

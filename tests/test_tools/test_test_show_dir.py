"""tools/test.py --show-dir draws every test image, also when the test set has
fewer iterations than the visualization hook's default interval (50)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmseg')
from mmdice.apis import build_model_from_config  # noqa: E402
from mmdice.testing.shapes import generate_shapes_segmentation  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'dicenet_seg' / 'dicenet-s0.5_1xb16-20e_shapes-64x64.py'


def test_show_dir_writes_an_image_per_test_image(tmp_path):
    data_root = tmp_path / 'shapes'
    counts = generate_shapes_segmentation(str(data_root), num_images=12, image_size=64, seed=0)
    assert counts['val'] == 3
    checkpoint = tmp_path / 'random.pth'
    torch.save({'state_dict': build_model_from_config(str(CONFIG)).state_dict()}, checkpoint)
    show_dir = tmp_path / 'vis'
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'test.py'), str(CONFIG), str(checkpoint),
         '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show_dir), '--cfg-options',
         *(f'{split}_dataloader.dataset.data_root={data_root}'
           for split in ('train', 'val', 'test'))],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    drawn = [path for path in show_dir.rglob('*') if path.suffix in ('.png', '.jpg')]
    assert len(drawn) == counts['val'], sorted(map(str, drawn))

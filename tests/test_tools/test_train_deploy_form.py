"""tools/train.py refuses a deploy-form model (inference-only fused ops) with a
message that says to train the training form."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmpretrain')
from mmdice.apis import build_model_from_config  # noqa: E402
from mmdice.testing import generate_shapes_classification  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s0.5_1xb32_shapes-64px.py'


def test_train_with_deploy_backbone_and_checkpoint_exits_with_the_reason(tmp_path):
    data_root = tmp_path / 'shapes'
    generate_shapes_classification(str(data_root), num_images=8, image_size=64, seed=0,
                                   val_fraction=0.5)
    checkpoint = tmp_path / 'deploy.pth'
    torch.save({'state_dict': build_model_from_config(str(CONFIG), deploy=True).state_dict()},
               checkpoint)
    options = {f'{loader}.dataset.data_root': str(data_root)
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({'model.backbone.deploy': 'True', 'load_from': str(checkpoint),
                    'train_dataloader.batch_size': '2', 'train_cfg.max_epochs': '1'})
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(CONFIG), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', *(f'{k}={v}' for k, v in options.items())],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1'))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert 'DiCENet is in its deploy form' in output, output[-3000:]
    assert 'deploy=False' in output and 'Epoch(train)' not in output

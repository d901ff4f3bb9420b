"""Config mistakes in tools/train.py and tools/test.py: an unknown argument of an mmdice
module and a neck given other channels than the mmdice backbone returns are one `error:`
line each, before the Runner logs anything (no traceback, no 200 lines of environment)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet')
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'tests' / 'data' / 'configs' / 'swap' / 'retinanet_dicenet-s1.0_fpn_1x_coco.py'
MISTAKES = {
    'model.backbone.widen_facter=1.0':
        "error: mmdice.DiCENet got unknown argument 'widen_facter' (did you mean 'widen_factor'?); "
        'it takes widen_factor, input_size, ',
    'model.neck.in_channels=[24,116,232,460]':
        'error: backbone mmdice.DiCENet returns [24, 116, 232, 464] channels (out_indices=(1, 2, 3, '
        '4)) but neck (FPN) takes in_channels=[24, 116, 232, 460]; DiCENet.level_channels: level '
        '0: 24, level 1: 24, level 2: 116, level 3: 232, level 4: 464. ',
}


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """A working directory whose data/coco passes the up-front dataset check, and a checkpoint."""
    root = tmp_path_factory.mktemp('project')
    (root / 'data' / 'coco' / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        (root / 'data' / 'coco' / 'annotations' / f'instances_{split}2017.json').write_text('{}')
    torch.save({'state_dict': {}}, root / 'model.pth')
    return root


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
@pytest.mark.parametrize('option', list(MISTAKES))
def test_mistake_is_one_error_line(project, tool, option):
    args = [CONFIG] + (['model.pth'] if tool == 'test.py' else [])
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args),
                             '--cfg-options', option], cwd=str(project),
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stdout == ''  # the Runner's log never started
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr[-3000:]
    assert errors[0].startswith(MISTAKES[option])
    assert 'Traceback' not in result.stderr

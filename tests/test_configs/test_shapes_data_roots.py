"""Every shapes config reads its data where the README's
``generate_shapes.py --task all --out data/shapes`` writes it."""
import re
import runpy
from pathlib import Path

import pytest
from mmengine.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES_CONFIGS = sorted(REPO_ROOT.glob('configs/*/*shapes*.py'))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(scope='module')
def written_folders(tmp_path_factory):
    """{task: folder relative to the working directory} of ``--task all --out data/shapes``."""
    cwd = tmp_path_factory.mktemp('cwd')
    generator = runpy.run_path(str(REPO_ROOT / 'tools' / 'dataset_converters' /
                                   'generate_shapes.py'))
    out = cwd / 'data' / 'shapes'
    generator['main'](['--task', 'all', '--out', str(out), '--num-images', '4',
                       '--image-size', '64'])
    return {path.name: path.relative_to(cwd).as_posix() for path in out.iterdir()
            if path.is_dir()}


def test_there_is_a_shapes_config_per_task():
    assert len(SHAPES_CONFIGS) == 3, SHAPES_CONFIGS


@pytest.mark.parametrize('config', SHAPES_CONFIGS, ids=lambda path: path.name)
def test_shapes_config_reads_what_generate_shapes_all_writes(config, written_folders):
    cfg = Config.fromfile(str(config))
    task = {'mmpretrain': 'classification', 'mmdet': 'detection',
            'mmseg': 'segmentation'}[cfg.default_scope]
    assert written_folders[task] == f'data/shapes/{task}'
    for loader in LOADERS:
        assert cfg[loader].dataset.data_root == written_folders[task], loader
    commands = re.findall(r'--out (\S+)', config.read_text())
    assert commands and all(out in ('data/shapes', written_folders[task]) for out in commands)

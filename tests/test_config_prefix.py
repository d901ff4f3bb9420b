"""`_base_ = 'mmdice::...'` from a user's own project, with mmdice imported from its
package folder (what an editable install or a source checkout on PYTHONPATH imports;
tests/test_packaging/test_wheel.py does the same with the built wheel installed)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip('mmdet')
REPO_ROOT = Path(__file__).resolve().parents[1]
USER_CONFIG = """
_base_ = 'mmdice::ssd/dicenet-s0.5_ssd300_shapes.py'
model = dict(bbox_head=dict(num_classes=5))
"""
# loads the user's config, builds its detector and prints what came from where
LOAD_AND_BUILD = """
import sys
{first_import}
from mmengine.config import Config
from mmengine.registry import init_default_scope
cfg = Config.fromfile('user_config.py')
init_default_scope(cfg.default_scope)
from mmdet.registry import MODELS
detector = MODELS.build(cfg.model)
print(mmdice.__file__)
print(cfg.default_scope, cfg.model.get('_scope_'), type(detector.backbone).__name__,
      detector.bbox_head.num_classes, cfg.train_dataloader.dataset.data_root)
"""


def run_python(code, cwd, env=None):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {}))
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def user_project(tmp_path):
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    return tmp_path


@pytest.mark.parametrize('first_import', ['import mmdice', 'import mmengine.config; import mmdice'])
def test_user_config_inherits_an_mmdice_config(user_project, first_import):
    result = run_python(LOAD_AND_BUILD.format(first_import=first_import), cwd=user_project)
    assert result.returncode == 0, result.stderr[-3000:]
    package, summary = result.stdout.strip().splitlines()[-2:]
    assert Path(package).parent == REPO_ROOT / 'mmdice'
    # the base's own default scope, no mmdice _scope_ on its dicts
    assert summary.split() == ['mmdet', 'None', 'DiCENet', '5', 'data/shapes/detection']


def test_train_tool_reads_an_mmdice_base(user_project):
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'train.py'),
                             'user_config.py'], cwd=str(user_project),
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                            capture_output=True, text=True, timeout=300)
    # the config loaded: what is missing now is the shapes data of the base config
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: train_dataloader.dataset: data_root 'data/shapes/detection' is not a directory. "
        "Prepare the dataset (see the README of the config's folder) or point the config at "
        "it, e.g. --cfg-options train_dataloader.dataset.data_root=PATH"]


def test_unknown_mmdice_config_is_named(tmp_path):
    (tmp_path / 'user_config.py').write_text("_base_ = 'mmdice::ssd/no_such_config.py'\n")
    result = run_python("""
        import mmdice
        from mmengine.config import Config
        Config.fromfile('user_config.py')
    """, cwd=tmp_path)
    assert result.returncode == 1
    assert 'FileNotFoundError: mmdice::ssd/no_such_config.py: ' in result.stderr
    assert 'no_such_config.py does not exist' in result.stderr


def test_import_mmdice_does_not_import_mmengine(tmp_path):
    result = run_python("""
        import sys
        import mmdice
        print(sorted(name for name in sys.modules if name.split('.')[0] in ('mmengine', 'torch')))
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == '[]'

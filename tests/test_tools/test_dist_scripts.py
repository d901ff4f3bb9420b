"""tools/dist_train.sh and dist_test.sh run the interpreter of README's set-up (the
repository's .venv/bin/python) when it exists, without an activated venv."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# script: (its arguments, the tool's arguments it passes on)
SCRIPTS = {'dist_train.sh': (['CFG.py', '2', '--amp'],
                             ['CFG.py', '--launcher', 'pytorch', '--amp']),
           'dist_test.sh': (['CFG.py', 'CKPT.pth', '2', '--out', 'r.pkl'],
                            ['CFG.py', 'CKPT.pth', '--launcher', 'pytorch', '--out', 'r.pkl'])}


def fake_python(path, name):
    """An executable that prints its name, its arguments and PYTHONPATH."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho {name} "$@"\necho "PYTHONPATH=$PYTHONPATH"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path):
    """A repository copy holding the scripts and their shared launcher, and a PATH
    whose python is another one."""
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    for script in (*SCRIPTS, 'dist_launch.sh'):
        shutil.copy(REPO_ROOT / 'tools' / script, repo / 'tools' / script)
    fake_python(tmp_path / 'bin' / 'python', 'path-python')
    path = os.pathsep.join([str(tmp_path / 'bin'), '/usr/bin', '/bin'])
    return repo, path


def run_script(repo, script, path, **env):
    env = dict({k: v for k, v in os.environ.items() if k not in ('PYTHON', 'PYTHONPATH')},
               PATH=path, **env)
    result = subprocess.run(['bash', str(repo / 'tools' / script), *SCRIPTS[script][0]],
                            cwd=str(repo.parent), env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    command, pythonpath = result.stdout.strip().splitlines()
    return command.split(), pythonpath


@pytest.mark.parametrize('script', list(SCRIPTS))
def test_scripts_use_the_venv_of_the_checkout(checkout, script):
    repo, path = checkout
    fake_python(repo / '.venv' / 'bin' / 'python', 'venv-python')
    command, pythonpath = run_script(repo, script, path)
    tool = str(repo / 'tools' / script.replace('dist_', '').replace('.sh', '.py'))
    assert command[:3] == ['venv-python', '-m', 'torch.distributed.run']
    assert '--nproc_per_node=2' in command
    assert command[command.index(tool) + 1:] == SCRIPTS[script][1]
    assert pythonpath == f'PYTHONPATH={repo}'


@pytest.mark.parametrize('script', list(SCRIPTS))
def test_scripts_fall_back_to_python_on_path_or_take_PYTHON(checkout, script, tmp_path):
    repo, path = checkout
    assert run_script(repo, script, path)[0][0] == 'path-python'
    fake_python(tmp_path / 'chosen' / 'python3', 'chosen-python')
    fake_python(repo / '.venv' / 'bin' / 'python', 'venv-python')
    command, _ = run_script(repo, script, path, PYTHON=str(tmp_path / 'chosen' / 'python3'))
    assert command[0] == 'chosen-python'

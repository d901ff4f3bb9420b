"""What `pip install mmdice`, `pip install "mmdice[mim]"` and `mim install mmdice`
install: the runtime requirements in install_requires, the OpenMMLab pins of
requirements/mminstall.txt in the `mim` extra (as mmdet and mmpretrain), openmim in
the `optional` extra; README names the commands. test_wheel.py checks the same in a
built wheel's METADATA."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain')


def requirement_lines(name):
    with open(osp.join(REPO, 'requirements', name), encoding='utf-8') as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


@pytest.fixture(scope='module')
def declared():
    """install_requires and extras_require of setup.py, read without building anything."""
    code = ('import json\nfrom distutils.core import run_setup\n'
            "dist = run_setup('setup.py', stop_after='init')\n"
            'print(json.dumps([dist.install_requires, dist.extras_require]))')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    install_requires, extras = json.loads(result.stdout.strip().splitlines()[-1])
    return install_requires, extras


def test_openmmlab_pins_are_the_mim_extra(declared):
    install_requires, extras = declared
    pins = requirement_lines('mminstall.txt')
    assert sorted(line.split('==')[0] for line in pins) == sorted(OPENMMLAB)
    assert all('==' in line for line in pins)
    assert extras['mim'] == pins
    assert 'mm' not in extras


def test_runtime_requirements_are_install_requires(declared):
    install_requires, extras = declared
    assert install_requires == requirement_lines('runtime.txt')
    assert not [line for line in install_requires if line.split('=')[0] in OPENMMLAB]
    # what the OpenMMLab packages import without declaring it (STACK.md)
    assert {'ftfy', 'regex', 'torchvision', 'numpy'} <= set(install_requires)
    assert extras['tests'] == requirement_lines('tests.txt')
    assert [line.split('>=')[0] for line in extras['optional']] == ['openmim']


def test_readme_names_what_each_command_installs():
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    for command in ('pip install "mmdice[mim]"', 'mim install mmdice', 'pip install openmim',
                    '"mmdice[optional]"'):
        assert command in readme, command
    assert 'both need\nthe non-editable install' not in readme

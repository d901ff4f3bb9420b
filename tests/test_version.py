"""The torch floor has one source, mmdice/version.py, which the requirements
and the install script follow."""
import os
import re

import pytest

from mmdice.version import MIN_TORCH_VERSION, TORCH_REQUIREMENT, torch_version_supported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def requirement_lines(name):
    with open(os.path.join(ROOT, 'requirements', name), encoding='utf-8') as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


def test_runtime_requirements_state_the_torch_floor():
    torch_lines = [line for line in requirement_lines('runtime.txt')
                   if re.match(r'torch\b', line)]
    assert torch_lines == [TORCH_REQUIREMENT]
    assert TORCH_REQUIREMENT == 'torch>={}.{}'.format(*MIN_TORCH_VERSION)


def test_setup_reads_the_floor_from_the_version_module():
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        source = f.read()
    assert 'mmdice/version.py' in source or "'version.py'" in source
    assert not re.search(r'MIN_TORCH_VERSION\s*=', source)


@pytest.mark.parametrize('version,supported', [('2.3.1', False), ('1.13.0+cu117', False),
                                               ('2.4.0', True), ('2.14.1+cpu', True),
                                               ('3.0.0a0', True), ('unknown', False)])
def test_torch_version_supported(version, supported):
    assert torch_version_supported(version) == supported

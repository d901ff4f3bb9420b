"""A non-editable build: the wheel carries the extension, configs, tools and
model-index.yml under mmdice/.mim (as the OpenMMLab codebases) and the licence.

Builds one wheel (CPU kernels only) from a copy of the source tree, so the
checkout gets no build folders or .mim copies.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LOCAL_ONLY = {'.git', '.venv', 'build', 'dist', 'work_dirs', 'data', '.pytest_cache'}
GENERATED = ('__pycache__', '*.pyc', '*.so', '*.egg-info', '.mim')


def copy_sources(target):
    """The repository without what building, installing or running left in it."""
    generated = shutil.ignore_patterns(*GENERATED)

    def ignore(folder, names):
        local = LOCAL_ONLY & set(names) if osp.samefile(folder, REPO) else set()
        return local | generated(folder, names)

    shutil.copytree(REPO, target, ignore=ignore)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    work = tmp_path_factory.mktemp('wheel')
    source, dist = work / 'mmdice', work / 'dist'
    copy_sources(source)
    env = dict(os.environ, FORCE_CUDA='0', MAX_JOBS=os.environ.get('MAX_JOBS', '2'))
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
                           '--no-deps', '--disable-pip-version-check', '-w', str(dist),
                           str(source)], env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path, ) = glob.glob(str(dist / 'mmdice-*.whl'))
    with zipfile.ZipFile(path) as archive:
        yield archive


def repo_files(folder, pattern):
    paths = glob.glob(osp.join(REPO, folder, '**', pattern), recursive=True)
    return sorted(osp.relpath(p, REPO) for p in paths if '__pycache__' not in p)


def test_wheel_ships_every_config_and_tool_under_mim(wheel):
    names = set(wheel.namelist())
    for path in repo_files('configs', '*.py') + repo_files('configs', '*.yml'):
        assert f'mmdice/.mim/{path}' in names, path
    for path in repo_files('tools', '*.py') + repo_files('tools', '*.sh'):
        assert f'mmdice/.mim/{path}' in names, path
    assert 'mmdice/.mim/tools/train.py' in names
    # The sources of the OpenVINO extension, built on demand (mmdice.ops.openvino).
    for path in repo_files('csrc/openvino', '*') + repo_files('csrc/common', '*.h'):
        assert f'mmdice/.mim/{path}' in names, path


def test_wheel_model_index_imports_metafiles_it_ships(wheel):
    names = set(wheel.namelist())
    index = yaml.safe_load(wheel.read('mmdice/.mim/model-index.yml'))
    assert index['Import']
    for metafile in index['Import']:
        assert f'mmdice/.mim/{metafile}' in names, metafile
        for model in yaml.safe_load(wheel.read(f'mmdice/.mim/{metafile}'))['Models']:
            assert f'mmdice/.mim/{model["Config"]}' in names, model['Name']


def test_wheel_has_the_extension_the_licence_and_no_tests(wheel):
    names = wheel.namelist()
    assert [n for n in names if n.startswith('mmdice/_ext') and n.endswith('.so')]
    licences = [n for n in names if '.dist-info/' in n and osp.basename(n) == 'LICENSE']
    assert len(licences) == 1
    assert b'Apache License' in wheel.read(licences[0])
    assert not [n for n in names if n.startswith(('tests/', 'benchmarks/'))]

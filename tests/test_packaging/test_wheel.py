"""A non-editable build: the wheel carries the extension, configs, tools and
model-index.yml under mmdice/.mim (as the OpenMMLab codebases), the licence and
the install metadata of requirements/; installed into a temporary environment it
lets a user's config inherit `mmdice::` configs from any directory.

Builds one wheel (CPU kernels only) from a copy of the source tree, so the
checkout gets no build folders or .mim copies.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
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
def wheel_path(tmp_path_factory):
    work = tmp_path_factory.mktemp('wheel')
    source, dist = work / 'mmdice', work / 'dist'
    copy_sources(source)
    env = dict(os.environ, FORCE_CUDA='0', MAX_JOBS=os.environ.get('MAX_JOBS', '2'))
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
                           '--no-deps', '--disable-pip-version-check', '-w', str(dist),
                           str(source)], env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path, ) = glob.glob(str(dist / 'mmdice-*.whl'))
    return path


@pytest.fixture(scope='module')
def wheel(wheel_path):
    with zipfile.ZipFile(wheel_path) as archive:
        yield archive


@pytest.fixture(scope='module')
def installed_wheel(wheel_path, tmp_path_factory):
    """The interpreter of a temporary virtual environment holding only the wheel's
    mmdice; the other packages come from this environment's site-packages, added
    as a plain path (so its editable mmdice, a .pth finder there, is not active)."""
    import site
    env = tmp_path_factory.mktemp('venv')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env)], check=True)
    python = str(env / 'bin' / 'python')
    own_site = subprocess.run([python, '-c', 'import site; print(site.getsitepackages()[0])'],
                              capture_output=True, text=True, check=True).stdout.strip()
    with open(osp.join(own_site, 'dependencies.pth'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    # without PYTHONPATH: a checkout on it (with an egg-info) reads as mmdice already installed
    without_pythonpath = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, '-m', 'pip', '--python', python, 'install',
                           '--no-deps', '--no-index', '--disable-pip-version-check', wheel_path],
                          capture_output=True, text=True, timeout=600, env=without_pythonpath)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return python, own_site


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


def test_wheel_metadata_declares_runtime_requirements_and_the_mim_extra(wheel):
    (metadata, ) = [n for n in wheel.namelist() if n.endswith('.dist-info/METADATA')]
    lines = wheel.read(metadata).decode().splitlines()
    requires = [line.split(': ', 1)[1] for line in lines if line.startswith('Requires-Dist: ')]
    extras = [line.split(': ', 1)[1] for line in lines if line.startswith('Provides-Extra: ')]
    assert sorted(extras) == ['mim', 'optional', 'tests']

    def requirement_lines(name):
        with open(osp.join(REPO, 'requirements', name), encoding='utf-8') as f:
            return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]

    unconditional = [r.replace(' ', '') for r in requires if ';' not in r]
    assert unconditional == [r.replace(' ', '') for r in requirement_lines('runtime.txt')]
    in_mim = [r.split(';')[0].replace(' ', '') for r in requires if 'extra == "mim"' in r]
    assert in_mim == requirement_lines('mminstall.txt')


USER_CONFIG = """
_base_ = 'mmdice::ssd/dicenet-s0.5_ssd300_shapes.py'
model = dict(bbox_head=dict(num_classes=5))
"""


def test_installed_wheel_loads_mmdice_configs_from_a_users_project(installed_wheel, tmp_path):
    python, own_site = installed_wheel
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    code = textwrap.dedent("""
        import mmdice
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile('user_config.py')
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        detector = MODELS.build(cfg.model)
        print(mmdice.__file__)
        print(type(detector.backbone).__name__, detector.bbox_head.num_classes)
    """)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([python, '-c', code], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    package, summary = proc.stdout.strip().splitlines()[-2:]
    assert package == osp.join(own_site, 'mmdice', '__init__.py')
    assert summary == 'DiCENet 5'
    # the wheel's own tools/train.py reads it too: what is missing next is the shapes data
    train = osp.join(own_site, 'mmdice', '.mim', 'tools', 'train.py')
    proc = subprocess.run([python, train, 'user_config.py'], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: train_dataloader.dataset: data_root 'data/shapes/detection' is not a directory")

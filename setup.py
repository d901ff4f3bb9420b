"""Build and install mmdice with its compiled DimConv op (``mmdice._ext``).

The CPU kernels are always built. The CUDA kernels are added when torch is a
CUDA build and either a GPU is visible or ``FORCE_CUDA=1`` is set. Install in
the target environment with ``pip install --no-build-isolation -e .``.

As in the OpenMMLab codebases, ``configs/``, ``tools/`` and ``model-index.yml``
are shipped inside the package as ``mmdice/.mim/`` (what ``mim`` reads): linked
for an editable install, copied into a wheel or a source distribution; so is
``csrc/``, from which ``mmdice.ops.openvino`` builds the OpenVINO extension.
"""
import glob
import os
import shutil
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def read_module(path):
    """The names a module of mmdice defines (``path`` relative to the checkout),
    without importing mmdice."""
    names = {}
    with open(os.path.join(ROOT, path), encoding='utf-8') as f:
        exec(compile(f.read(), path, 'exec'), names)
    return names


#: Version and torch floor.
VERSION = read_module('mmdice/version.py')
#: Compiler flags, shared with the OpenVINO extension's build.
BUILD_FLAGS = read_module('mmdice/ops/build_flags.py')


MIM_FILES = ('configs', 'tools', 'model-index.yml', 'csrc')


def mim_install_mode(argv):
    """'symlink' for an editable install, 'copy' for a wheel or sdist, else None."""
    if 'develop' in argv or 'editable_wheel' in argv:
        return 'symlink'
    if 'bdist_wheel' in argv or 'sdist' in argv:
        return 'copy'
    return None


def add_mim_extension():
    """Place configs, tools and model-index.yml under mmdice/.mim for mim.

    A source distribution holds them only under mmdice/.mim: they stay as shipped.
    """
    mode = mim_install_mode(sys.argv)
    if mode is None:
        return
    mim_path = os.path.join(ROOT, 'mmdice', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        source = os.path.join(ROOT, name)
        target = os.path.join(mim_path, name)
        if not os.path.exists(source):
            continue
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        if mode == 'symlink':
            os.symlink(os.path.relpath(source, mim_path), target)
        elif os.path.isdir(source):
            shutil.copytree(source, target,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(source, target)


def read_requirements(name):
    path = os.path.join(ROOT, 'requirements', name)
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def with_cuda(torch):
    if torch.version.cuda is None:
        return False
    return os.getenv('FORCE_CUDA', '0') == '1' or torch.cuda.is_available()


def check_torch_version(torch):
    if not VERSION['torch_version_supported'](torch.__version__):
        raise RuntimeError(f"mmdice needs {VERSION['TORCH_REQUIREMENT']} (tested with 2.14.1), "
                           f'found torch {torch.__version__}')


def make_extensions():
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:  # metadata-only queries (e.g. `pip show`) work without torch
        return [], {}
    check_torch_version(torch)

    sources = sorted(glob.glob('csrc/pytorch/*.cpp') + glob.glob('csrc/pytorch/cpu/*.cpp'))
    define_macros = []
    extra_compile_args = {'cxx': list(BUILD_FLAGS['EXT_CXX_FLAGS'])}
    extension = CppExtension
    if with_cuda(torch):
        sources += sorted(glob.glob('csrc/pytorch/cuda/*.cu'))
        define_macros.append(('WITH_CUDA', None))
        extra_compile_args['nvcc'] = list(BUILD_FLAGS['EXT_NVCC_FLAGS'])
        extension = CUDAExtension
    ext = extension(
        name='mmdice._ext',
        sources=sources,
        include_dirs=[os.path.join(ROOT, 'csrc')],
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
        extra_link_args=list(BUILD_FLAGS['EXT_LINK_FLAGS']),
    )
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


add_mim_extension()
ext_modules, cmdclass = make_extensions()

setup(
    name='mmdice',
    version=VERSION['__version__'],
    description='DiCENet (dimension-wise convolutions) for the OpenMMLab codebases',
    long_description=open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'benchmarks')),
    include_package_data=True,
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'mim': read_requirements('mminstall.txt'),
        'tests': read_requirements('tests.txt'),
        'optional': read_requirements('optional.txt'),
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)

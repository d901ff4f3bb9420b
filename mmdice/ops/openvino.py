"""The mmdice ops as OpenVINO extensions: build on demand, load in one line.

The library (``csrc/openvino``: the fused DiCE op as the OpenVINO operation
``DiCEFuse`` of opset ``mmdice``, and its mapping from the ONNX custom-domain
node ``mmdice.DiCEFuse``) runs the CPU loops of ``csrc/common/cpu``, the same
code as ``torch.ops.mmdice.dice_fuse``. It is compiled with the C++ compiler
(``$CXX``, else ``c++``) and the flags of :mod:`mmdice.ops.build_flags` (those
of ``mmdice._ext``'s kernels: ``setup.py`` reads the same file) against the
installed ``openvino`` wheel's headers and libraries the first time it is
asked for, into a cache folder
(``$MMDICE_OPENVINO_CACHE``, else ``~/.cache/mmdice/openvino``) named after a
hash of its sources, the OpenVINO version and the flags, so an edit or an
OpenVINO upgrade rebuilds it. Load it into a ``Core`` before reading an
exported model::

    import openvino as ov
    from mmdice.ops.openvino import load_openvino_extension

    core = ov.Core()
    load_openvino_extension(core)
    compiled = core.compile_model('model.xml', 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})

The export (:func:`mmdice.apis.export_openvino`) writes every fused DiCE
module as one ``DiCEFuse`` node: at its build size the node of
``torch.ops.mmdice.dice_fuse``, at other sizes that of
``torch.ops.mmdice_openvino.dice_fuse``
(:func:`~mmdice.ops.dice_fuse.dice_fuse_banded`, the export form
``DimConvFuse2d.banded_export``).

Imports ``openvino`` only when called (importing ``mmdice.ops`` does not).
"""
import glob
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from typing import List, Optional

from .build_flags import OPENVINO_CXX_FLAGS

#: File name of the built library.
LIBRARY_NAME = 'libmmdice_openvino.so'

#: The libraries the extension links: OpenVINO's core, its ONNX frontend and TBB.
OPENVINO_LIBRARIES = ('libopenvino.so', 'libopenvino_onnx_frontend.so', 'libtbb.so')


class OpenVINOExtensionError(RuntimeError):
    """The OpenVINO extension cannot be built or loaded; the message says why."""


def _openvino():
    try:
        import openvino
    except ImportError as error:
        raise OpenVINOExtensionError(
            'the mmdice OpenVINO extension needs the openvino package '
            f'(pip install openvino): {error}') from error
    return openvino


def csrc_root() -> str:
    """The ``csrc`` folder: beside the package in a source checkout, else the
    copy under ``mmdice/.mim`` of an installed one."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(osp.dirname(package), 'csrc'), osp.join(package, '.mim', 'csrc')):
        if osp.isdir(osp.join(root, 'openvino')):
            return root
    raise OpenVINOExtensionError(
        f'the C++ sources of the mmdice OpenVINO extension (csrc/openvino) are missing beside '
        f'{package}; install mmdice from its source tree')


def extension_sources(root: Optional[str] = None) -> List[str]:
    """The files the library is built from: ``csrc/openvino`` and the shared
    ``csrc/common`` headers, sorted."""
    root = root or csrc_root()
    patterns = ('openvino/*.cpp', 'openvino/*.hpp', 'common/*.h', 'common/cpu/*.h')
    return sorted(path for pattern in patterns for path in glob.glob(osp.join(root, pattern)))


def _openvino_paths():
    """(include folder, [library files]) of the installed openvino wheel."""
    package = osp.dirname(_openvino().__file__)
    include, libs = osp.join(package, 'include'), osp.join(package, 'libs')
    libraries = []
    for name in OPENVINO_LIBRARIES:
        found = sorted(glob.glob(osp.join(libs, name + '*')))
        if not osp.isdir(include) or not found:
            raise OpenVINOExtensionError(
                f'the openvino package at {package} has no C++ headers (include/) or no '
                f'{name} under libs/; the mmdice extension needs the openvino wheel from PyPI')
        libraries.append(found[0])
    return include, libraries


def default_cache_dir() -> str:
    """``$MMDICE_OPENVINO_CACHE``, else ``~/.cache/mmdice/openvino``."""
    return os.environ.get('MMDICE_OPENVINO_CACHE') or osp.join(
        osp.expanduser('~'), '.cache', 'mmdice', 'openvino')


def build_openvino_extension(cache_dir: Optional[str] = None, force: bool = False) -> str:
    """The path of the extension library, compiled first unless the cache folder
    ``cache_dir`` (default :func:`default_cache_dir`) holds one built from the
    same sources, OpenVINO version and flags (``force``: compile anyway).

    Raises :class:`OpenVINOExtensionError` when openvino, its headers, the
    sources or the compiler are missing, or the compiler fails (with its output).
    """
    openvino = _openvino()
    root = csrc_root()
    include, libraries = _openvino_paths()
    compiler = os.environ.get('CXX', 'c++')
    digest = hashlib.sha256()
    for part in (openvino.__version__, compiler, *OPENVINO_CXX_FLAGS):
        digest.update(part.encode() + b'\0')
    for path in extension_sources(root):
        digest.update(osp.relpath(path, root).encode() + b'\0')
        with open(path, 'rb') as file:
            digest.update(file.read())
    folder = osp.join(cache_dir or default_cache_dir(), digest.hexdigest()[:16])
    library = osp.join(folder, LIBRARY_NAME)
    if osp.isfile(library) and not force:
        return library
    if shutil.which(compiler) is None:
        raise OpenVINOExtensionError(
            f'no C++ compiler {compiler!r} on PATH to build the mmdice OpenVINO extension; '
            'install g++ or set CXX to one')
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.build-', dir=folder)
    try:
        target = osp.join(staging, LIBRARY_NAME)
        command = [compiler, *OPENVINO_CXX_FLAGS, f'-I{include}', f'-I{root}',
                   *sorted(glob.glob(osp.join(root, 'openvino', '*.cpp'))), '-o', target,
                   *libraries, f'-Wl,-rpath,{osp.dirname(libraries[0])}']
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise OpenVINOExtensionError(
                'building the mmdice OpenVINO extension failed:\n' + ' '.join(command) + '\n' +
                (result.stderr or result.stdout)[-4000:])
        os.replace(target, library)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return library


def load_openvino_extension(core, library: Optional[str] = None) -> str:
    """Add the mmdice operations to the OpenVINO ``core`` (``ov.Core``); returns
    the library path. ``library``: a built library (default: built or found by
    :func:`build_openvino_extension`)."""
    if library is None:
        library = build_openvino_extension()
    elif not osp.isfile(library):
        raise OpenVINOExtensionError(
            f'library: the mmdice OpenVINO extension {library!r} does not exist; build it '
            'with mmdice.ops.openvino.build_openvino_extension()')
    core.add_extension(library)
    return library

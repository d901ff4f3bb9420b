"""The mmdice ops as OpenVINO extensions: build on demand, load in one line.

The library (``csrc/openvino``: the fused DiCE op as the OpenVINO operation
``DiCEFuse`` of opset ``mmdice``, and its mapping from the ONNX custom-domain
node ``mmdice.DiCEFuse``) runs the CPU loops of ``csrc/common/cpu``, the same
code as ``torch.ops.mmdice.dice_fuse``. It is compiled with the C++ compiler
(``$CXX``, else ``c++``) against the installed ``openvino`` wheel's headers
and libraries the first time it is asked for, into a cache folder
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
``torch.ops.mmdice.dice_fuse``, at other sizes (:func:`banded_dice_fuse`)
that of ``torch.ops.mmdice_openvino.dice_fuse``, the same op with the banded
height- and width-wise kernels of :func:`~mmdice.ops.dynamic_scaling.band_kernels`.

Imports ``openvino`` only when called (importing ``mmdice.ops`` does not).
"""
import contextlib
import functools
import glob
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from typing import Iterator, List, Optional

import torch
from torch import Tensor, nn

from .dice_fuse import DimConvFuse2d, dice_fuse_epilogue
from .dynamic_scaling import band_kernels

#: File name of the built library.
LIBRARY_NAME = 'libmmdice_openvino.so'

#: Compiler flags of the build (besides include and library paths); OV_THREAD
#: as the wheel's CMake config sets it (ov::parallel_* run on its TBB).
CXX_FLAGS = ('-std=c++17', '-O3', '-shared', '-fPIC', '-DOV_THREAD=OV_THREAD_TBB_ADAPTIVE')

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
    for part in (openvino.__version__, compiler, *CXX_FLAGS):
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
        command = [compiler, *CXX_FLAGS, f'-I{include}', f'-I{root}',
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


@torch.library.custom_op('mmdice_openvino::dice_fuse', mutates_args=())
def dice_fuse_banded(x: Tensor, weight_depth: Tensor, weight_height: Tensor, weight_width: Tensor,
                     dilation: List[int], branch_scale: Tensor, branch_bias: Tensor,
                     branch_slope: Tensor, fuse_weight: Tensor, fuse_bias: Tensor,
                     out_slope: Tensor) -> Tensor:
    """The fused DiCE op of ``x`` (N, C, H, W) with banded weights: weight_height
    (H, Bh, k, k), weight_width (W, Bw, k, k) (``torch.ops.mmdice.dim_conv``'s
    form), the coefficients as for :func:`~mmdice.ops.dice_fuse`."""
    return dice_fuse_epilogue(
        torch.ops.mmdice.dim_conv(x, weight_depth, weight_height, weight_width, dilation),
        branch_scale, branch_bias, branch_slope, fuse_weight, fuse_bias, out_slope)


@dice_fuse_banded.register_fake
def _dice_fuse_banded_fake(x, *arguments):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _banded_forward(layer: DimConvFuse2d, bands: dict, x: Tensor) -> Tensor:
    size = tuple(x.shape[2:])
    if size == (layer.weight_height.shape[0], layer.weight_width.shape[0]):
        return type(layer).forward(layer, x)
    if size not in bands:  # computed eagerly, not under an export's fake tensors
        bands[size] = (band_kernels(layer.weight_height, size[0]).detach(),
                       band_kernels(layer.weight_width, size[1]).detach())
    return dice_fuse_banded(x, layer.weight_depth, *bands[size], list(layer.dilation),
                            *layer.coefficients())


@contextlib.contextmanager
def banded_dice_fuse(module: nn.Module, example: Tensor) -> Iterator[nn.Module]:
    """Within the block, the fused DiCE modules (:class:`DimConvFuse2d`) of
    ``module`` given an input of another size than their build size run
    :func:`dice_fuse_banded` (one op, so one ``DiCEFuse`` node in an export)
    instead of the resampling path. Their banded kernels are computed on entry
    by running ``module(example)``; the weights must not change in the block."""
    layers = [layer for layer in module.modules() if isinstance(layer, DimConvFuse2d)]
    try:
        for layer in layers:
            layer.forward = functools.partial(_banded_forward, layer, {})
        with torch.no_grad():
            module(example)
        yield module
    finally:
        for layer in layers:
            layer.__dict__.pop('forward', None)

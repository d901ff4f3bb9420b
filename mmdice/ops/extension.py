"""The compiled extension ``mmdice._ext`` and when its kernels run.

One place for what the operators of :mod:`mmdice.ops` share about their
kernels:

* the torch version floor (:data:`mmdice.version.MIN_TORCH_VERSION`), checked
  on import;
* loading ``mmdice._ext`` (:data:`EXT_AVAILABLE`), which registers
  ``torch.ops.mmdice.*``, and the one-time warning when it is missing;
* the device types each op has a kernel for (:data:`KERNEL_DEVICE_TYPES`),
  asked once at import: ``torch.compile`` cannot trace the dispatcher query;
* a :class:`KernelPolicy` per op: the dtypes it is built for per device type,
  the graph captures it runs under, the layouts it takes;
* :func:`use_fused_kernel`, the one decision "fused kernel or reference" for
  an op, its tensors and the context (:func:`graph_capture`, grad mode);
* :func:`reference_graph`, a block in which every op runs its reference and
  the models take their captured-graph form, eager or not.

The models' eager-only paths ask :func:`graph_capture` too.
"""
import contextlib
import dataclasses
import warnings
from typing import Dict, FrozenSet, Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmdice.version import MIN_TORCH_VERSION, torch_version_supported

__all__ = ['EXT_AVAILABLE', 'GraphCapture', 'graph_capture', 'KernelPolicy', 'use_fused_kernel',
           'FUSED_DTYPES', 'KERNEL_DEVICE_TYPES', 'reference_graph', 'in_reference_graph']


def check_torch_version(version: str) -> None:
    """Raise ImportError when torch ``version`` (e.g. '2.14.1+cpu') is below the floor."""
    if not torch_version_supported(version):
        raise ImportError('mmdice.ops needs torch >= {}.{} '.format(*MIN_TORCH_VERSION) +
                          f'(torch.library.register_fake and register_autograd), found torch '
                          f'{version}')


check_torch_version(torch.__version__)

try:
    from mmdice import _ext  # noqa: F401  (loading it registers torch.ops.mmdice.*)
except ImportError as error:  # pragma: no cover - exercised only without a build
    EXT_AVAILABLE = False
    _EXT_IMPORT_ERROR = error
else:
    EXT_AVAILABLE = True
    _EXT_IMPORT_ERROR = None

_fallback_warned = False


def _warn_fallback_once() -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(
            'mmdice._ext is not built, so the mmdice ops (DimConv, ...) run their slower '
            f'pure-PyTorch references ({_EXT_IMPORT_ERROR}). Build it with `pip install '
            '--no-build-isolation -e .` or `make env`.', RuntimeWarning, stacklevel=4)


class GraphCapture(NamedTuple):
    """The graph captures under way; all False when running eagerly."""
    compiling: bool  #: torch.compile or torch.export (dynamo)
    tracing: bool  #: torch.jit.trace (FLOP counting, TorchScript)
    exporting: bool  #: torch.export (ONNX export)


_reference_depth = 0


@contextlib.contextmanager
def reference_graph() -> Iterator[None]:
    """Within the block every mmdice op runs its pure-PyTorch reference (with
    autograd, also in a deploy form) and :func:`graph_capture` reports a
    compiling trace, so the models take the form of their captured graphs
    (standard operators, no in-place copies into views): one plain-PyTorch
    graph, the same eager, traced and trained, for tools that hook, trace or
    fine-tune it (NNCF's quantization-aware training, ONNX export of its result)."""
    global _reference_depth
    _reference_depth += 1
    try:
        yield
    finally:
        _reference_depth -= 1


def in_reference_graph() -> bool:
    """Whether a :func:`reference_graph` block is running."""
    return _reference_depth > 0


def graph_capture() -> GraphCapture:
    """Which graph captures are recording the running code (inside
    :func:`reference_graph`: a compiling trace)."""
    reference = in_reference_graph()
    return GraphCapture(torch.compiler.is_compiling() or reference,
                        torch.jit.is_tracing() or reference, torch.compiler.is_exporting())


#: Channels are the innermost axis: channels-last, or a channel slice of it.
CHANNELS_INNERMOST = 'channels_innermost'
#: NCHW-contiguous.
CONTIGUOUS = 'contiguous'


@dataclasses.dataclass(frozen=True, eq=False)
class KernelPolicy:
    """When ``torch.ops.mmdice.<op>`` runs instead of the op's reference.

    Args:
        op: the operator's name in the ``mmdice`` library.
        dtypes: {device type: dtypes the kernel is built for}.
        under_compile: runs in graphs of torch.compile (needs a fake kernel).
        under_trace: runs under torch.jit.trace.
        under_export: runs under torch.export (needs an ONNX translation).
        with_grad_mode: runs while grad mode is on (False for inference-only
            kernels, whose reference keeps autograd working).
        layout: None (any strides), :data:`CONTIGUOUS` or
            :data:`CHANNELS_INNERMOST`, asked of the op's inputs.
        ndim: the inputs' number of dimensions the kernel takes (None: any).
        nonempty: the kernel takes no empty inputs.
    """
    op: str
    dtypes: Mapping[str, Tuple[torch.dtype, ...]]
    under_compile: bool = True
    under_trace: bool = True
    under_export: bool = True
    with_grad_mode: bool = True
    layout: Optional[str] = None
    ndim: Optional[int] = None
    nonempty: bool = False

    def runs_under(self, capture: GraphCapture) -> bool:
        """Whether the kernel runs under the graph ``capture`` in progress."""
        return ((self.under_compile or not capture.compiling)
                and (self.under_trace or not capture.tracing)
                and (self.under_export or not capture.exporting))

    def takes_layout(self, tensor: Tensor) -> bool:
        if self.layout == CONTIGUOUS:
            return tensor.is_contiguous()
        if self.layout == CHANNELS_INNERMOST:
            return tensor.stride(1) == 1 or tensor.shape[1] == 1
        return True


#: dtypes the DimConv kernels (dim_conv, dice_fuse, dice_fuse_epilogue) are compiled for.
FUSED_DTYPES = {
    'cpu': (torch.float32, torch.float64, torch.bfloat16),
    'cuda': (torch.float32, torch.float64, torch.float16, torch.bfloat16),
}
#: dtypes of the CPU-only kernels (batch_norm_prelu, shuffle_gated_concat).
CPU_FLOAT_DTYPES = {'cpu': (torch.float32, torch.float64)}

#: DimConv at the build size: everywhere, compiled, traced and exported graphs included.
DIM_CONV = KernelPolicy('dim_conv', FUSED_DTYPES)
#: DimConv at another size runs resampling around the op; jit traces (FLOP
#: counting) record the reference's convolutions, the multiply-adds the paper
#: counts, and the ONNX translation of the op takes one kernel per row and column.
DIM_CONV_RESAMPLED = dataclasses.replace(DIM_CONV, under_trace=False, under_export=False)
DICE_FUSE = KernelPolicy('dice_fuse', FUSED_DTYPES)
DICE_FUSE_EPILOGUE = KernelPolicy('dice_fuse_epilogue', FUSED_DTYPES)
#: Traced and exported graphs keep the stock operators.
BATCH_NORM_PRELU = KernelPolicy('batch_norm_prelu', CPU_FLOAT_DTYPES, under_trace=False,
                                under_export=False, layout=CONTIGUOUS, ndim=4, nonempty=True)
#: Inference only (no autograd), eager only: compilers fuse the reference themselves.
SHUFFLE_GATED_CONCAT = KernelPolicy('shuffle_gated_concat', CPU_FLOAT_DTYPES,
                                    under_compile=False, under_trace=False, under_export=False,
                                    with_grad_mode=False, layout=CHANNELS_INNERMOST)
POLICIES = (DIM_CONV, DIM_CONV_RESAMPLED, DICE_FUSE, DICE_FUSE_EPILOGUE, BATCH_NORM_PRELU,
            SHUFFLE_GATED_CONCAT)


def kernel_device_types(op: str, device_types: Sequence[str]) -> FrozenSet[str]:
    """Those of ``device_types`` mmdice._ext has a kernel of ``mmdice::<op>`` for."""
    if not EXT_AVAILABLE:
        return frozenset()
    try:
        return frozenset(device_type for device_type in device_types
                         if torch._C._dispatch_has_kernel_for_dispatch_key(
                             f'mmdice::{op}', device_type.upper()))
    except RuntimeError:  # a build older than the op: the pure-PyTorch paths run
        return frozenset()


#: {op: device types with a kernel}, asked once here.
KERNEL_DEVICE_TYPES: Dict[str, FrozenSet[str]] = {
    policy.op: kernel_device_types(policy.op, tuple(policy.dtypes))
    for policy in POLICIES
}


def use_fused_kernel(policy: KernelPolicy, inputs: Sequence[Tensor],
                     params: Sequence[Optional[Tensor]] = ()) -> bool:
    """Whether ``torch.ops.mmdice.<policy.op>`` runs for ``inputs`` and ``params``.

    Args:
        policy: the op's :class:`KernelPolicy`.
        inputs: the tensors the kernel reads element by element; they meet the
            policy's device, dtype, layout, rank and size rules.
        params: further tensors (weights, coefficients; None for those not
            given), of the first input's dtype and device.

    Warns once when mmdice._ext is not built; never inside :func:`reference_graph`.
    """
    if in_reference_graph():
        return False
    if not EXT_AVAILABLE:
        _warn_fallback_once()
        return False
    first = inputs[0]
    device_type = first.device.type
    if device_type not in KERNEL_DEVICE_TYPES[policy.op] \
            or first.dtype not in policy.dtypes.get(device_type, ()):
        return False
    if not policy.runs_under(graph_capture()) \
            or (not policy.with_grad_mode and torch.is_grad_enabled()):
        return False
    if not all((policy.ndim is None or t.dim() == policy.ndim)
               and (not policy.nonempty or t.numel() > 0) and policy.takes_layout(t)
               for t in inputs):
        return False
    return all(t is None or (t.dtype == first.dtype and t.device == first.device)
               for t in (*inputs, *params))

"""DimConv: depth-, height- and width-wise convolutions of one input, fused.

For an input ``x`` of shape (N, C, H, W) and a unit built for (Hm, Wm):

* depth-wise: ``weight_depth`` (C, 1, k, k), one kernel per channel over (H, W);
* height-wise: ``weight_height`` (Hm, 1, k, k), one kernel per row h over the
  (channel, width) plane, kernel axes (channel, width);
* width-wise: ``weight_width`` (Wm, 1, k, k), one kernel per column w over the
  (height, channel) plane, kernel axes (height, channel).

Zero "same" padding, stride 1 and one dilation per branch, given in the order
(depth, height, width). The output (N, 3C, H, W) is interleaved per channel:
channel ``3c + 0/1/2`` holds the depth-/height-/width-wise result of channel c,
which is the authors' concat [D, H, W] followed by a 3-group channel shuffle.

When H != Hm (or W != Wm) only the height (width) branch's own axis is
resampled to the build size and back: bilinear with ``align_corners=True``
when growing, adaptive average pooling when shrinking (the reference's dynamic
scaling). The fused kernel of ``mmdice._ext`` runs every size: other sizes
as banded per-row kernels or resampling passes around it
(:mod:`mmdice.ops.dynamic_scaling`).

Inside ``torch.autocast`` the input and weights are cast to the autocast
dtype (float64 tensors excepted), as autocast does for ``conv2d``.
"""
import numbers
import re
import warnings
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dynamic_scaling import fused_dim_conv, resize_axis

#: torch.library.register_fake / register_autograd and the autocast queries
#: by device type appeared in torch 2.4; tested with torch 2.14.1.
MIN_TORCH_VERSION = (2, 4)


def _check_torch_version(version: str) -> None:
    """Raise ImportError when ``version`` (e.g. '2.14.1+cpu') is below MIN_TORCH_VERSION."""
    match = re.match(r'(\d+)\.(\d+)', version)
    if match is None or tuple(int(part) for part in match.groups()) < MIN_TORCH_VERSION:
        raise ImportError(f'mmdice.ops needs torch >= 2.4 (torch.library.register_fake and '
                          f'register_autograd), found torch {version}')


_check_torch_version(torch.__version__)

try:
    from mmdice import _ext  # noqa: F401  (loading it registers torch.ops.mmdice.*)
except ImportError as error:  # pragma: no cover - exercised only without a build
    EXT_AVAILABLE = False
    _EXT_IMPORT_ERROR = error
else:
    EXT_AVAILABLE = True
    _EXT_IMPORT_ERROR = None

__all__ = ['DimConv2d', 'dim_conv', 'dim_conv_reference', 'EXT_AVAILABLE']

IntTriple = Union[int, Sequence[int]]

# dtypes the fused kernels are compiled for, per device type.
FUSED_DTYPES = {
    'cpu': (torch.float32, torch.float64, torch.bfloat16),
    'cuda': (torch.float32, torch.float64, torch.float16, torch.bfloat16),
}
_fallback_warned = False


def _warn_fallback_once():
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(
            'mmdice._ext is not built, so DimConv runs the slower pure-PyTorch '
            f'reference ({_EXT_IMPORT_ERROR}). Build it with `pip install '
            '--no-build-isolation -e .` or `make env`.', RuntimeWarning, stacklevel=3)


def _as_dilation(dilation: IntTriple) -> Tuple[int, int, int]:
    if isinstance(dilation, numbers.Integral):
        dilation = (dilation, ) * 3
    dilation = tuple(dilation)
    if len(dilation) != 3 or not all(
            isinstance(d, numbers.Integral) and d >= 1 for d in dilation):
        raise ValueError('dilation must be a positive int or three positive ints '
                         f'(depth, height, width), got {dilation!r}')
    return tuple(int(d) for d in dilation)


def _check_inputs(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                  weight_width: Tensor) -> None:
    """Raise ValueError naming the offending argument and the expected form."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f'input must be a 4-D tensor (N, C, H, W), got {shape}')
    if not x.is_floating_point():
        raise ValueError(f'input must be a floating point tensor, got {x.dtype}')
    channels = x.shape[1]
    weights = dict(weight_depth=weight_depth, weight_height=weight_height,
                   weight_width=weight_width)
    for name, weight in weights.items():
        if not isinstance(weight, Tensor) or weight.dim() != 4 or weight.shape[1] != 1 \
                or weight.shape[2] != weight.shape[3]:
            shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
            raise ValueError(f'{name} must be a 4-D tensor (rows, 1, k, k), got {shape}')
        if weight.dtype != x.dtype:
            raise ValueError(f'{name} has dtype {weight.dtype} but input has {x.dtype}; '
                             'they must match')
        if weight.device != x.device:
            raise ValueError(f'{name} is on {weight.device} but input is on {x.device}; '
                             'they must be on the same device')
    kernel_size = weight_depth.shape[2]
    if kernel_size % 2 == 0:
        raise ValueError(f'kernel size must be odd, got weights of {kernel_size}x{kernel_size}')
    for name, weight in weights.items():
        if weight.shape[2] != kernel_size:
            raise ValueError(f'{name} has a {weight.shape[2]}x{weight.shape[3]} kernel but '
                             f'weight_depth has {kernel_size}x{kernel_size}; all three must match')
    if weight_depth.shape[0] != channels:
        raise ValueError(f'weight_depth must have shape ({channels}, 1, {kernel_size}, '
                         f'{kernel_size}) for an input of {channels} channels, '
                         f'got {tuple(weight_depth.shape)}')


def _autocast(x: Tensor, *weights: Tensor) -> Tuple[Tensor, ...]:
    """``(x, *weights)`` cast to the autocast dtype of ``x``'s device when
    autocast is enabled there; float64 and non-tensor arguments are left as is."""
    if not isinstance(x, Tensor) or not torch.is_autocast_enabled(x.device.type):
        return (x, *weights)
    dtype = torch.get_autocast_dtype(x.device.type)
    return tuple(t.to(dtype) if isinstance(t, Tensor) and t.is_floating_point()
                 and t.dtype != torch.float64 else t for t in (x, *weights))


def _padding(kernel_size: int, dilation: int) -> int:
    return dilation * (kernel_size - 1) // 2


def _depth_branch(x: Tensor, weight: Tensor, dilation: int) -> Tensor:
    return F.conv2d(x, weight, padding=_padding(weight.shape[-1], dilation),
                    dilation=dilation, groups=x.shape[1])


def _spatial_branch(x: Tensor, weight: Tensor, dilation: int, axis: int) -> Tensor:
    """Height- (axis 2) or width-wise (axis 3) branch: one kernel per row
    (column) over the plane that ``x.transpose(1, axis)`` puts behind it; the
    axis is resampled to the build size ``weight.shape[0]`` and back."""
    size, build_size = x.shape[axis], weight.shape[0]
    # (N, Hm, C, W) for the height branch, (N, Wm, H, C) for the width branch
    permuted = resize_axis(x, axis, build_size).transpose(1, axis)
    y = F.conv2d(permuted, weight, padding=_padding(weight.shape[-1], dilation),
                 dilation=dilation, groups=build_size)
    return resize_axis(y.transpose(1, axis), axis, size)


def _interleave(y_depth: Tensor, y_height: Tensor, y_width: Tensor) -> Tensor:
    n, c, h, w = y_depth.shape
    return torch.stack((y_depth, y_height, y_width), dim=2).reshape(n, 3 * c, h, w)


def dim_conv_reference(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                       weight_width: Tensor, dilation: IntTriple = 1) -> Tensor:
    """Pure-PyTorch DimConv: three grouped convolutions with axis permutes.

    Args:
        x: input (N, C, H, W).
        weight_depth: (C, 1, k, k). weight_height: (Hm, 1, k, k).
        weight_width: (Wm, 1, k, k).
        dilation: int or (depth, height, width).

    Returns:
        Tensor (N, 3C, H, W), interleaved [D, H, W] per channel.
    """
    x, weight_depth, weight_height, weight_width = _autocast(x, weight_depth, weight_height,
                                                             weight_width)
    _check_inputs(x, weight_depth, weight_height, weight_width)
    d_depth, d_height, d_width = _as_dilation(dilation)
    return _interleave(
        _depth_branch(x, weight_depth, d_depth),
        _spatial_branch(x, weight_height, d_height, axis=2),
        _spatial_branch(x, weight_width, d_width, axis=3))


def kernel_device_types(name: str) -> frozenset:
    """Device types ('cpu', 'cuda') mmdice._ext has a kernel of ``mmdice::<name>`` for.

    Asked once at import: ``torch.compile`` cannot trace the dispatcher query.
    """
    if not EXT_AVAILABLE:
        return frozenset()
    try:
        return frozenset(device_type for device_type in FUSED_DTYPES
                         if torch._C._dispatch_has_kernel_for_dispatch_key(
                             f'mmdice::{name}', device_type.upper()))
    except RuntimeError:  # a build older than the op: the pure-PyTorch paths run
        return frozenset()


DEVICE_KERNELS = kernel_device_types('dim_conv')


def _fused_supported(x: Tensor) -> bool:
    return (EXT_AVAILABLE and x.device.type in DEVICE_KERNELS
            and x.dtype in FUSED_DTYPES[x.device.type])


def dim_conv(x: Tensor, weight_depth: Tensor, weight_height: Tensor, weight_width: Tensor,
             dilation: IntTriple = 1) -> Tensor:
    """DimConv of ``x`` (N, C, H, W) -> (N, 3C, H, W); see the module docstring.

    Runs the fused ``torch.ops.mmdice.dim_conv`` kernel; for an input of
    another size than the build size (H != Hm or W != Wm) with banded kernels
    or resampling passes (:func:`~mmdice.ops.dynamic_scaling.fused_dim_conv`),
    except under a jit trace (FLOP counting, TorchScript), which records such
    inputs as the reference's convolutions (the multiply-adds the paper counts),
    and under ``torch.export`` (ONNX export), whose translation of the op
    (:mod:`mmdice.ops.onnx`) takes one kernel per row and column.
    """
    x, weight_depth, weight_height, weight_width = _autocast(x, weight_depth, weight_height,
                                                             weight_width)
    _check_inputs(x, weight_depth, weight_height, weight_width)
    dilation = _as_dilation(dilation)
    same_size = x.shape[2] == weight_height.shape[0] and x.shape[3] == weight_width.shape[0]
    recording = torch.jit.is_tracing() or torch.compiler.is_exporting()
    if _fused_supported(x) and (same_size or not recording):
        return fused_dim_conv(x, weight_depth, weight_height, weight_width, list(dilation))
    if not EXT_AVAILABLE:
        _warn_fallback_once()
    return dim_conv_reference(x, weight_depth, weight_height, weight_width, dilation)


def _check_fake_shapes(x, weight_depth, weight_height, weight_width, dilation):
    """Shape rules of the fused op (those of its C++ check) for fake tensors."""
    torch._check(x.dim() == 4, lambda: f'input must be (N, C, H, W), got {tuple(x.shape)}')
    torch._check(len(dilation) == 3, lambda: f'dilation must be three ints, got {dilation}')
    kernel_size = weight_depth.shape[-1]
    # Dim 1 holds the kernels per channel / row / column: 0 (branch left out),
    # 1, or for the spatial branches any odd band.
    for name, weight, rows, banded in (('weight_depth', weight_depth, x.shape[1], False),
                                       ('weight_height', weight_height, x.shape[2], True),
                                       ('weight_width', weight_width, x.shape[3], True)):
        torch._check(
            weight.dim() == 4 and weight.shape[0] == rows
            and (weight.shape[1] == 0 or weight.shape[1] == 1
                 or (banded and weight.shape[1] % 2 == 1))
            and weight.shape[2] == kernel_size and weight.shape[3] == kernel_size,
            lambda name=name, weight=weight, rows=rows, banded=banded: (
                f'{name} must have shape ({rows}, {"0 or an odd band" if banded else "0 or 1"}, '
                f'{kernel_size}, {kernel_size}), got {tuple(weight.shape)}'))
        torch._check(weight.dtype == x.dtype,
                     lambda name=name, weight=weight: f'{name} dtype {weight.dtype} differs '
                     f'from input dtype {x.dtype}')
    torch._check(weight_depth.shape[1] + weight_height.shape[1] + weight_width.shape[1] > 0,
                 lambda: 'at least one weight must hold kernels (dim 1 > 0)')


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::dim_conv')
    def _dim_conv_fake(x, weight_depth, weight_height, weight_width, dilation):
        _check_fake_shapes(x, weight_depth, weight_height, weight_width, dilation)
        n, c, h, w = x.shape
        return x.new_empty((n, 3 * c, h, w))

    @torch.library.register_fake('mmdice::dim_conv_backward')
    def _dim_conv_backward_fake(grad_output, x, weight_depth, weight_height, weight_width,
                                dilation, output_mask):
        _check_fake_shapes(x, weight_depth, weight_height, weight_width, dilation)
        n, c, h, w = x.shape
        torch._check(tuple(grad_output.shape) == (n, 3 * c, h, w),
                     lambda: f'grad_output must have shape {(n, 3 * c, h, w)}, got '
                     f'{tuple(grad_output.shape)}')
        return tuple(t.new_empty(t.shape) if needed else None
                     for t, needed in zip((x, weight_depth, weight_height, weight_width),
                                          output_mask))

    def _setup_context(ctx, inputs, output):
        x, weight_depth, weight_height, weight_width, dilation = inputs
        # grad_input needs the weights (tiny), the weight gradients need x.
        needs_x = any(ctx.needs_input_grad[1:4])
        ctx.save_for_backward(x if needs_x else None, weight_depth, weight_height, weight_width)
        ctx.input_shape = x.shape
        ctx.dilation = dilation

    def _backward(ctx, grad_output):
        if torch.is_grad_enabled():
            raise NotImplementedError(
                'mmdice::dim_conv is differentiable once only; double backward '
                '(create_graph=True) needs dim_conv_reference')
        x, weight_depth, weight_height, weight_width = ctx.saved_tensors
        if x is None:  # the op reads only the shape of an input whose weights need no grad
            x = grad_output.new_zeros(()).expand(ctx.input_shape)
        grads = torch.ops.mmdice.dim_conv_backward(grad_output, x, weight_depth,
                                                   weight_height, weight_width, ctx.dilation,
                                                   list(ctx.needs_input_grad[:4]))
        return (*grads, None)

    torch.library.register_autograd('mmdice::dim_conv', _backward,
                                    setup_context=_setup_context)



def add_dim_conv_parameters(module: nn.Module, channels: int,
                            build_size: Union[int, Sequence[int]], kernel_size: int,
                            dilation: IntTriple) -> None:
    """Validate the arguments of a DimConv module and give it its three weights.

    Sets ``module.channels``, ``build_size`` (Hm, Wm), ``kernel_size``,
    ``dilation`` and the (uninitialised) parameters ``weight_depth``
    (C, 1, k, k), ``weight_height`` (Hm, 1, k, k) and ``weight_width``
    (Wm, 1, k, k).
    """
    if not isinstance(channels, numbers.Integral) or channels < 1:
        raise ValueError(f'channels must be a positive int, got {channels!r}')
    if isinstance(build_size, numbers.Integral):
        build_size = (build_size, build_size)
    build_size = tuple(build_size)
    if len(build_size) != 2 or not all(
            isinstance(s, numbers.Integral) and s >= 1 for s in build_size):
        raise ValueError(f'build_size must be a positive int or (height, width), '
                         f'got {build_size!r}')
    if not isinstance(kernel_size, numbers.Integral) or kernel_size < 1 \
            or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be a positive odd int, got {kernel_size!r}')
    module.channels = int(channels)
    module.build_size = tuple(int(s) for s in build_size)
    module.kernel_size = int(kernel_size)
    module.dilation = _as_dilation(dilation)
    k = module.kernel_size
    module.weight_depth = nn.Parameter(torch.empty(module.channels, 1, k, k))
    module.weight_height = nn.Parameter(torch.empty(module.build_size[0], 1, k, k))
    module.weight_width = nn.Parameter(torch.empty(module.build_size[1], 1, k, k))


class DimConv2d(nn.Module):
    """Dimension-wise convolution (DimConv) of a DiCE unit.

    Args:
        channels: input channels C; the output has 3C interleaved channels.
        build_size: (Hm, Wm) or an int, the feature size the height-/width-wise
            kernels are made for; other input sizes are resampled to it.
        kernel_size: odd kernel size n of all three branches.
        dilation: int or (depth, height, width) dilation rates.

    Parameters ``weight_depth`` (C, 1, n, n), ``weight_height`` (Hm, 1, n, n)
    and ``weight_width`` (Wm, 1, n, n) have the layouts of the reference's
    ``conv_channel``, ``conv_height`` and ``conv_width`` weights.
    """

    def __init__(self, channels: int, build_size: Union[int, Sequence[int]],
                 kernel_size: int = 3, dilation: IntTriple = 1):
        super().__init__()
        add_dim_conv_parameters(self, channels, build_size, kernel_size, dilation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform init as for ``nn.Conv2d`` (fan_in = k * k)."""
        for weight in (self.weight_depth, self.weight_height, self.weight_width):
            nn.init.kaiming_uniform_(weight, a=5**0.5)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, 3C, H, W)."""
        return dim_conv(x, self.weight_depth, self.weight_height, self.weight_width,
                        self.dilation)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, build_size={self.build_size}, '
                f'kernel_size={self.kernel_size}, dilation={self.dilation}')

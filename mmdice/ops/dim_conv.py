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
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import (Check, IntTriple, as_dilation, autocast_inputs, check_positive_ints, require,
                     shape_of)
from .dynamic_scaling import fused_dim_conv, resize_axis
from .extension import DIM_CONV, DIM_CONV_RESAMPLED, EXT_AVAILABLE, use_fused_kernel

__all__ = ['DimConv2d', 'dim_conv', 'dim_conv_reference', 'check_dim_conv_arguments',
           'add_dim_conv_parameters', 'EXT_AVAILABLE']


def check_dim_conv_arguments(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                             weight_width: Tensor, dilation: Sequence[int],
                             check: Check = require, banded: bool = False) -> None:
    """The argument rules of DimConv, each broken one reported through ``check``.

    With ``banded=False`` those of :func:`dim_conv` and
    :func:`dim_conv_reference`: weights (C | Hm | Wm, 1, k, k) for any build
    size (Hm, Wm). With ``banded=True`` those of ``torch.ops.mmdice.dim_conv``
    (its fake kernels; the C++ check has the same rules): ``weight_height``
    (H, Bh, k, k) and ``weight_width`` (W, Bw, k, k) hold Bh (Bw) kernels per
    input row (column), an odd band, 1, or 0 to leave the branch out, and
    ``weight_depth`` 1 or 0 kernels per channel. ``dilation``: three ints.
    """
    check(isinstance(x, Tensor) and x.dim() == 4,
          lambda: f'input must be (N, C, H, W), got {shape_of(x)}')
    check(x.is_floating_point(), lambda: f'input must be a floating point tensor, got {x.dtype}')
    check(len(dilation) == 3 and all(d >= 1 for d in dilation),
          lambda: f'dilation must be three positive ints, got {dilation}')
    channels = x.shape[1]
    depth_kernels = '0 or 1' if banded else '1'
    check(isinstance(weight_depth, Tensor) and weight_depth.dim() == 4,
          lambda: f'weight_depth must have shape ({channels}, {depth_kernels}, k, k), '
          f'got {shape_of(weight_depth)}')
    kernel_size = weight_depth.shape[-1]
    check(kernel_size % 2 == 1,
          lambda: f'kernel size must be odd, got weights of {kernel_size}x{kernel_size}')
    for name, weight, rows, spatial in (('weight_depth', weight_depth, channels, False),
                                        ('weight_height', weight_height, x.shape[2], True),
                                        ('weight_width', weight_width, x.shape[3], True)):
        kernels = ('0 or an odd band' if spatial else '0 or 1') if banded else '1'
        shown_rows = ('Hm' if name == 'weight_height' else 'Wm') if spatial and not banded \
            else rows
        check(isinstance(weight, Tensor) and weight.dim() == 4
              and (weight.shape[0] == rows or (spatial and not banded))
              and (weight.shape[1] == 1 or (banded and (weight.shape[1] == 0
                                                        or (spatial and weight.shape[1] % 2 == 1))))
              and weight.shape[2] == kernel_size and weight.shape[3] == kernel_size,
              lambda name=name, weight=weight, shown_rows=shown_rows, kernels=kernels: (
                  f'{name} must have shape ({shown_rows}, {kernels}, {kernel_size}, '
                  f'{kernel_size}), got {shape_of(weight)}'))
        check(weight.dtype == x.dtype,
              lambda name=name, weight=weight: f'{name} has dtype {weight.dtype} but input has '
              f'{x.dtype}; they must match')
        check(weight.device == x.device,
              lambda name=name, weight=weight: f'{name} is on {weight.device} but input is on '
              f'{x.device}; they must be on the same device')
    if banded:
        check(weight_depth.shape[1] + weight_height.shape[1] + weight_width.shape[1] > 0,
              lambda: 'at least one weight must hold kernels (dim 1 > 0)')


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
    x, weight_depth, weight_height, weight_width = autocast_inputs(x, weight_depth,
                                                                   weight_height, weight_width)
    d_depth, d_height, d_width = dilation = as_dilation(dilation)
    check_dim_conv_arguments(x, weight_depth, weight_height, weight_width, dilation)
    return _interleave(
        _depth_branch(x, weight_depth, d_depth),
        _spatial_branch(x, weight_height, d_height, axis=2),
        _spatial_branch(x, weight_width, d_width, axis=3))


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
    x, weight_depth, weight_height, weight_width = autocast_inputs(x, weight_depth,
                                                                   weight_height, weight_width)
    dilation = as_dilation(dilation)
    check_dim_conv_arguments(x, weight_depth, weight_height, weight_width, dilation)
    same_size = x.shape[2] == weight_height.shape[0] and x.shape[3] == weight_width.shape[0]
    if use_fused_kernel(DIM_CONV if same_size else DIM_CONV_RESAMPLED, (x, ),
                        (weight_depth, weight_height, weight_width)):
        return fused_dim_conv(x, weight_depth, weight_height, weight_width, list(dilation))
    return dim_conv_reference(x, weight_depth, weight_height, weight_width, dilation)


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::dim_conv')
    def _dim_conv_fake(x, weight_depth, weight_height, weight_width, dilation):
        check_dim_conv_arguments(x, weight_depth, weight_height, weight_width, dilation,
                                 torch._check, banded=True)
        n, c, h, w = x.shape
        return x.new_empty((n, 3 * c, h, w))

    @torch.library.register_fake('mmdice::dim_conv_backward')
    def _dim_conv_backward_fake(grad_output, x, weight_depth, weight_height, weight_width,
                                dilation, output_mask):
        check_dim_conv_arguments(x, weight_depth, weight_height, weight_width, dilation,
                                 torch._check, banded=True)
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
    check_positive_ints(channels=channels)
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
    module.dilation = as_dilation(dilation)
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

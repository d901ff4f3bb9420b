"""Fused DiCE op: DimConv -> per-branch affine + PReLU -> 3->1 sum -> PReLU.

The deploy form of a DiCE unit's first half (DimConv, BatchNorm + PReLU over
its 3C interleaved channels, the grouped 1x1 "local fusion" 3 -> 1 per channel,
BatchNorm + PReLU), every BatchNorm folded into affine terms. For channel c
with DimConv branch outputs y_g (g = 0 depth, 1 height, 2 width):

    z_g = prelu(branch_scale[c, g] * y_g + branch_bias[c, g], branch_slope[c, g])
    out = prelu(sum_g fuse_weight[c, g] * z_g + fuse_bias[c], out_slope[c])

``torch.ops.mmdice.dice_fuse`` (its last argument: whether the output is
channels-last) computes it in one pass over the input at the build size, the
3C DimConv output never leaving the cache; at other sizes DimConv runs through
:func:`~mmdice.ops.dim_conv` (the fused op with banded kernels or resampling
passes, :mod:`mmdice.ops.dynamic_scaling`) and
``torch.ops.mmdice.dice_fuse_epilogue`` does the rest in one pass. Inference
only: the ops have no autograd.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dim_conv import (EXT_AVAILABLE, FUSED_DTYPES, _as_dilation, _check_inputs,
                       add_dim_conv_parameters, dim_conv, dim_conv_reference,
                       kernel_device_types)

__all__ = ['DimConvFuse2d', 'dice_fuse', 'dice_fuse_reference', 'dice_fuse_epilogue',
           'dice_fuse_epilogue_reference']

#: Names of the coefficient arguments, in the ops' order; the first four are (C, 3).
COEFFICIENTS = ('branch_scale', 'branch_bias', 'branch_slope', 'fuse_weight', 'fuse_bias',
                'out_slope')


KERNEL_DEVICE_TYPES = {name: kernel_device_types(name)
                       for name in ('dice_fuse', 'dice_fuse_epilogue')}


def _has_kernel(name: str, device_type: str) -> bool:
    return device_type in KERNEL_DEVICE_TYPES[name]


def _check_coefficients(channels: int, reference: Tensor, coefficients: Sequence[Tensor]) -> None:
    """Raise ValueError naming the coefficient that does not fit ``channels``."""
    if len(coefficients) != len(COEFFICIENTS):
        raise ValueError(f'expected the {len(COEFFICIENTS)} coefficients {COEFFICIENTS}, '
                         f'got {len(coefficients)}')
    for name, tensor in zip(COEFFICIENTS, coefficients):
        shape = (channels, 3) if name in COEFFICIENTS[:4] else (channels, )
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != shape:
            got = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise ValueError(f'{name} must be a tensor of shape {shape}, got {got}')
        if tensor.dtype != reference.dtype or tensor.device != reference.device:
            raise ValueError(f'{name} is {tensor.dtype} on {tensor.device} but the input is '
                             f'{reference.dtype} on {reference.device}; they must match')


def dice_fuse_epilogue_reference(dim_output: Tensor, branch_scale: Tensor, branch_bias: Tensor,
                                 branch_slope: Tensor, fuse_weight: Tensor, fuse_bias: Tensor,
                                 out_slope: Tensor) -> Tensor:
    """Pure-PyTorch epilogue: (N, 3C, H, W) interleaved DimConv output -> (N, C, H, W).

    Standard operators only (the training form with folded BatchNorms), so it
    also is what ONNX export emits.
    """
    channels = dim_output.shape[1] // 3
    z = dim_output * branch_scale.reshape(1, -1, 1, 1) + branch_bias.reshape(1, -1, 1, 1)
    z = F.prelu(z, branch_slope.reshape(-1))
    fused = F.conv2d(z, fuse_weight.reshape(channels, 3, 1, 1), fuse_bias, groups=channels)
    return F.prelu(fused, out_slope)


def dice_fuse_epilogue(dim_output: Tensor, *coefficients: Tensor) -> Tensor:
    """Epilogue of :func:`dice_fuse` on a DimConv output (N, 3C, H, W) -> (N, C, H, W).

    ``coefficients`` are ``branch_scale, branch_bias, branch_slope,
    fuse_weight`` (C, 3) and ``fuse_bias, out_slope`` (C).
    """
    if not isinstance(dim_output, Tensor) or dim_output.dim() != 4 or dim_output.shape[1] % 3:
        shape = tuple(dim_output.shape) if isinstance(dim_output, Tensor) else type(dim_output)
        raise ValueError(f'dim_output must be a 4-D tensor (N, 3C, H, W), got {shape}')
    _check_coefficients(dim_output.shape[1] // 3, dim_output, coefficients)
    device_type = dim_output.device.type
    if _has_kernel('dice_fuse_epilogue', device_type) \
            and dim_output.dtype in FUSED_DTYPES.get(device_type, ()):
        return torch.ops.mmdice.dice_fuse_epilogue(dim_output, *coefficients)
    return dice_fuse_epilogue_reference(dim_output, *coefficients)


def dice_fuse_reference(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                        weight_width: Tensor, dilation: Union[int, Sequence[int]],
                        *coefficients: Tensor) -> Tensor:
    """Pure-PyTorch fused DiCE op: :func:`dim_conv_reference` + the epilogue."""
    _check_coefficients(x.shape[1] if isinstance(x, Tensor) and x.dim() == 4 else -1, x,
                        coefficients)
    return dice_fuse_epilogue_reference(
        dim_conv_reference(x, weight_depth, weight_height, weight_width, dilation),
        *coefficients)


def dice_fuse(x: Tensor, weight_depth: Tensor, weight_height: Tensor, weight_width: Tensor,
              dilation: Union[int, Sequence[int]], *coefficients: Tensor) -> Tensor:
    """Fused DiCE op of ``x`` (N, C, H, W) -> (N, C, H, W); see the module docstring.

    Args:
        x, weight_depth, weight_height, weight_width, dilation: as for
            :func:`~mmdice.ops.dim_conv`.
        coefficients: ``branch_scale, branch_bias, branch_slope, fuse_weight``
            (C, 3) and ``fuse_bias, out_slope`` (C), of the input's dtype.
    """
    _check_inputs(x, weight_depth, weight_height, weight_width)
    _check_coefficients(x.shape[1], x, coefficients)
    dilation = _as_dilation(dilation)
    same_size = x.shape[2] == weight_height.shape[0] and x.shape[3] == weight_width.shape[0]
    device_type = x.device.type
    if same_size and _has_kernel('dice_fuse', device_type) \
            and x.dtype in FUSED_DTYPES.get(device_type, ()):
        # Eager, the output keeps a channels-last input's layout. Compiled graphs
        # get NCHW: a compiler may hand the op other strides than it traced.
        channels_last = not torch.compiler.is_compiling() and not x.is_contiguous() \
            and x.is_contiguous(memory_format=torch.channels_last)
        return torch.ops.mmdice.dice_fuse(x, weight_depth, weight_height, weight_width,
                                          list(dilation), *coefficients, channels_last)
    return dice_fuse_epilogue(dim_conv(x, weight_depth, weight_height, weight_width, dilation),
                              *coefficients)


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::dice_fuse')
    def _dice_fuse_fake(x, weight_depth, weight_height, weight_width, dilation, *arguments):
        channels_last = arguments[-1]
        return torch.empty(x.shape, dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)

    @torch.library.register_fake('mmdice::dice_fuse_epilogue')
    def _dice_fuse_epilogue_fake(dim_output, *coefficients):
        n, c3, h, w = dim_output.shape
        return dim_output.new_empty((n, c3 // 3, h, w))


class DimConvFuse2d(nn.Module):
    """Deploy form of DimConv + BN/PReLU over 3C + local fusion + BN/PReLU.

    Args:
        channels: channels C of input and output.
        build_size: (Hm, Wm) or an int, the size the height-/width-wise
            kernels are made for (other input sizes are resampled as in
            :class:`~mmdice.ops.DimConv2d`).
        kernel_size: odd kernel size of the three DimConv branches.
        dilation: int or (depth, height, width) dilation rates.

    Parameters: ``weight_depth`` (C, 1, k, k), ``weight_height`` (Hm, 1, k, k),
    ``weight_width`` (Wm, 1, k, k) as in DimConv2d; ``branch_scale``,
    ``branch_bias``, ``branch_slope``, ``fuse_weight`` (C, 3); ``fuse_bias``,
    ``out_slope`` (C). Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, build_size: Union[int, Sequence[int]],
                 kernel_size: int = 3, dilation: Union[int, Sequence[int]] = 1):
        super().__init__()
        add_dim_conv_parameters(self, channels, build_size, kernel_size, dilation)
        self.branch_scale = nn.Parameter(torch.ones(self.channels, 3))
        self.branch_bias = nn.Parameter(torch.zeros(self.channels, 3))
        self.branch_slope = nn.Parameter(torch.full((self.channels, 3), 0.25))
        self.fuse_weight = nn.Parameter(torch.full((self.channels, 3), 1 / 3))
        self.fuse_bias = nn.Parameter(torch.zeros(self.channels))
        self.out_slope = nn.Parameter(torch.full((self.channels, ), 0.25))
        for weight in self.dim_weights():
            nn.init.kaiming_uniform_(weight, a=5**0.5)

    def dim_weights(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(weight_depth, weight_height, weight_width)."""
        return self.weight_depth, self.weight_height, self.weight_width

    def coefficients(self) -> Tuple[Tensor, ...]:
        """The epilogue coefficients in the ops' order (:data:`COEFFICIENTS`)."""
        return tuple(getattr(self, name) for name in COEFFICIENTS)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return dice_fuse(x, *self.dim_weights(), self.dilation, *self.coefficients())

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, build_size={self.build_size}, '
                f'kernel_size={self.kernel_size}, dilation={self.dilation}')

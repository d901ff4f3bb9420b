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

``torch.ops.mmdice_openvino.dice_fuse`` (:func:`dice_fuse_banded`) is the same
op given the banded height- and width-wise kernels of another input size
(:func:`~mmdice.ops.dynamic_scaling.band_kernels`): one op, so one node in an
export, where :func:`dice_fuse` at that size is several.
:class:`DimConvFuse2d`'s export form ``banded_export`` runs it.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import Check, IntTriple, as_dilation, require, shape_of
from .dim_conv import (add_dim_conv_parameters, check_dim_conv_arguments, dim_conv,
                       dim_conv_reference)
from .dynamic_scaling import band_kernels
from .extension import (DICE_FUSE, DICE_FUSE_EPILOGUE, EXT_AVAILABLE, graph_capture,
                        use_fused_kernel)

__all__ = ['DimConvFuse2d', 'dice_fuse', 'dice_fuse_banded', 'dice_fuse_reference',
           'dice_fuse_epilogue', 'dice_fuse_epilogue_reference']

#: Names of the coefficient arguments, in the ops' order; the first four are (C, 3).
COEFFICIENTS = ('branch_scale', 'branch_bias', 'branch_slope', 'fuse_weight', 'fuse_bias',
                'out_slope')


def check_coefficients(channels: int, reference: Tensor, coefficients: Sequence[Tensor],
                       check: Check = require) -> None:
    """The rules of the epilogue coefficients of ``channels`` channels, each broken one
    reported through ``check`` (:mod:`mmdice.ops.checks`): ``branch_scale, branch_bias,
    branch_slope, fuse_weight`` (C, 3) and ``fuse_bias, out_slope`` (C), of
    ``reference``'s dtype and device."""
    check(len(coefficients) == len(COEFFICIENTS),
          lambda: f'expected the {len(COEFFICIENTS)} coefficients {COEFFICIENTS}, '
          f'got {len(coefficients)}')
    for name, tensor in zip(COEFFICIENTS, coefficients):
        shape = (channels, 3) if name in COEFFICIENTS[:4] else (channels, )
        check(isinstance(tensor, Tensor) and tuple(tensor.shape) == shape,
              lambda name=name, tensor=tensor, shape=shape: (
                  f'{name} must be a tensor of shape {shape}, got {shape_of(tensor)}'))
        check(tensor.dtype == reference.dtype and tensor.device == reference.device,
              lambda name=name, tensor=tensor: (
                  f'{name} is {tensor.dtype} on {tensor.device} but the input is '
                  f'{reference.dtype} on {reference.device}; they must match'))


def check_dice_fuse_arguments(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                              weight_width: Tensor, dilation: Sequence[int],
                              coefficients: Sequence[Tensor], check: Check = require) -> None:
    """The argument rules of :func:`dice_fuse` (``dilation`` as three ints), each broken
    one reported through ``check``: those of DimConv
    (:func:`~mmdice.ops.dim_conv.check_dim_conv_arguments`) and the coefficients'."""
    check_dim_conv_arguments(x, weight_depth, weight_height, weight_width, dilation, check)
    check_coefficients(x.shape[1], x, coefficients, check)


def check_dice_fuse_epilogue_arguments(dim_output: Tensor, coefficients: Sequence[Tensor],
                                       check: Check = require) -> None:
    """The argument rules of :func:`dice_fuse_epilogue`, reported through ``check``."""
    check(isinstance(dim_output, Tensor) and dim_output.dim() == 4
          and dim_output.shape[1] % 3 == 0,
          lambda: f'dim_output must be a 4-D tensor (N, 3C, H, W), got {shape_of(dim_output)}')
    check_coefficients(dim_output.shape[1] // 3, dim_output, coefficients, check)


def dice_fuse_epilogue_reference(dim_output: Tensor, branch_scale: Tensor, branch_bias: Tensor,
                                 branch_slope: Tensor, fuse_weight: Tensor, fuse_bias: Tensor,
                                 out_slope: Tensor) -> Tensor:
    """Pure-PyTorch epilogue: (N, 3C, H, W) interleaved DimConv output -> (N, C, H, W).

    Standard operators only (the training form with folded BatchNorms), so it
    also is what ONNX export emits.
    """
    check_dice_fuse_epilogue_arguments(dim_output, (branch_scale, branch_bias, branch_slope,
                                                    fuse_weight, fuse_bias, out_slope))
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
    check_dice_fuse_epilogue_arguments(dim_output, coefficients)
    if use_fused_kernel(DICE_FUSE_EPILOGUE, (dim_output, ), coefficients):
        return torch.ops.mmdice.dice_fuse_epilogue(dim_output, *coefficients)
    return dice_fuse_epilogue_reference(dim_output, *coefficients)


def dice_fuse_reference(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                        weight_width: Tensor, dilation: IntTriple,
                        *coefficients: Tensor) -> Tensor:
    """Pure-PyTorch fused DiCE op: :func:`dim_conv_reference` + the epilogue."""
    dilation = as_dilation(dilation)
    check_dice_fuse_arguments(x, weight_depth, weight_height, weight_width, dilation,
                              coefficients)
    return dice_fuse_epilogue_reference(
        dim_conv_reference(x, weight_depth, weight_height, weight_width, dilation),
        *coefficients)


def dice_fuse(x: Tensor, weight_depth: Tensor, weight_height: Tensor, weight_width: Tensor,
              dilation: IntTriple, *coefficients: Tensor) -> Tensor:
    """Fused DiCE op of ``x`` (N, C, H, W) -> (N, C, H, W); see the module docstring.

    Args:
        x, weight_depth, weight_height, weight_width, dilation: as for
            :func:`~mmdice.ops.dim_conv`.
        coefficients: ``branch_scale, branch_bias, branch_slope, fuse_weight``
            (C, 3) and ``fuse_bias, out_slope`` (C), of the input's dtype.
    """
    dilation = as_dilation(dilation)
    check_dice_fuse_arguments(x, weight_depth, weight_height, weight_width, dilation,
                              coefficients)
    same_size = x.shape[2] == weight_height.shape[0] and x.shape[3] == weight_width.shape[0]
    if same_size and use_fused_kernel(DICE_FUSE, (x, ),
                                      (weight_depth, weight_height, weight_width, *coefficients)):
        # Eager, the output keeps a channels-last input's layout. Compiled graphs
        # get NCHW: a compiler may hand the op other strides than it traced.
        channels_last = not graph_capture().compiling and not x.is_contiguous() \
            and x.is_contiguous(memory_format=torch.channels_last)
        return torch.ops.mmdice.dice_fuse(x, weight_depth, weight_height, weight_width,
                                          list(dilation), *coefficients, channels_last)
    return dice_fuse_epilogue(dim_conv(x, weight_depth, weight_height, weight_width, dilation),
                              *coefficients)


@torch.library.custom_op('mmdice_openvino::dice_fuse', mutates_args=())
def dice_fuse_banded(x: Tensor, weight_depth: Tensor, weight_height: Tensor, weight_width: Tensor,
                     dilation: List[int], branch_scale: Tensor, branch_bias: Tensor,
                     branch_slope: Tensor, fuse_weight: Tensor, fuse_bias: Tensor,
                     out_slope: Tensor) -> Tensor:
    """The fused DiCE op of ``x`` (N, C, H, W) with banded weights: weight_height
    (H, Bh, k, k), weight_width (W, Bw, k, k) (``torch.ops.mmdice.dim_conv``'s
    form), the coefficients as for :func:`dice_fuse`; (N, C, H, W)."""
    return dice_fuse_epilogue(
        torch.ops.mmdice.dim_conv(x, weight_depth, weight_height, weight_width, dilation),
        branch_scale, branch_bias, branch_slope, fuse_weight, fuse_bias, out_slope)


@dice_fuse_banded.register_fake
def _dice_fuse_banded_fake(x, *arguments):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::dice_fuse')
    def _dice_fuse_fake(x, weight_depth, weight_height, weight_width, dilation, *arguments):
        *coefficients, channels_last = arguments
        check_dice_fuse_arguments(x, weight_depth, weight_height, weight_width, dilation,
                                  coefficients, torch._check)
        return torch.empty(x.shape, dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)

    @torch.library.register_fake('mmdice::dice_fuse_epilogue')
    def _dice_fuse_epilogue_fake(dim_output, *coefficients):
        check_dice_fuse_epilogue_arguments(dim_output, coefficients, torch._check)
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

    Export form: with ``banded_export`` a dict (:meth:`use_banded_export`),
    an input of another size than the build size runs :func:`dice_fuse_banded`
    with the banded kernels of its size, computed on the first eager call at
    that size and kept in the dict (so an export's fake tensors reuse them),
    instead of :func:`dice_fuse`'s resampling path. None (the default): off.
    """

    def __init__(self, channels: int, build_size: Union[int, Sequence[int]],
                 kernel_size: int = 3, dilation: IntTriple = 1):
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
        #: the export form's banded kernels: {(H, W): (height bands, width bands)},
        #: or None when :meth:`forward` runs :func:`dice_fuse` at every size.
        self.banded_export: Optional[Dict[Tuple[int, int], Tuple[Tensor, Tensor]]] = None

    def use_banded_export(self, enabled: bool) -> None:
        """Switch the banded export form on (with no kernels computed yet) or off.
        The weights must not change while it is on: its kernels are not
        recomputed."""
        self.banded_export = {} if enabled else None

    def dim_weights(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(weight_depth, weight_height, weight_width)."""
        return self.weight_depth, self.weight_height, self.weight_width

    def coefficients(self) -> Tuple[Tensor, ...]:
        """The epilogue coefficients in the ops' order (:data:`COEFFICIENTS`)."""
        return tuple(getattr(self, name) for name in COEFFICIENTS)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        bands = None if self.banded_export is None else self._export_bands(x)
        if bands is None:
            return dice_fuse(x, *self.dim_weights(), self.dilation, *self.coefficients())
        return dice_fuse_banded(x, self.weight_depth, *bands, list(self.dilation),
                                *self.coefficients())

    def _export_bands(self, x: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
        """The banded export form's (height, width) kernels of ``x``'s size; None
        at the build size."""
        size = tuple(x.shape[2:])
        if size == (self.weight_height.shape[0], self.weight_width.shape[0]):
            return None
        if size not in self.banded_export:  # computed eagerly, not under an export's fake tensors
            self.banded_export[size] = (band_kernels(self.weight_height, size[0]).detach(),
                                        band_kernels(self.weight_width, size[1]).detach())
        return self.banded_export[size]

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, build_size={self.build_size}, '
                f'kernel_size={self.kernel_size}, dilation={self.dilation}')

"""The end of a deploy-form ShuffleNet block whose halves are equal, as one op.

``torch.ops.mmdice.shuffle_gated_concat`` applies the DiCE unit's last
activation and gate product, concatenates and shuffles, in one pass per pixel
row of channels-last tensors, where ATen's PReLU, multiply and copies into strided channel views of
the output take three passes through the TensorIterator's strided loops.
Inference only (no autograd): with grad enabled, in compiled graphs and for
other layouts :func:`shuffle_gated_concat` computes the same with standard
operators, which compilers fuse themselves.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import Check, require, shape_of
from .extension import EXT_AVAILABLE, SHUFFLE_GATED_CONCAT, use_fused_kernel

__all__ = ['shuffle_gated_concat', 'shuffle_gated_concat_reference',
           'check_shuffle_gated_concat_arguments']


def check_shuffle_gated_concat_arguments(left: Tensor, branch: Tensor, slope: Tensor,
                                         gate: Tensor, check: Check = require) -> None:
    """The argument rules of :func:`shuffle_gated_concat`, each broken one reported
    through ``check`` (:mod:`mmdice.ops.checks`)."""
    for name, tensor in (('left', left), ('branch', branch)):
        check(isinstance(tensor, Tensor) and tensor.dim() == 4,
              lambda name=name, tensor=tensor: (
                  f'{name} must be a 4-D tensor (N, C, H, W), got {shape_of(tensor)}'))
    batch, channels = left.shape[:2]
    check(branch.shape == left.shape and slope.shape == (channels, )
          and gate.numel() == batch * channels and gate.shape[0] == batch,
          lambda: f'shuffle_gated_concat needs branch of the shape of left '
          f'{tuple(left.shape)}, slope ({channels},) and gate ({batch}, {channels}[, 1, 1]), '
          f'got {tuple(branch.shape)}, {tuple(slope.shape)} and {tuple(gate.shape)}')


def shuffle_gated_concat_reference(left: Tensor, branch: Tensor, slope: Tensor,
                                   gate: Tensor) -> Tensor:
    """``channel_shuffle(cat(left, prelu(branch, slope) * gate), 2)`` with stock operators."""
    check_shuffle_gated_concat_arguments(left, branch, slope, gate)
    batch, channels, height, width = left.shape
    concat = torch.cat((left, F.prelu(branch, slope) * gate.reshape(batch, channels, 1, 1)), 1)
    return concat.reshape(batch, 2, channels, height, width).transpose(1, 2).reshape(
        batch, 2 * channels, height, width)


def shuffle_gated_concat(left: Tensor, branch: Tensor, slope: Tensor, gate: Tensor) -> Tensor:
    """The end of a deploy-form ShuffleNet block whose two halves have C channels each.

    Output channel 2k is ``left`` channel k, channel 2k + 1 is
    ``prelu(branch, slope) * gate`` of channel k: the channel shuffle (2 groups)
    of their concatenation. ``left`` and ``branch`` are (N, C, H, W), ``slope``
    (C), ``gate`` (N, C, 1, 1) or (N, C). Channels-last float CPU inputs (a
    channel slice of a channels-last tensor included) run
    ``torch.ops.mmdice.shuffle_gated_concat`` in one pass and give a
    channels-last output; other inputs and compiled graphs use
    :func:`shuffle_gated_concat_reference`. Inference only: no autograd.
    """
    check_shuffle_gated_concat_arguments(left, branch, slope, gate)
    if use_fused_kernel(SHUFFLE_GATED_CONCAT, (left, branch), (slope, gate)):
        return torch.ops.mmdice.shuffle_gated_concat(left, branch, slope, gate)
    return shuffle_gated_concat_reference(left, branch, slope, gate)


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::shuffle_gated_concat')
    def _shuffle_gated_concat_fake(left, branch, slope, gate):
        check_shuffle_gated_concat_arguments(left, branch, slope, gate, torch._check)
        n, c, h, w = left.shape
        return torch.empty((n, 2 * c, h, w), dtype=left.dtype, device=left.device,
                           memory_format=torch.channels_last)

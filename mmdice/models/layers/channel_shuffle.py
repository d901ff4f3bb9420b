"""Channel shuffle of ShuffleNet (and, from :mod:`mmdice.ops.channel_shuffle`,
its fused concatenations)."""
from torch import Tensor

from mmdice.ops.channel_shuffle import memory_format_of, shuffled_concat

__all__ = ['channel_shuffle', 'memory_format_of', 'shuffled_concat']


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` channel groups of ``x`` (N, C, H, W).

    Viewing the channels as (groups, C // groups) and transposing, output
    channel ``k * groups + j`` is input channel ``j * (C // groups) + k``.
    """
    batch, channels, height, width = x.shape
    if channels % groups:
        raise ValueError(f'channels ({channels}) must be divisible by groups ({groups})')
    x = x.reshape(batch, groups, channels // groups, height, width)
    return x.transpose(1, 2).reshape(batch, channels, height, width)

"""Channel shuffle of ShuffleNet, and the deploy form's shuffled concatenation."""
from typing import Sequence

import torch
from torch import Tensor

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


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D tensor whose channels are its innermost
    axis (channels-last, or a channel slice of it), else ``torch.contiguous_format``."""
    if x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 and x.shape[2] * x.shape[3] > 1:
        return torch.channels_last
    return torch.contiguous_format


def shuffled_concat(parts: Sequence[Tensor], groups: int) -> Tensor:
    """``channel_shuffle(torch.cat(parts, dim=1), groups)`` in one pass.

    Each part (N, C_i, H, W) is copied once, straight to its shuffled place in
    the output, which keeps the memory format (NCHW or channels-last) of the
    first part.
    """
    batch, _, height, width = parts[0].shape
    channels = sum(part.shape[1] for part in parts)
    if channels % groups:
        raise ValueError(f'channels ({channels}) must be divisible by groups ({groups})')
    group_channels = channels // groups
    out = torch.empty((batch, channels, height, width), dtype=parts[0].dtype,
                      device=parts[0].device, memory_format=memory_format_of(parts[0]))
    # grouped[:, j, k] is output channel k * groups + j, i.e. concat channel j * group_channels + k.
    grouped = out.view(batch, group_channels, groups, height, width).transpose(1, 2)
    start = 0
    for part in parts:
        offset = 0
        while offset < part.shape[1]:
            group, k = divmod(start + offset, group_channels)
            count = min(part.shape[1] - offset, group_channels - k)
            grouped[:, group, k:k + count].copy_(part[:, offset:offset + count])
            offset += count
        start += part.shape[1]
    return out

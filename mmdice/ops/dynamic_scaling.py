"""Dynamic scaling of DimConv: inputs of another size than the build size.

The reference resamples only a spatial branch's own axis to the build size,
convolves there and resamples back: bilinear with ``align_corners=True`` when
growing, adaptive average pooling when shrinking (:func:`resize_axis`). Both
resamplings are linear along that axis, so for the height-wise branch

    y_H[c, i, w] = sum_j sum_{a,b} M[i, j, a, b] * x[c + a', j, w + b']
    M[i, j] = sum_r U[i, r] * K_r * D[r, j]

with D (Hm x H) the resampling to the build size, U (H x Hm) the one back and
K_r the kernel of build row r. M is non-zero only on a narrow band
|j - i| <= R, so it is stored as ``B = 2R + 1`` kernels per output row,
(H, B, k, k), the banded weights that ``torch.ops.mmdice.dim_conv`` takes
(:func:`band_kernels`; the width-wise branch is the same along W). M is a
differentiable function of K, so autograd turns the op's banded weight
gradient into the gradient of K.
"""
import functools
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['resize_axis', 'resampling_matrix', 'band_kernels']


def resize_axis(x: Tensor, axis: int, size: int) -> Tensor:
    """Resample one spatial axis (2 = height, 3 = width) of ``x`` to ``size``."""
    if x.shape[axis] == size:
        return x
    target = [x.shape[2], x.shape[3]]
    target[axis - 2] = size
    if x.shape[axis] < size:
        return F.interpolate(x, size=target, mode='bilinear', align_corners=True)
    return F.adaptive_avg_pool2d(x, target)


@functools.lru_cache(maxsize=None)
def _resampling_matrix_cpu(size_in: int, size_out: int) -> Tensor:
    # Column j is resize_axis of the j-th unit vector: an exact copy of its rule.
    basis = torch.eye(size_in, dtype=torch.float64).reshape(1, size_in, size_in, 1)
    return resize_axis(basis, 2, size_out)[0, :, :, 0].T.contiguous()


def resampling_matrix(size_in: int, size_out: int) -> Tensor:
    """(size_out, size_in) float64 matrix A with resize_axis(x)[..., i, :] =
    sum_j A[i, j] * x[..., j, :] along the resampled axis."""
    return _resampling_matrix_cpu(int(size_in), int(size_out)).clone()


@functools.lru_cache(maxsize=None)
def _band_plan(build_size: int, size: int, device: torch.device,
               dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor, int]:
    """down (Hm, H), up (H, Hm), gather index (H, B) into M padded by R, and R."""
    down = _resampling_matrix_cpu(size, build_size)
    up = _resampling_matrix_cpu(build_size, size)
    rows, columns = ((up.abs() @ down.abs()) > 0).nonzero(as_tuple=True)
    radius = int((columns - rows).abs().max())
    index = torch.arange(size)[:, None] + torch.arange(2 * radius + 1)[None, :]
    return (down.to(device, dtype), up.to(device, dtype), index.to(device), radius)


def band_kernels(weight: Tensor, size: int) -> Tensor:
    """Banded per-row kernels of a height- or width-wise DimConv branch.

    Args:
        weight: (Hm, 1, k, k), one kernel per row (column) of the build size Hm.
        size: H, the size of the input along the branch's axis.

    Returns:
        (H, B, k, k) with B = 2R + 1: entry [i, t] is the kernel applied to
        input row (column) i + t - R for output row (column) i; ``weight``
        itself when H == Hm.
    """
    build_size, _, k, _ = weight.shape
    if build_size == size:
        return weight
    down, up, index, radius = _band_plan(int(build_size), int(size), weight.device,
                                         weight.dtype)
    kernels = weight.reshape(build_size, k * k)
    # effective[i, tap, j] = sum_r up[i, r] * kernels[r, tap] * down[r, j]
    effective = torch.matmul(up[:, None, :] * kernels.T[None], down)
    padded = F.pad(effective, (radius, radius))
    band = padded.gather(2, index[:, None, :].expand(size, k * k, -1))
    return band.transpose(1, 2).reshape(size, 2 * radius + 1, k, k)

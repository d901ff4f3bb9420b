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

A band costs B times the taps of the plain kernel, so wide bands (large
resampling ratios, e.g. 28 -> 64: B = 9) run the resampling as passes around
the op instead: matrix products along the axis, and the op at the build size
with only that branch computed (:func:`fused_dim_conv`).
"""
import functools
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['resize_axis', 'resampling_matrix', 'band_size', 'band_kernels', 'fused_dim_conv']

# Widest band run as banded kernels; wider ones run as resampling passes. At
# B = 5 the banded kernel is faster than the passes, at B = 7 slower (forward +
# backward, benchmarks/RESULTS.md "Inputs of another size").
MAX_FUSED_BAND = 5


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
def _resampling_rows(size_in: int, size_out: int) -> Tuple[Tuple[Tuple[int, float], ...], ...]:
    """Row i: the (input index, weight) pairs, weight != 0, of output i of
    resize_axis, from its index rules in plain Python (which torch.compile
    folds into constants)."""
    if size_in == size_out:
        return tuple(((i, 1.0), ) for i in range(size_in))
    rows = []
    if size_in < size_out:  # bilinear, align_corners=True (ATen's index and weight rule)
        scale = (size_in - 1) / (size_out - 1)
        for i in range(size_out):
            source = scale * i
            first = int(source)
            second = first + 1 if first < size_in - 1 else first
            weight = source - first
            pairs = {first: 1.0 - weight}
            pairs[second] = pairs.get(second, 0.0) + weight
            rows.append(tuple((j, w) for j, w in sorted(pairs.items()) if w != 0.0))
    else:  # adaptive average pooling: the mean of inputs [start, end)
        for i in range(size_out):
            start = i * size_in // size_out
            end = -(-(i + 1) * size_in // size_out)
            rows.append(tuple((j, 1.0 / (end - start)) for j in range(start, end)))
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def _resampling_matrix_cpu(size_in: int, size_out: int) -> Tensor:
    matrix = [[0.0] * size_in for _ in range(size_out)]
    for i, row in enumerate(_resampling_rows(size_in, size_out)):
        for j, weight in row:
            matrix[i][j] = weight
    return torch.tensor(matrix, dtype=torch.float64)


def resampling_matrix(size_in: int, size_out: int) -> Tensor:
    """(size_out, size_in) float64 matrix A with resize_axis(x)[..., i, :] =
    sum_j A[i, j] * x[..., j, :] along the resampled axis."""
    return _resampling_matrix_cpu(int(size_in), int(size_out)).clone()


def _resampling_pair(build_size: int, size: int, like: Tensor) -> Tuple[Tensor, Tensor]:
    """down (Hm, H) to the build size and up (H, Hm) back, in ``like``'s dtype and device."""
    return (_resampling_matrix_cpu(size, build_size).to(like.device, like.dtype),
            _resampling_matrix_cpu(build_size, size).to(like.device, like.dtype))


@functools.lru_cache(maxsize=None)
def _band_radius(build_size: int, size: int) -> int:
    """R = max |j - i| over the non-zero entries (i, j) of up @ down."""
    down = _resampling_rows(size, build_size)
    up = _resampling_rows(build_size, size)
    return max(abs(j - i) for i, row in enumerate(up) for r, _ in row for j, _ in down[r])


def band_size(build_size: int, size: int) -> int:
    """B, the kernels per output row of a branch built for ``build_size`` run at ``size``."""
    return 2 * _band_radius(int(build_size), int(size)) + 1


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
    down, up = _resampling_pair(build_size, size, weight)
    radius = _band_radius(int(build_size), int(size))
    index = (torch.arange(size, device=weight.device)[:, None] +
             torch.arange(2 * radius + 1, device=weight.device)[None, :])
    kernels = weight.reshape(build_size, k * k)
    # effective[i, tap, j] = sum_r up[i, r] * kernels[r, tap] * down[r, j]
    effective = torch.matmul(up[:, None, :] * kernels.T[None], down)
    padded = F.pad(effective, (radius, radius))
    band = padded.gather(2, index[:, None, :].expand(size, k * k, -1))
    return band.transpose(1, 2).reshape(size, 2 * radius + 1, k, k)




def _left_out(weight: Tensor, rows: int) -> Tensor:
    """A weight with no kernels: the op leaves its branch out (zero outputs)."""
    return weight.new_empty((rows, 0, *weight.shape[2:]))


def fused_dim_conv(x: Tensor, weight_depth: Tensor, weight_height: Tensor,
                   weight_width: Tensor, dilation: List[int]) -> Tensor:
    """``torch.ops.mmdice.dim_conv`` of ``x`` (N, C, H, W) -> (N, 3C, H, W) at any size.

    Weights (C | Hm | Wm, 1, k, k) as in :func:`mmdice.ops.dim_conv`. One op
    call runs the depth-wise branch and every spatial branch at its build size
    or with a band of at most MAX_FUSED_BAND kernels; a wider-banded branch
    runs the op alone on ``x`` resampled to its build size along its axis,
    whose result is resampled back (matrix products).
    """
    n, c, h, w = x.shape
    op = torch.ops.mmdice.dim_conv
    banded = {
        axis: band_size(weight.shape[0], size) <= MAX_FUSED_BAND
        for axis, weight, size in ((2, weight_height, h), (3, weight_width, w))
    }
    base = op(x, weight_depth,
              band_kernels(weight_height, h) if banded[2] else _left_out(weight_height, h),
              band_kernels(weight_width, w) if banded[3] else _left_out(weight_width, w),
              dilation)
    if banded[2] and banded[3]:
        return base
    y_depth, y_height, y_width = base[:, 0::3], base[:, 1::3], base[:, 2::3]
    if not banded[2]:
        down, up = _resampling_pair(weight_height.shape[0], h, x)
        # contiguous: the product saves z, which must not keep the op's zero planes alive
        z = op(torch.matmul(down, x), _left_out(weight_depth, c), weight_height,
               _left_out(weight_width, w), dilation)[:, 1::3].contiguous()
        y_height = torch.matmul(up, z)
    if not banded[3]:
        down, up = _resampling_pair(weight_width.shape[0], w, x)
        z = op(torch.matmul(x, down.T), _left_out(weight_depth, c), _left_out(weight_height, h),
               weight_width, dilation)[:, 2::3].contiguous()
        y_width = torch.matmul(z, up.T)
    return torch.stack((y_depth, y_height, y_width), dim=2).reshape(n, 3 * c, h, w)

// CUDA kernels of the DimConv weight gradients (the kernels' conventions and
// helpers are in dim_conv_cuda_kernel.cuh): one block per (branch, weight row
// or, for the width-wise branch, kDimConvWidthTile adjacent rows, chunk of the
// reduction domain) reduces its taps with warp shuffles and shared memory into
// partial sums; a second kernel adds the chunks in a fixed order, so the
// result is deterministic. A banded height-wise (width-wise) weight has Bh (Bw)
// rows per output row (column): "weight rows" count each band entry.
#pragma once

#include <algorithm>
#include <cstdint>

#include "dim_conv_cuda_kernel.cuh"

namespace mmdice {

// The width-wise weight gradient reduces over (n, c, h), whose neighbours lie
// a whole row apart in memory; its blocks therefore take this many adjacent
// columns w at once (lane % kDimConvWidthTile picks the column), so that each
// warp load touches kDimConvWarpSize / kDimConvWidthTile 32-byte segments
// instead of kDimConvWarpSize.
constexpr int kDimConvWidthTile = 8;
// Every block reduces at least this many positions per thread.
constexpr int64_t kDimConvMinPositionsPerThread = 4;

// How the weight-gradient reduction is split into blocks. Branch b (depth,
// height, width) has `rows[b]` weight rows (C, H * Bh, W * Bw; height-wise row
// h * Bh + t is band entry t of output row h, width-wise row t * W + w band
// entry t of output column w, so that a width tile holds adjacent columns), each a sum over
// `domain[b]` positions ((n, h, w), (n, c, w), (n, c, h)) cut into `chunks[b]`
// consecutive pieces of `chunk_length[b]` positions. The rows are handled in
// `row_groups[b]` groups of one row (depth, height) or kDimConvWidthTile rows
// (width); block `first_block[b] + group * chunks[b] + chunk` writes the
// partial sums of its rows' taps to
// `partials[partial_offset[b] + (row * chunks[b] + chunk) * taps + tap]`.
struct DimConvWeightGradPlan {
  int64_t rows[kNumBranches];
  int64_t row_groups[kNumBranches];
  int64_t domain[kNumBranches];
  int64_t chunks[kNumBranches];
  int64_t chunk_length[kNumBranches];
  int64_t first_block[kNumBranches];
  int64_t partial_offset[kNumBranches];

  int64_t total_blocks() const {
    return first_block[kWidthBranch] + row_groups[kWidthBranch] * chunks[kWidthBranch];
  }
  int64_t total_partials(int64_t taps) const {
    return partial_offset[kWidthBranch] + rows[kWidthBranch] * chunks[kWidthBranch] * taps;
  }
};

// Splits each branch's reduction into chunks so that the launch has about
// `target_blocks` blocks per branch (weight rows alone can be as few as the 7
// rows of a 7 x 7 feature map). Host-side; the geometry must be non-empty.
inline DimConvWeightGradPlan make_dim_conv_weight_grad_plan(const DimConvGeometry& geometry,
                                                            int64_t target_blocks) {
  const int64_t n = geometry.batch;
  const int64_t c = geometry.channels;
  const int64_t h = geometry.height;
  const int64_t w = geometry.width;
  const auto ceil_div = [](int64_t numerator, int64_t denominator) {
    return (numerator + denominator - 1) / denominator;
  };
  const int64_t depth_rows = c * geometry.band_depth;
  const int64_t height_rows = h * geometry.band_height;
  const int64_t width_rows = w * geometry.band_width;
  const int64_t rows[kNumBranches] = {depth_rows, height_rows, width_rows};
  const int64_t row_groups[kNumBranches] = {depth_rows, height_rows,
                                            ceil_div(width_rows, kDimConvWidthTile)};
  const int64_t domain[kNumBranches] = {n * h * w, n * c * w, n * c * h};
  const int64_t threads_per_row[kNumBranches] = {kDimConvThreads, kDimConvThreads,
                                                 kDimConvThreads / kDimConvWidthTile};

  DimConvWeightGradPlan plan{};
  int64_t next_block = 0;
  int64_t next_partial = 0;
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    const int64_t min_chunk_length = threads_per_row[branch] * kDimConvMinPositionsPerThread;
    // A branch left out (no weight rows) gets no blocks.
    const int64_t wanted_chunks = std::max<int64_t>(
        1, std::min(ceil_div(target_blocks, std::max<int64_t>(1, row_groups[branch])),
                    ceil_div(domain[branch], min_chunk_length)));
    const int64_t chunk_length = ceil_div(domain[branch], wanted_chunks);
    plan.rows[branch] = rows[branch];
    plan.row_groups[branch] = row_groups[branch];
    plan.domain[branch] = domain[branch];
    plan.chunk_length[branch] = chunk_length;
    plan.chunks[branch] = ceil_div(domain[branch], chunk_length);
    plan.first_block[branch] = next_block;
    plan.partial_offset[branch] = next_partial;
    next_block += row_groups[branch] * plan.chunks[branch];
    next_partial += rows[branch] * plan.chunks[branch] * geometry.taps();
  }
  return plan;
}

// The weight-gradient accumulators below add grad_output * input over the
// positions first, first + stride, ... < end of one weight row to the
// accumulators of taps tap_begin .. tap_begin + kTaps - 1.

// acc[t] += go * source[i * outer.stride + j * inner.stride] for the taps
// tap_begin + t = a * k + b whose indices i = outer.index + offset(a) and
// j = inner.index + offset(b) lie inside their axes.
template <int kTaps, typename scalar_t, typename acc_t>
__device__ __forceinline__ void dim_conv_accumulate_taps(acc_t (&acc)[kTaps], acc_t go,
                                                         const scalar_t* source, int k,
                                                         int tap_begin, int64_t dilation,
                                                         DimConvWindowAxis outer,
                                                         DimConvWindowAxis inner) {
#pragma unroll
  for (int t = 0; t < kTaps; ++t) {
    const int tap = tap_begin + t;
    const int64_t i = outer.index + dim_conv_tap_offset(tap / k, k, dilation);
    const int64_t j = inner.index + dim_conv_tap_offset(tap % k, k, dilation);
    if (in_range(i, outer.size) && in_range(j, inner.size)) {
      acc[t] += go * static_cast<acc_t>(source[i * outer.stride + j * inner.stride]);
    }
  }
}

// Depth-wise row c; positions (n, h, w), w fastest.
template <int kTaps, typename scalar_t, typename acc_t>
__device__ __forceinline__ void dim_conv_accumulate_depth_row(
    acc_t (&acc)[kTaps], const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ input, const DimConvGeometry& geometry, int64_t c,
    int64_t first, int64_t stride, int64_t end, int k, int tap_begin) {
  const int64_t channels = geometry.channels;
  const int64_t height = geometry.height;
  const int64_t width = geometry.width;
  const int64_t plane = height * width;
  for (int64_t position = first; position < end; position += stride) {
    const int64_t n = position / plane;
    const int64_t p = position - n * plane;
    const int64_t h = p / width;
    const int64_t w = p - h * width;
    const acc_t go = static_cast<acc_t>(
        grad_output[(n * kNumBranches * channels + kNumBranches * c + kDepthBranch) * plane + p]);
    const scalar_t* x_nc = input + (n * channels + c) * plane;
    dim_conv_accumulate_taps(acc, go, x_nc, k, tap_begin, geometry.dilation_depth,
                             {h, height, width}, {w, width, 1});
  }
}

// Line `line` of a spatial branch's output reading input line `source_line`:
// for kBranch == kHeightBranch the height-wise output row h = line, positions
// (n, c, w), w fastest; for kWidthBranch the width-wise output column w = line,
// positions (n, c, h), h fastest. The kernel's taps run over (c, w) of the row,
// (h, c) of the column.
template <int64_t kBranch, int kTaps, typename scalar_t, typename acc_t>
__device__ __forceinline__ void dim_conv_accumulate_line(
    acc_t (&acc)[kTaps], const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ input, const DimConvGeometry& geometry, int64_t line,
    int64_t source_line, int64_t first, int64_t stride, int64_t end, int k, int tap_begin) {
  constexpr bool kRow = kBranch == kHeightBranch;
  const int64_t channels = geometry.channels;
  const int64_t plane = geometry.plane();
  // Element stride of the line's own axis (h for a row, w for a column) and
  // size and stride of the axis along the line (w for a row, h for a column).
  const int64_t line_stride = kRow ? geometry.width : 1;
  const int64_t along_size = kRow ? geometry.width : geometry.height;
  const int64_t along_stride = kRow ? 1 : geometry.width;
  const int64_t dilation = kRow ? geometry.dilation_height : geometry.dilation_width;
  for (int64_t position = first; position < end; position += stride) {
    const int64_t n = position / (channels * along_size);
    const int64_t r = position - n * channels * along_size;
    const int64_t c = r / along_size;
    const int64_t m = r - c * along_size;
    const acc_t go = static_cast<acc_t>(
        grad_output[(n * kNumBranches * channels + kNumBranches * c + kBranch) * plane +
                    line * line_stride + m * along_stride]);
    const scalar_t* x_line = input + n * channels * plane + source_line * line_stride;
    const DimConvWindowAxis channel_axis{c, channels, plane};
    const DimConvWindowAxis along_axis{m, along_size, along_stride};
    dim_conv_accumulate_taps(acc, go, x_line, k, tap_begin, dilation,
                             kRow ? channel_axis : along_axis, kRow ? along_axis : channel_axis);
  }
}

// Sums each accumulator over the threads of the block whose lanes agree
// modulo kColumns (warp shuffles, then one shared-memory pass in warp order)
// and calls store(column, t, total) for column < kColumns and t < kTaps, each
// from one thread. Must be reached by all kDimConvThreads threads.
template <int kColumns, int kTaps, typename acc_t, typename Store>
__device__ __forceinline__ void dim_conv_block_reduce_taps(const acc_t (&acc)[kTaps],
                                                           const Store& store) {
  static_assert(kDimConvWarpSize % kColumns == 0, "columns must divide the warp");
  __shared__ acc_t warp_sums[kDimConvWarps][kColumns][kTaps];
  const int lane = threadIdx.x % kDimConvWarpSize;
  const int warp = threadIdx.x / kDimConvWarpSize;
#pragma unroll
  for (int t = 0; t < kTaps; ++t) {
    acc_t value = acc[t];
#pragma unroll
    for (int delta = kDimConvWarpSize / 2; delta >= kColumns; delta /= 2) {
      value += __shfl_down_sync(0xffffffffu, value, delta);
    }
    if (lane < kColumns) warp_sums[warp][lane][t] = value;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kColumns * kTaps; i += kDimConvThreads) {
    const int column = i / kTaps;
    const int t = i - column * kTaps;
    acc_t total = 0;
#pragma unroll
    for (int j = 0; j < kDimConvWarps; ++j) total += warp_sums[j][column][t];
    store(column, t, total);
  }
}

// Partial weight gradients: block (blockIdx.x, blockIdx.y) reduces one chunk
// of one row group (see DimConvWeightGradPlan). With K > 0 a block handles all
// K * K taps; the generic path (K == 0) handles tap blockIdx.y only.
template <typename scalar_t, typename acc_t, int K>
__global__ void __launch_bounds__(kDimConvThreads)
    dim_conv_grad_weight_partial_cuda_kernel(const scalar_t* __restrict__ grad_output,
                                             const scalar_t* __restrict__ input,
                                             const DimConvGeometry geometry,
                                             const DimConvWeightGradPlan plan,
                                             acc_t* __restrict__ partials) {
  constexpr int kTaps = K > 0 ? K * K : 1;
  const int k = dim_conv_kernel_size<K>(geometry);
  const int taps = k * k;
  const int tap_begin = K > 0 ? 0 : static_cast<int>(blockIdx.y);
  const int64_t block = blockIdx.x;
  const int64_t branch = block >= plan.first_block[kWidthBranch]    ? kWidthBranch
                         : block >= plan.first_block[kHeightBranch] ? kHeightBranch
                                                                    : kDepthBranch;
  const int64_t chunks = plan.chunks[branch];
  const int64_t local_block = block - plan.first_block[branch];
  const int64_t group = local_block / chunks;
  const int64_t chunk = local_block - group * chunks;
  const int64_t begin = chunk * plan.chunk_length[branch];
  const int64_t chunk_end = begin + plan.chunk_length[branch];
  const int64_t end = chunk_end < plan.domain[branch] ? chunk_end : plan.domain[branch];
  acc_t* branch_partials = partials + plan.partial_offset[branch] + tap_begin;

  acc_t acc[kTaps];
#pragma unroll
  for (int t = 0; t < kTaps; ++t) acc[t] = 0;
  if (branch == kWidthBranch) {
    const int64_t first_row = group * kDimConvWidthTile;
    const int64_t row = first_row + threadIdx.x % kDimConvWidthTile;
    const int64_t w = row % geometry.width;
    const int64_t source_column =
        w + DimConvGeometry::band_offset(row / geometry.width, geometry.band_width);
    if (row < plan.rows[kWidthBranch] && in_range(source_column, geometry.width)) {
      dim_conv_accumulate_line<kWidthBranch, kTaps>(
          acc, grad_output, input, geometry, w, source_column,
          begin + threadIdx.x / kDimConvWidthTile, kDimConvThreads / kDimConvWidthTile, end, k,
          tap_begin);
    }
    dim_conv_block_reduce_taps<kDimConvWidthTile>(acc, [&](int column, int t, acc_t total) {
      const int64_t tile_row = first_row + column;
      if (tile_row < plan.rows[kWidthBranch]) {
        branch_partials[(tile_row * chunks + chunk) * taps + t] = total;
      }
    });
  } else {
    const int64_t row = group;
    if (branch == kDepthBranch) {
      dim_conv_accumulate_depth_row<kTaps>(acc, grad_output, input, geometry, row,
                                           begin + threadIdx.x, kDimConvThreads, end, k,
                                           tap_begin);
    } else {
      const int64_t h = row / geometry.band_height;
      const int64_t source_row =
          h + DimConvGeometry::band_offset(row % geometry.band_height, geometry.band_height);
      if (in_range(source_row, geometry.height)) {
        dim_conv_accumulate_line<kHeightBranch, kTaps>(acc, grad_output, input, geometry, h,
                                                       source_row, begin + threadIdx.x,
                                                       kDimConvThreads, end, k, tap_begin);
      }
    }
    dim_conv_block_reduce_taps<1>(acc, [&](int, int t, acc_t total) {
      branch_partials[(row * chunks + chunk) * taps + t] = total;
    });
  }
}

// grad_weight_{depth,height,width}[row][tap] = sum over the chunks of the
// row's partials, added in chunk order; width-wise row t * W + w is stored at
// band entry [w][t].
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kDimConvThreads)
    dim_conv_grad_weight_finalize_cuda_kernel(const acc_t* __restrict__ partials,
                                              const DimConvWeightGradPlan plan,
                                              const DimConvGeometry geometry,
                                              scalar_t* __restrict__ grad_weight_depth,
                                              scalar_t* __restrict__ grad_weight_height,
                                              scalar_t* __restrict__ grad_weight_width) {
  const int64_t taps = geometry.taps();
  const int64_t depth_end = plan.rows[kDepthBranch] * taps;
  const int64_t height_end = depth_end + plan.rows[kHeightBranch] * taps;
  const int64_t total = height_end + plan.rows[kWidthBranch] * taps;
  DIM_CONV_CUDA_KERNEL_LOOP(index, total) {
    int64_t branch = kDepthBranch;
    int64_t local = index;
    scalar_t* grad_weight = grad_weight_depth;
    if (index >= height_end) {
      branch = kWidthBranch;
      local = index - height_end;
      grad_weight = grad_weight_width;
    } else if (index >= depth_end) {
      branch = kHeightBranch;
      local = index - depth_end;
      grad_weight = grad_weight_height;
    }
    const int64_t row = local / taps;
    const int64_t tap = local - row * taps;
    const int64_t chunks = plan.chunks[branch];
    const acc_t* row_partials = partials + plan.partial_offset[branch] + row * chunks * taps + tap;
    acc_t sum = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += row_partials[chunk * taps];
    const int64_t weight_row =
        branch == kWidthBranch
            ? (row % geometry.width) * geometry.band_width + row / geometry.width
            : row;
    grad_weight[weight_row * taps + tap] = static_cast<scalar_t>(sum);
  }
}

}  // namespace mmdice

// CUDA kernels of the fused DimConv op (forward and grad_input; the weight
// gradients are in dim_conv_cuda_weight_grad_kernel.cuh); the maths is in
// ../dim_conv_common.h.
//
// Every kernel is templated on the storage type `scalar_t`, the accumulation
// type `acc_t` (float for half/bfloat16/float, double for double) and the
// kernel size `K`: 3 and 5 are compiled with fully unrolled tap loops, K == 0
// is the generic path that reads the (odd) kernel size from the geometry.
// Tensors are NCHW-contiguous; all indices are 64-bit.
//
//   forward:      one thread per input position (n, c, h, w) writes the three
//                 interleaved outputs 3c, 3c + 1 and 3c + 2.
//   grad_input:   one thread per input position gathers the three transposed
//                 convolutions (no atomics).
#pragma once

#include <cstdint>

#include "../dim_conv_common.h"

namespace mmdice {

// Threads per block of every DimConv kernel; the weight-gradient block
// reduction relies on it.
constexpr int kDimConvThreads = 256;
constexpr int kDimConvWarpSize = 32;
constexpr int kDimConvWarps = kDimConvThreads / kDimConvWarpSize;

// Grid-stride loop over [0, total) with 64-bit indices.
#define DIM_CONV_CUDA_KERNEL_LOOP(index, total)                                      \
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; \
       index < (total); index += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Element `index` of an NCHW tensor of `geometry`'s (N, C, H, W): the sizes C,
// H, W and H * W, and its position (n, c, h, w), w fastest.
struct DimConvElement {
  int64_t channels, height, width, plane;
  int64_t n, c, h, w;

  __device__ __forceinline__ DimConvElement(const DimConvGeometry& geometry, int64_t index)
      : channels(geometry.channels),
        height(geometry.height),
        width(geometry.width),
        plane(geometry.height * geometry.width),
        n(index / (plane * channels)),
        c((index / plane) % channels),
        h((index / width) % height),
        w(index % width) {}
};

// Kernel size: the template constant when specialised, else the runtime one.
template <int K>
__device__ __forceinline__ int dim_conv_kernel_size(const DimConvGeometry& geometry) {
  return K > 0 ? K : static_cast<int>(geometry.kernel_size);
}

// Offset of kernel index `i` of a `kernel_size` kernel convolved with `dilation`.
__device__ __forceinline__ int64_t dim_conv_tap_offset(int i, int kernel_size,
                                                       int64_t dilation) {
  return static_cast<int64_t>(i - (kernel_size - 1) / 2) * dilation;
}

// One axis of a k x k window over a tensor: the index of the window's centre
// along it, the axis length and the element stride.
struct DimConvWindowAxis {
  int64_t index;
  int64_t size;
  int64_t stride;
};

// sum += kernel[a * k + b] * source[i * outer.stride + j * inner.stride] over
// the taps a, b < k whose indices i = outer.index + offset(a) and
// j = inner.index + offset(b) lie inside their axes; with kTransposed (the
// transposed convolution of grad_input) i = outer.index - offset(a),
// j = inner.index - offset(b). Both tap loops unroll fully when k is a
// compile-time constant.
template <bool kTransposed, typename scalar_t, typename acc_t>
__device__ __forceinline__ void dim_conv_accumulate_window(acc_t& sum, const scalar_t* kernel,
                                                           const scalar_t* source, int k,
                                                           int64_t dilation,
                                                           DimConvWindowAxis outer,
                                                           DimConvWindowAxis inner) {
#pragma unroll
  for (int a = 0; a < k; ++a) {
    const int64_t outer_offset = dim_conv_tap_offset(a, k, dilation);
    const int64_t i = kTransposed ? outer.index - outer_offset : outer.index + outer_offset;
    if (!in_range(i, outer.size)) continue;
    const scalar_t* line = source + i * outer.stride;
#pragma unroll
    for (int b = 0; b < k; ++b) {
      const int64_t inner_offset = dim_conv_tap_offset(b, k, dilation);
      const int64_t j = kTransposed ? inner.index - inner_offset : inner.index + inner_offset;
      if (in_range(j, inner.size)) {
        sum += static_cast<acc_t>(kernel[a * k + b]) * static_cast<acc_t>(line[j * inner.stride]);
      }
    }
  }
}

// The sum of a height- or width-wise branch at the output position
// `position.index` along its axis: band entry t (kernel `weights[(position.index
// * band + t)]`) convolves the input line at position.index + band_offset(t)
// (source + that * position.stride) over the `outer` x `inner` window.
template <typename acc_t, typename scalar_t>
__device__ __forceinline__ acc_t dim_conv_band_sum(const scalar_t* weights, int64_t band,
                                                   DimConvWindowAxis position,
                                                   const scalar_t* source, int k,
                                                   int64_t dilation, DimConvWindowAxis outer,
                                                   DimConvWindowAxis inner) {
  acc_t sum = 0;
  for (int64_t t = 0; t < band; ++t) {
    const int64_t line = position.index + DimConvGeometry::band_offset(t, band);
    if (!in_range(line, position.size)) continue;
    dim_conv_accumulate_window<false>(sum, weights + (position.index * band + t) * k * k,
                                      source + line * position.stride, k, dilation, outer,
                                      inner);
  }
  return sum;
}

// output[n, 3c + {0, 1, 2}, h, w] = {y_D, y_H, y_W}[n, c, h, w].
template <typename scalar_t, typename acc_t, int K>
__global__ void __launch_bounds__(kDimConvThreads)
    dim_conv_forward_cuda_kernel(const scalar_t* __restrict__ input,
                                 const scalar_t* __restrict__ weight_depth,
                                 const scalar_t* __restrict__ weight_height,
                                 const scalar_t* __restrict__ weight_width,
                                 scalar_t* __restrict__ output, const DimConvGeometry geometry) {
  const int k = dim_conv_kernel_size<K>(geometry);
  DIM_CONV_CUDA_KERNEL_LOOP(index, geometry.batch * geometry.channels * geometry.plane()) {
    const auto [channels, height, width, plane, n, c, h, w] = DimConvElement(geometry, index);
    const scalar_t* x_n = input + n * channels * plane;
    const scalar_t* x_nc = x_n + c * plane;
    const scalar_t* kernel_depth = weight_depth + c * k * k;

    acc_t sum_depth = 0;
    if (geometry.band_depth > 0) {
      dim_conv_accumulate_window<false>(sum_depth, kernel_depth, x_nc, k,
                                        geometry.dilation_depth, {h, height, width},
                                        {w, width, 1});
    }

    // Row h (column w) of the height-wise (width-wise) branch: its band entry t
    // reads input row h + band_offset(t) (column w + band_offset(t)).
    const acc_t sum_height = dim_conv_band_sum<acc_t>(
        weight_height, geometry.band_height, {h, height, width}, x_n, k,
        geometry.dilation_height, {c, channels, plane}, {w, width, 1});
    const acc_t sum_width = dim_conv_band_sum<acc_t>(
        weight_width, geometry.band_width, {w, width, 1}, x_n, k, geometry.dilation_width,
        {h, height, width}, {c, channels, plane});

    scalar_t* out = output + (n * kNumBranches * channels + kNumBranches * c) * plane +
                    h * width + w;
    out[kDepthBranch * plane] = static_cast<scalar_t>(sum_depth);
    out[kHeightBranch * plane] = static_cast<scalar_t>(sum_height);
    out[kWidthBranch * plane] = static_cast<scalar_t>(sum_width);
  }
}

// grad_input[n, c, h, w]: the three branches' transposed convolutions. Input
// row h is read by band entry t of output row h - band_offset(t) (the
// height-wise kernel of its own row h when unbanded), input column w likewise.
template <typename scalar_t, typename acc_t, int K>
__global__ void __launch_bounds__(kDimConvThreads)
    dim_conv_grad_input_cuda_kernel(const scalar_t* __restrict__ grad_output,
                                    const scalar_t* __restrict__ weight_depth,
                                    const scalar_t* __restrict__ weight_height,
                                    const scalar_t* __restrict__ weight_width,
                                    scalar_t* __restrict__ grad_input,
                                    const DimConvGeometry geometry) {
  const int k = dim_conv_kernel_size<K>(geometry);
  DIM_CONV_CUDA_KERNEL_LOOP(index, geometry.batch * geometry.channels * geometry.plane()) {
    const auto [channels, height, width, plane, n, c, h, w] = DimConvElement(geometry, index);
    // grad_output of branch `branch` of channel `cc` starts at
    // go_n + (kNumBranches * cc + branch) * plane.
    const scalar_t* go_n = grad_output + n * kNumBranches * channels * plane;
    const scalar_t* kernel_depth = weight_depth + c * k * k;
    acc_t sum = 0;

    const scalar_t* go_depth = go_n + (kNumBranches * c + kDepthBranch) * plane;
    if (geometry.band_depth > 0) {
      dim_conv_accumulate_window<true>(sum, kernel_depth, go_depth, k, geometry.dilation_depth,
                                       {h, height, width}, {w, width, 1});
    }

    // Written out rather than through dim_conv_accumulate_window: only in this
    // form does nvcc hoist the branch's bounds checks out of the band loop.
    for (int64_t t = 0; t < geometry.band_height; ++t) {
      const int64_t output_row = h - DimConvGeometry::band_offset(t, geometry.band_height);
      if (!in_range(output_row, height)) continue;
      const scalar_t* kernel_height =
          weight_height + (output_row * geometry.band_height + t) * k * k;
#pragma unroll
      for (int a = 0; a < k; ++a) {
        const int64_t cc = c - dim_conv_tap_offset(a, k, geometry.dilation_height);
        if (!in_range(cc, channels)) continue;
        const scalar_t* go_row =
            go_n + (kNumBranches * cc + kHeightBranch) * plane + output_row * width;
#pragma unroll
        for (int b = 0; b < k; ++b) {
          const int64_t ww = w - dim_conv_tap_offset(b, k, geometry.dilation_height);
          if (in_range(ww, width)) {
            sum += static_cast<acc_t>(kernel_height[a * k + b]) * static_cast<acc_t>(go_row[ww]);
          }
        }
      }
    }

    for (int64_t t = 0; t < geometry.band_width; ++t) {
      const int64_t output_column = w - DimConvGeometry::band_offset(t, geometry.band_width);
      if (!in_range(output_column, width)) continue;
      const scalar_t* kernel_width =
          weight_width + (output_column * geometry.band_width + t) * k * k;
      dim_conv_accumulate_window<true>(sum, kernel_width,
                                       go_n + kWidthBranch * plane + output_column, k,
                                       geometry.dilation_width, {h, height, width},
                                       {c, channels, kNumBranches * plane});
    }

    grad_input[index] = static_cast<scalar_t>(sum);
  }
}

}  // namespace mmdice

// Geometry of the fused DimConv op, shared by the CPU and CUDA kernels.
//
// DimConv runs three k x k filters over one input x of shape (N, C, H, W):
//   depth-wise  y_D[n,c,h,w] = sum_{a,b} Wd[c][a][b] * x[n, c,         h + oa_d, w + ob_d]
//   height-wise y_H[n,c,h,w] = sum_{a,b} Wh[h][a][b] * x[n, c + oa_h, h,         w + ob_h]
//   width-wise  y_W[n,c,h,w] = sum_{a,b} Ww[w][a][b] * x[n, c + ob_w, h + oa_w, w]
// with offsets o*_X = (index - (k - 1) / 2) * dilation_X and zero padding.
// The output (N, 3C, H, W) is interleaved: channel 3c + {0, 1, 2} = {y_D, y_H, y_W}[c].
//
// Banded form (inputs of another size than the unit's build size): the
// height-wise weights are Bh kernels per output row, Wh[h][t], the t-th
// reading input row h + t - (Bh - 1) / 2; the width-wise weights likewise Bw
// kernels per output column:
//   y_H[n,c,h,w] = sum_{t,a,b} Wh[h][t][a][b] * x[n, c + oa_h, h + t - rh, w + ob_h]
//   y_W[n,c,h,w] = sum_{t,a,b} Ww[w][t][a][b] * x[n, c + ob_w, h + oa_w, w + t - rw]
// Bh = Bw = 1 is the plain DimConv above. A branch given no kernels (Bh = 0,
// Bw = 0, or Bd = 0 for the depth-wise one, whose Bd is otherwise 1) is left
// out: its output channels are zero and nothing is computed for it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DIM_CONV_HOST_DEVICE __host__ __device__
#else
#define DIM_CONV_HOST_DEVICE
#endif

namespace mmdice {

// Number of DimConv branches, and their position inside each group of three
// interleaved output channels.
constexpr int64_t kNumBranches = 3;
constexpr int64_t kDepthBranch = 0;
constexpr int64_t kHeightBranch = 1;
constexpr int64_t kWidthBranch = 2;

struct DimConvGeometry {
  int64_t batch;
  int64_t channels;
  int64_t height;
  int64_t width;
  int64_t kernel_size;
  int64_t dilation_depth;
  int64_t dilation_height;
  int64_t dilation_width;
  // Kernels per output row (height-wise) and per output column (width-wise): odd,
  // or 0 for a branch left out; kernels per channel (depth-wise): 1 or 0.
  int64_t band_height = 1;
  int64_t band_width = 1;
  int64_t band_depth = 1;

  DIM_CONV_HOST_DEVICE int64_t radius() const { return (kernel_size - 1) / 2; }
  DIM_CONV_HOST_DEVICE int64_t taps() const { return kernel_size * kernel_size; }
  // Taps of one output row's (height-wise) / column's (width-wise) kernels.
  DIM_CONV_HOST_DEVICE int64_t depth_taps() const { return band_depth * taps(); }
  DIM_CONV_HOST_DEVICE int64_t height_taps() const { return band_height * taps(); }
  DIM_CONV_HOST_DEVICE int64_t width_taps() const { return band_width * taps(); }
  // Input row (column) offset of the t-th kernel of a band of `band` kernels.
  DIM_CONV_HOST_DEVICE static int64_t band_offset(int64_t t, int64_t band) {
    return t - (band - 1) / 2;
  }
  DIM_CONV_HOST_DEVICE int64_t plane() const { return height * width; }
  // Offset of kernel index `i` along an axis convolved with `dilation`.
  DIM_CONV_HOST_DEVICE int64_t offset(int64_t i, int64_t dilation) const {
    return (i - radius()) * dilation;
  }
};

DIM_CONV_HOST_DEVICE inline bool in_range(int64_t i, int64_t size) {
  return i >= 0 && i < size;
}

}  // namespace mmdice

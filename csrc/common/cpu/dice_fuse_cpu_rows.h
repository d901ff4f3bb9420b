// Row kernel of the fused DiCE op (maths in csrc/common/dice_fuse_common.h),
// vectorised over channels: the one kernel body of torch.ops.mmdice.dice_fuse
// (csrc/pytorch/cpu/dice_fuse_cpu.cpp) and of the OpenVINO DiCEFuse node
// (csrc/openvino/dice_fuse_op.cpp) at the build size.
//
// Each worker walks output rows (n, h). The input rows a row reads (h - R ..
// h + R) are staged once each into a ring of zero-padded (W + 2 pw, C + 2 pc)
// channels-last rows in the accumulation type, so every tap of the three
// branches is a contiguous run of channels at a fixed offset: the depth-wise
// taps with per-channel weights, the height-wise (width-wise) taps with the
// row's (column's) weight broadcast. The three branch sums and the epilogue
// stay in registers; only the fused output is written. Input and output are
// addressed through element strides, so NCHW and channels-last (NHWC) data,
// float and bfloat16, run through the same loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../dice_fuse_common.h"
#include "cpu_kernel_utils.h"
#include "transpose_tiles.h"



namespace mmdice {
namespace dice_fuse_rows {

// Channels per vector of the explicitly vectorised float path: the staged
// rows and the channel-major tables are padded (with zeros) to a multiple.
constexpr int64_t kLanes = 8;

#if defined(__GNUC__)
#define MMDICE_DICE_FUSE_ROWS_VECTORS 1
// Eight floats in one vector of GCC's vector extension (AVX2 registers in the
// x86-64-v3 and v4 clones of cpu_kernel_utils.h).
typedef float Float8 __attribute__((vector_size(kLanes * sizeof(float))));

MMDICE_INLINE Float8 load8(const float* p) {
  Float8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

MMDICE_INLINE Float8 splat8(float s) { return Float8{} + s; }

// prelu(v, slope) as a compare, a multiply and a blend (dice_fuse_prelu's value).
MMDICE_INLINE Float8 prelu8(Float8 v, Float8 slope) { return v > Float8{} ? v : slope * v; }
#endif

// Element strides of a 4-D (N, C, H, W) tensor.
struct Strides {
  int64_t n, c, h, w;

  static Strides nchw(const DimConvGeometry& g) {
    return {g.channels * g.plane(), g.plane(), g.width, 1};
  }
  static Strides nhwc(const DimConvGeometry& g) {
    return {g.channels * g.plane(), 1, g.width * g.channels, g.channels};
  }
};

// A 3x3 average pooling of stride 2 and zero padding 1 (padding counted: every
// window divides by 9) applied to the input as its rows are staged: the input
// tensor is then `height` x `width` and the problem's geometry the pooled
// size, ((height - 1) / 2 + 1, (width - 1) / 2 + 1). height = 0: no pooling.
struct InputPool {
  int64_t height = 0;
  int64_t width = 0;
  bool enabled() const { return height > 0; }
  static int64_t pooled(int64_t size) { return (size - 1) / 2 + 1; }
};

// Rows of the channel-major coefficient table (kCoefficientRows, C).
constexpr int64_t kScaleRow = 0;
constexpr int64_t kBiasRow = kScaleRow + kNumBranches;
constexpr int64_t kSlopeRow = kBiasRow + kNumBranches;
constexpr int64_t kWeightRow = kSlopeRow + kNumBranches;
constexpr int64_t kFuseBiasRow = kWeightRow + kNumBranches;
constexpr int64_t kOutSlopeRow = kFuseBiasRow + 1;
constexpr int64_t kCoefficientRows = kOutSlopeRow + 1;

// Kernel sizes the row kernel is compiled for.
inline bool supported_kernel_size(int64_t k) { return k == 3 || k == 5; }

// Whether the row kernel computes this geometry: plain (unbanded) weights of a
// supported kernel size.
inline bool supports(const DimConvGeometry& g) {
  return supported_kernel_size(g.kernel_size) && g.band_depth == 1 && g.band_height == 1 &&
         g.band_width == 1;
}

// One fused DiCE problem: input (average-pooled first when `pool` is
// enabled) and output with their strides, the height- and width-wise weights
// (H, 1, k, k) and (W, 1, k, k) as given, the depth-wise weights and the
// coefficients copied channel-major in T.
template <typename scalar_t>
class Problem {
 public:
  using T = accumulate_t<scalar_t>;

  Problem(const scalar_t* input, Strides input_strides, const scalar_t* weight_depth,
          const scalar_t* weight_height, const scalar_t* weight_width,
          const DimConvGeometry& geometry, const DiceFuseParams<T>& params, scalar_t* output,
          Strides output_strides, InputPool pool = {})
      : input_(input),
        input_strides_(input_strides),
        pool_(pool),
        weight_height_(weight_height),
        weight_width_(weight_width),
        g_(geometry),
        output_(output),
        output_strides_(output_strides),
        unit_dilation_(geometry.dilation_depth == 1 && geometry.dilation_height == 1 &&
                       geometry.dilation_width == 1) {
    const int64_t r = g_.radius();
    const int64_t channels = g_.channels;
    row_reach_ = r * std::max(g_.dilation_depth, g_.dilation_width);
    column_pad_ = r * std::max(g_.dilation_depth, g_.dilation_height);
    channel_pad_ = r * std::max(g_.dilation_height, g_.dilation_width);
    table_channels_ = (channels + kLanes - 1) / kLanes * kLanes;
    padded_channels_ = table_channels_ + 2 * channel_pad_;
    row_elements_ = (g_.width + 2 * column_pad_) * padded_channels_;
    const int64_t stride = table_channels_;
    depth_weights_.assign(g_.taps() * stride, T(0));
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t t = 0; t < g_.taps(); ++t) {
        depth_weights_[t * stride + c] = static_cast<T>(weight_depth[c * g_.taps() + t]);
      }
    }
    coefficients_.assign(kCoefficientRows * stride, T(0));
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t b = 0; b < kNumBranches; ++b) {
        coefficients_[(kScaleRow + b) * stride + c] = params.branch_scale[c * kNumBranches + b];
        coefficients_[(kBiasRow + b) * stride + c] = params.branch_bias[c * kNumBranches + b];
        coefficients_[(kSlopeRow + b) * stride + c] = params.branch_slope[c * kNumBranches + b];
        coefficients_[(kWeightRow + b) * stride + c] = params.fuse_weight[c * kNumBranches + b];
      }
      coefficients_[kFuseBiasRow * stride + c] = params.fuse_bias[c];
      coefficients_[kOutSlopeRow * stride + c] = params.out_slope[c];
    }
#ifdef MMDICE_DICE_FUSE_ROWS_VECTORS
    if constexpr (std::is_same_v<T, float>) {
      if (g_.kernel_size == 3 && unit_dilation_) {
        width_taps_.resize(g_.width * 9 * kLanes);
        for (int64_t i = 0; i < g_.width * 9; ++i) {
          const float tap = static_cast<float>(weight_width[i]);
          std::fill_n(width_taps_.data() + i * kLanes, kLanes, tap);
        }
      }
    }
#endif
  }

  const DimConvGeometry& geometry() const { return g_; }

  // Rows of the problem: (n, h) flattened.
  int64_t rows() const { return g_.batch * g_.height; }

  // T elements of one worker's scratch: the ring of staged input rows and one
  // output row.
  int64_t scratch_elements() const {
    return ring_slots() * row_elements_ + g_.width * g_.channels;
  }

  // Output rows [begin, end) of rows(), with `scratch` of scratch_elements().
  // `channel_sums` (optional, N x C): each row's sums over its columns are
  // added to its image's C values.
  template <int K>
  MMDICE_INLINE void run(int64_t begin, int64_t end, T* scratch,
                         T* channel_sums = nullptr) const {
    Ring ring(*this, scratch);
    T* row_buffer = scratch + ring_slots() * row_elements_;
    const bool direct = output_strides_.c == 1 && sizeof(scalar_t) == sizeof(T);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g_.height;
      const int64_t h = row % g_.height;
      for (int64_t o = -row_reach_; o <= row_reach_; ++o) ring.stage(n, h + o);
      T* destination =
          direct ? reinterpret_cast<T*>(output_ + n * output_strides_.n + h * output_strides_.h)
                 : row_buffer;
      const int64_t destination_stride = direct ? output_strides_.w : g_.channels;
      fuse_row<K>(ring, h, destination, destination_stride);
      if (channel_sums != nullptr) {
        add_columns(destination, destination_stride, channel_sums + n * g_.channels);
      }
      if (!direct) write_row(row_buffer, n, h);
    }
  }

 private:
  int64_t ring_slots() const { return 2 * row_reach_ + 1; }

  // Staged input rows h - R .. h + R of one image, each zero-padded by
  // column_pad_ columns and channel_pad_ channels on both sides.
  class Ring {
   public:
    Ring(const Problem& problem, T* storage)
        : p_(problem), storage_(storage), image_(problem.ring_slots(), -1),
          row_(problem.ring_slots(), std::numeric_limits<int64_t>::min()) {
      std::fill(storage_, storage_ + p_.ring_slots() * p_.row_elements_, T(0));
    }

    // Make input row h of image n resident (zeros outside the image).
    MMDICE_INLINE void stage(int64_t n, int64_t h) {
      const int64_t slot = this->slot(h);
      if (image_[slot] == n && row_[slot] == h) return;
      image_[slot] = n;
      row_[slot] = h;
      p_.stage_row(n, h, storage_ + slot * p_.row_elements_);
    }

    // First channel of column w (may be -column_pad_ .. W + column_pad_ - 1) of row h.
    MMDICE_INLINE const T* at(int64_t h, int64_t w) const {
      return storage_ + slot(h) * p_.row_elements_ + (w + p_.column_pad_) * p_.padded_channels_ +
             p_.channel_pad_;
    }

   private:
    MMDICE_INLINE int64_t slot(int64_t h) const {
      const int64_t slots = p_.ring_slots();
      return ((h % slots) + slots) % slots;
    }

    const Problem& p_;
    T* storage_;
    std::vector<int64_t> image_;
    std::vector<int64_t> row_;
  };

  // Input row h of image n into `slot` (its padding stays zero), or zeros
  // when h is outside the image.
  MMDICE_INLINE void stage_row(int64_t n, int64_t h, T* slot) const {
    const int64_t channels = g_.channels;
    if (h < 0 || h >= g_.height) {
      for (int64_t w = 0; w < g_.width; ++w) {
        T* target = slot + (w + column_pad_) * padded_channels_ + channel_pad_;
        std::fill(target, target + channels, T(0));
      }
      return;
    }
    if (pool_.enabled()) {
      stage_pooled_row(n, h, slot);
      return;
    }
    const scalar_t* source = input_ + n * input_strides_.n + h * input_strides_.h;
    T* first = slot + column_pad_ * padded_channels_ + channel_pad_;
    if (input_strides_.c == 1) {
      for (int64_t w = 0; w < g_.width; ++w) {
        const scalar_t* from = source + w * input_strides_.w;
        T* to = first + w * padded_channels_;
        for (int64_t c = 0; c < channels; ++c) to[c] = static_cast<T>(from[c]);
      }
      return;
    }
    if constexpr (std::is_same_v<scalar_t, T>) {
      if (input_strides_.w == 1) {
        transpose_tiles(source, input_strides_.c, channels, g_.width, first, padded_channels_);
        return;
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      const scalar_t* from = source + c * input_strides_.c;
      for (int64_t w = 0; w < g_.width; ++w) {
        first[w * padded_channels_ + c] = static_cast<T>(from[w * input_strides_.w]);
      }
    }
  }

  // Row h of the pooled input of image n into `slot`: each column the mean of
  // the (up to) 3 x 3 input pixels around (2h, 2w), divided by 9.
  MMDICE_INLINE void stage_pooled_row(int64_t n, int64_t h, T* slot) const {
    const int64_t channels = g_.channels;
    const scalar_t* image = input_ + n * input_strides_.n;
    const int64_t row_begin = std::max<int64_t>(2 * h - 1, 0);
    const int64_t row_end = std::min<int64_t>(2 * h + 2, pool_.height);
    const T ninth = T(1) / T(9);
    for (int64_t w = 0; w < g_.width; ++w) {
      T* to = slot + (w + column_pad_) * padded_channels_ + channel_pad_;
      std::fill(to, to + channels, T(0));
      const int64_t column_begin = std::max<int64_t>(2 * w - 1, 0);
      const int64_t column_end = std::min<int64_t>(2 * w + 2, pool_.width);
      for (int64_t y = row_begin; y < row_end; ++y) {
        for (int64_t x = column_begin; x < column_end; ++x) {
          const scalar_t* from = image + y * input_strides_.h + x * input_strides_.w;
          if (input_strides_.c == 1) {
#pragma omp simd
            for (int64_t c = 0; c < channels; ++c) to[c] += static_cast<T>(from[c]);
          } else {
            for (int64_t c = 0; c < channels; ++c) {
              to[c] += static_cast<T>(from[c * input_strides_.c]);
            }
          }
        }
      }
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) to[c] *= ninth;
    }
  }

  // The (W, C) row buffer into output row (n, h).
  // sums[c] += row[w * stride + c] over the row's columns w.
  MMDICE_INLINE void add_columns(const T* row, int64_t stride, T* sums) const {
    const int64_t channels = g_.channels;
    for (int64_t w = 0; w < g_.width; ++w) {
      const T* column = row + w * stride;
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) sums[c] += column[c];
    }
  }

  MMDICE_INLINE void write_row(const T* row, int64_t n, int64_t h) const {
    scalar_t* target = output_ + n * output_strides_.n + h * output_strides_.h;
    const int64_t channels = g_.channels;
    if (output_strides_.c == 1) {
      for (int64_t w = 0; w < g_.width; ++w) {
        for (int64_t c = 0; c < channels; ++c) {
          target[w * output_strides_.w + c] = static_cast<scalar_t>(row[w * channels + c]);
        }
      }
      return;
    }
    if constexpr (std::is_same_v<scalar_t, T>) {
      if (output_strides_.w == 1) {
        transpose_tiles(row, channels, g_.width, channels, target, output_strides_.c);
        return;
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t w = 0; w < g_.width; ++w) {
        target[c * output_strides_.c + w * output_strides_.w] =
            static_cast<scalar_t>(row[w * channels + c]);
      }
    }
  }

  // The fused output of channel c from its three branch sums.
  MMDICE_INLINE T epilogue(int64_t c, T depth, T height, T width) const {
    const int64_t channels = table_channels_;
    const T* coefficient = coefficients_.data();
    const T branches[kNumBranches] = {depth, height, width};
    T sum = coefficient[kFuseBiasRow * channels + c];
#pragma GCC unroll 3
    for (int b = 0; b < kNumBranches; ++b) {
      const T z = dice_fuse_prelu(coefficient[(kScaleRow + b) * channels + c] * branches[b] +
                                      coefficient[(kBiasRow + b) * channels + c],
                                  coefficient[(kSlopeRow + b) * channels + c]);
      sum += coefficient[(kWeightRow + b) * channels + c] * z;
    }
    return dice_fuse_prelu(sum, coefficient[kOutSlopeRow * channels + c]);
  }

  // Output row h (its input rows resident in `ring`) into `out`, column w at
  // out + w * out_stride, channels contiguous: blocks of columns when every
  // dilation is 1 (neighbouring columns share their input loads; pairs in the
  // vectorised 3x3 float path, kColumnBlock otherwise), else one column at a time.
  template <int K>
  MMDICE_INLINE void fuse_row(const Ring& ring, int64_t h, T* out, int64_t out_stride) const {
    constexpr int kColumnBlock = 4;
    int64_t w = 0;
#ifdef MMDICE_DICE_FUSE_ROWS_VECTORS
    if constexpr (K == 3 && std::is_same_v<T, float>) {
      if (unit_dilation_) {
        const float* const rows[3] = {ring.at(h - 1, 0), ring.at(h, 0), ring.at(h + 1, 0)};
        Float8 height_taps[9];
        for (int t = 0; t < 9; ++t) {
          height_taps[t] = splat8(static_cast<float>(weight_height_[h * 9 + t]));
        }
        for (; w + 2 <= g_.width; w += 2) {
          fuse_columns_3x3<true>(rows, height_taps, w, out + w * out_stride, out_stride);
        }
        if (w < g_.width) {
          fuse_columns_3x3<false>(rows, height_taps, w, out + w * out_stride, out_stride);
        }
        return;
      }
    }
#endif
    if (unit_dilation_) {
      for (; w + kColumnBlock <= g_.width; w += kColumnBlock) {
        fuse_columns<K, kColumnBlock>(ring, h, w, out + w * out_stride, out_stride);
      }
      for (; w < g_.width; ++w) fuse_columns<K, 1>(ring, h, w, out + w * out_stride, out_stride);
    } else {
      for (; w < g_.width; ++w) fuse_column_dilated<K>(ring, h, w, out + w * out_stride);
    }
  }

  // Columns w0 .. w0 + B - 1 of output row h with every dilation 1.
  template <int K, int B>
  MMDICE_INLINE void fuse_columns(const Ring& ring, int64_t h, int64_t w0, T* out,
                                  int64_t out_stride) const {
    constexpr int kTaps = K * K;
    constexpr int kRadius = (K - 1) / 2;
    const int64_t channels = g_.channels;
    const int64_t column = padded_channels_;
    T height_weight[kTaps];
    T width_weight[B][kTaps];
    for (int t = 0; t < kTaps; ++t) {
      height_weight[t] = static_cast<T>(weight_height_[h * kTaps + t]);
      for (int j = 0; j < B; ++j) {
        width_weight[j][t] = static_cast<T>(weight_width_[(w0 + j) * kTaps + t]);
      }
    }
    // Row h + a - kRadius at column w0.
    const T* rows[K];
    for (int a = 0; a < K; ++a) rows[a] = ring.at(h + a - kRadius, w0);
    const T* centre = rows[kRadius];
    const T* __restrict depth_weight = depth_weights_.data();
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep
#endif
    for (int64_t c = 0; c < channels; ++c) {
      T depth[B], height[B], width[B];
#pragma GCC unroll 8
      for (int j = 0; j < B; ++j) depth[j] = height[j] = width[j] = T(0);
#pragma GCC unroll 5
      for (int a = 0; a < K; ++a) {
#pragma GCC unroll 5
        for (int b = 0; b < K; ++b) {
          const T weight = depth_weight[(a * K + b) * table_channels_ + c];
#pragma GCC unroll 8
          for (int j = 0; j < B; ++j) {
            depth[j] += weight * rows[a][(j + b - kRadius) * column + c];
            height[j] += height_weight[a * K + b] * centre[(j + b - kRadius) * column + c + a - kRadius];
            width[j] += width_weight[j][a * K + b] * rows[a][j * column + c + b - kRadius];
          }
        }
      }
#pragma GCC unroll 8
      for (int j = 0; j < B; ++j) out[j * out_stride + c] = epilogue(c, depth[j], height[j], width[j]);
    }
  }

#ifdef MMDICE_DICE_FUSE_ROWS_VECTORS
  // Output columns w0 and, if kPair, w0 + 1 of a row, 3x3 kernels, every
  // dilation 1, float: eight channels at a time, each column's three branch
  // sums in named registers. `row_starts`: the staged input rows above, at and
  // below the output row at column 0; `height_taps`: the row's 9 height-wise
  // taps splatted (the width-wise ones come splatted from width_taps_).
  // The row and weight-table strides are hidden from the optimiser in the
  // loop, so that addresses are formed from a few base registers instead of
  // one strength-reduced pointer (and a spill) per tap.
  template <bool kPair>
  MMDICE_INLINE void fuse_columns_3x3(const float* const row_starts[3], const Float8* height_taps,
                                      int64_t w0, float* out, int64_t out_stride) const {
    const float* width_taps0 = width_taps_.data() + w0 * 9 * kLanes;
    const float* width_taps1 = width_taps0 + 9 * kLanes;
    const int64_t offset = w0 * padded_channels_;
    const float* rows[3] = {row_starts[0] + offset, row_starts[1] + offset, row_starts[2] + offset};
    const float* depth_weight = depth_weights_.data();
    for (int64_t c = 0; c < table_channels_; c += kLanes) {
      int64_t column = padded_channels_;
      int64_t stride = table_channels_;
      __asm__("" : "+r"(column), "+r"(stride));
      Float8 depth0{}, height0{}, width0{}, depth1{}, height1{}, width1{};
#pragma GCC unroll 3
      for (int a = 0; a < 3; ++a) {
        const float* row = rows[a] + c;
        const float* tap = depth_weight + a * 3 * stride + c;
        const Float8 left = load8(row - column), middle = load8(row), right = load8(row + column);
        depth0 += load8(tap) * left;
        depth0 += load8(tap + stride) * middle;
        depth0 += load8(tap + 2 * stride) * right;
        width0 += load8(width_taps0 + (a * 3) * kLanes) * load8(row - 1);
        width0 += load8(width_taps0 + (a * 3 + 1) * kLanes) * middle;
        width0 += load8(width_taps0 + (a * 3 + 2) * kLanes) * load8(row + 1);
        if constexpr (kPair) {
          const Float8 far = load8(row + 2 * column);
          depth1 += load8(tap) * middle;
          depth1 += load8(tap + stride) * right;
          depth1 += load8(tap + 2 * stride) * far;
          width1 += load8(width_taps1 + (a * 3) * kLanes) * load8(row + column - 1);
          width1 += load8(width_taps1 + (a * 3 + 1) * kLanes) * right;
          width1 += load8(width_taps1 + (a * 3 + 2) * kLanes) * load8(row + column + 1);
        }
      }
      const float* centre = rows[1] + c;
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {
        const float* at = centre + (b - 1) * column;
        height0 += height_taps[b] * load8(at - 1);
        height0 += height_taps[3 + b] * load8(at);
        height0 += height_taps[6 + b] * load8(at + 1);
        if constexpr (kPair) {
          height1 += height_taps[b] * load8(at + column - 1);
          height1 += height_taps[3 + b] * load8(at + column);
          height1 += height_taps[6 + b] * load8(at + column + 1);
        }
      }
      Float8 first, second;
      if constexpr (kPair) {
        fuse_pair(c, depth0, height0, width0, depth1, height1, width1, first, second);
        store8(second, c, out + out_stride);
      } else {
        fuse_pair(c, depth0, height0, width0, depth0, height0, width0, first, second);
      }
      store8(first, c, out);
    }
  }

  // The fused outputs of channels [c, c + 8) of two columns from their branch
  // sums, each coefficient loaded once for both (for one column, both the same).
  MMDICE_INLINE void fuse_pair(int64_t c, Float8 depth0, Float8 height0, Float8 width0,
                               Float8 depth1, Float8 height1, Float8 width1, Float8& first,
                               Float8& second) const {
    const int64_t stride = table_channels_;
    const float* coefficient = coefficients_.data() + c;
    const auto row_of = [&](int64_t index) { return load8(coefficient + index * stride); };
    const Float8 branches0[kNumBranches] = {depth0, height0, width0};
    const Float8 branches1[kNumBranches] = {depth1, height1, width1};
    Float8 sum0 = row_of(kFuseBiasRow);
    Float8 sum1 = sum0;
#pragma GCC unroll 3
    for (int b = 0; b < kNumBranches; ++b) {
      const Float8 scale = row_of(kScaleRow + b), bias = row_of(kBiasRow + b),
                   slope = row_of(kSlopeRow + b), weight = row_of(kWeightRow + b);
      sum0 += weight * prelu8(scale * branches0[b] + bias, slope);
      sum1 += weight * prelu8(scale * branches1[b] + bias, slope);
    }
    const Float8 out_slope = row_of(kOutSlopeRow);
    first = prelu8(sum0, out_slope);
    second = prelu8(sum1, out_slope);
  }

  // Channels [c, c + 8) of `value`, those below the problem's channels, into out + c.
  MMDICE_INLINE void store8(Float8 value, int64_t c, float* out) const {
    float* target = out + c;
    if (c + kLanes <= g_.channels) {
      __builtin_memcpy(target, &value, sizeof(value));
    } else {
      float lanes[kLanes];
      __builtin_memcpy(lanes, &value, sizeof(value));
      for (int64_t i = 0; i < g_.channels - c; ++i) target[i] = lanes[i];
    }
  }
#endif

  // Column w of output row h with any dilations.
  template <int K>
  MMDICE_INLINE void fuse_column_dilated(const Ring& ring, int64_t h, int64_t w, T* out) const {
    constexpr int kTaps = K * K;
    constexpr int kRadius = (K - 1) / 2;
    const int64_t channels = g_.channels;
    const int64_t dd = g_.dilation_depth, dh = g_.dilation_height, dw = g_.dilation_width;
    const T* depth_source[kTaps];
    const T* height_source[kTaps];
    const T* width_source[kTaps];
    T height_weight[kTaps];
    T width_weight[kTaps];
    for (int a = 0; a < K; ++a) {
      for (int b = 0; b < K; ++b) {
        const int t = a * K + b;
        depth_source[t] = ring.at(h + (a - kRadius) * dd, w + (b - kRadius) * dd);
        height_source[t] = ring.at(h, w + (b - kRadius) * dh) + (a - kRadius) * dh;
        width_source[t] = ring.at(h + (a - kRadius) * dw, w) + (b - kRadius) * dw;
        height_weight[t] = static_cast<T>(weight_height_[h * kTaps + t]);
        width_weight[t] = static_cast<T>(weight_width_[w * kTaps + t]);
      }
    }
    const T* __restrict depth_weight = depth_weights_.data();
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep
#endif
    for (int64_t c = 0; c < channels; ++c) {
      T depth = T(0), height = T(0), width = T(0);
#pragma GCC unroll 25
      for (int t = 0; t < kTaps; ++t) {
        depth += depth_weight[t * table_channels_ + c] * depth_source[t][c];
        height += height_weight[t] * height_source[t][c];
        width += width_weight[t] * width_source[t][c];
      }
      out[c] = epilogue(c, depth, height, width);
    }
  }

  const scalar_t* input_;
  Strides input_strides_;
  InputPool pool_;
  const scalar_t* weight_height_;
  const scalar_t* weight_width_;
  DimConvGeometry g_;
  scalar_t* output_;
  Strides output_strides_;
  // Every dilation 1: neighbouring columns share their input loads.
  bool unit_dilation_;
  int64_t row_reach_ = 0;
  int64_t column_pad_ = 0;
  int64_t channel_pad_ = 0;
  int64_t table_channels_ = 0;
  int64_t padded_channels_ = 0;
  int64_t row_elements_ = 0;
  std::vector<T> depth_weights_;
  std::vector<T> coefficients_;
#ifdef MMDICE_DICE_FUSE_ROWS_VECTORS
  // The width-wise taps splatted, (W, 9, kLanes), for the 3x3 float path (a
  // vector of floats: std::vector<Float8> would drop the vector type's alignment).
  std::vector<float> width_taps_;
#endif
};

// Output rows [begin, end) of `problem` (supports(geometry) must hold).
// `channel_sums`: as for Problem::run.
template <typename scalar_t>
MMDICE_INLINE void run_rows_impl(const Problem<scalar_t>& problem, int64_t begin, int64_t end,
                                 accumulate_t<scalar_t>* scratch,
                                 accumulate_t<scalar_t>* channel_sums = nullptr) {
  if (problem.geometry().kernel_size == 3) {
    problem.template run<3>(begin, end, scratch, channel_sums);
  } else {
    problem.template run<5>(begin, end, scratch, channel_sums);
  }
}

// Rows per worker task: about kParallelGrainElements multiply-adds (each
// output element takes one per tap of each branch), so that a batch-1 layer
// of a few rows still spreads over the threads.
inline int64_t row_grain(const DimConvGeometry& g) {
  return parallel_grain(g.width * g.channels * kNumBranches * g.taps());
}

}  // namespace dice_fuse_rows
}  // namespace mmdice

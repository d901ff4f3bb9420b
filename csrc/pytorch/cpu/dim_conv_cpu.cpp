// Fused CPU kernels of DimConv (maths in csrc/common/dim_conv_common.h).
//
// Every branch is a sum of k*k shifted copies of some input plane, scaled by a
// scalar (depth-wise: Wd[c][tap]) or by a per-element weight that depends only
// on the row (height-wise: Wh[h][tap]) or the column (width-wise: Ww[w][tap]).
// Each thread walks a contiguous run of (n, c) planes and keeps the planes it
// needs -- its own channel and the channel neighbours reached by the height-
// and width-wise kernels -- in a small ring of zero-padded, L1-sized copies in
// the accumulation type (so bf16 is converted once per plane). In the padded
// layout each row is followed by `pad_columns` zeros and the plane has
// `pad_rows` zero rows above and below, so every tap is one branch-free
// multiply-add over a flat range: no bounds checks, no per-row loops, and 7x7
// planes vectorise as well as 28x28 ones. The height-/width-wise weights are
// laid out once per call as flat "weight planes" over that layout.
//
// Forward: parallel over (n, c) planes; each plane yields output channels 3c,
// 3c+1, 3c+2. Backward: one parallel pass over (n, c) planes computes the
// grad_input plane c as a gather (transposed convolutions with negated
// offsets, no atomics) together with per-chunk partial weight gradients,
// which are reduced in a fixed order at the end (deterministic for a given
// number of threads).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../dim_conv.h"

// Portable binaries: the hot loops are compiled for AVX-512, AVX2+FMA and
// baseline x86-64, and the loader picks the best one for the running CPU.
#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define DIM_CONV_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DIM_CONV_CPU_CLONES
#endif

namespace mmdice {

namespace {

// Elements produced per inner block; the flat plane length is rounded up to a
// multiple of it so that every inner loop has this fixed trip count.
constexpr int64_t kBlock = 32;

// Planes per thread below which splitting work costs more than it saves
// (ATen's usual grain of 32768 elements).
int64_t plane_grain(const DimConvGeometry& g) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, g.plane()));
}

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Zero-padded flat layout of one (H, W) plane.
struct PaddedLayout {
  int64_t height;
  int64_t width;
  int64_t pad_rows;     // zero rows above and below
  int64_t pad_columns;  // zero columns between consecutive rows
  int64_t row_stride;   // width + pad_columns
  int64_t length;       // flat range computed per plane: height * row_stride rounded up
  int64_t origin;       // buffer index of element (0, 0)
  int64_t size;         // buffer elements: origin + length + the largest forward shift

  explicit PaddedLayout(const DimConvGeometry& g) : height(g.height), width(g.width) {
    const int64_t r = g.radius();
    pad_rows = r * std::max(g.dilation_depth, g.dilation_width);
    pad_columns = r * std::max(g.dilation_depth, g.dilation_height);
    row_stride = g.width + pad_columns;
    length = round_up(g.height * row_stride, kBlock);
    origin = pad_columns + pad_rows * row_stride;
    size = 2 * origin + length;
  }

  // Flat shift of a tap reading `rows` rows down and `columns` columns right.
  int64_t shift(int64_t rows, int64_t columns) const { return rows * row_stride + columns; }
};

// Tap (a, b) of one branch: reads input plane c + channel_offset at flat
// offset `shift` from the output position; `index` = a * k + b.
struct TapGeometry {
  int64_t channel_offset;
  int64_t shift;
  int64_t index;
};

// The taps of the three branches, grouped by channel offset.
struct BranchTaps {
  std::vector<TapGeometry> depth;
  std::vector<TapGeometry> height;
  std::vector<TapGeometry> width;

  BranchTaps(const DimConvGeometry& g, const PaddedLayout& layout) {
    const int64_t k = g.kernel_size;
    // Kernel axes: depth (row, column), height (channel, column), width (row, channel).
    for (int64_t a = 0; a < k; ++a) {
      for (int64_t b = 0; b < k; ++b) {
        depth.push_back({0,
                         layout.shift(g.offset(a, g.dilation_depth), g.offset(b, g.dilation_depth)),
                         a * k + b});
        height.push_back(
            {g.offset(a, g.dilation_height), g.offset(b, g.dilation_height), a * k + b});
      }
    }
    for (int64_t b = 0; b < k; ++b) {
      for (int64_t a = 0; a < k; ++a) {
        width.push_back({g.offset(b, g.dilation_width),
                         layout.shift(g.offset(a, g.dilation_width), 0), a * k + b});
      }
    }
  }
};

// One term of an output block: out[o] += weight(o) * source[o], where the
// weight is a scalar or, when `weights` is set, a flat weight plane.
template <typename T>
struct Tap {
  const T* source;
  const T* weights;
  T weight;
};

// The taps of one output plane: at most three branches of k*k taps.
template <typename T>
struct TapList {
  std::vector<Tap<T>> taps;
  int64_t count = 0;

  explicit TapList(int64_t kernel_size) : taps(kNumBranches * kernel_size * kernel_size) {}
  void add_scalar(const T* source, T weight) { taps[count++] = {source, nullptr, weight}; }
  void add_vector(const T* source, const T* weights) {
    taps[count++] = {source, weights, T(0)};
  }
};

// acc[0:kBlock] += weight(start + j) * source[start + j]
template <typename T>
inline void accumulate_tap(const Tap<T>& tap, int64_t start, T* acc) {
  const T* source = tap.source + start;
  if (tap.weights == nullptr) {
    const T weight = tap.weight;
    for (int64_t j = 0; j < kBlock; ++j) acc[j] += weight * source[j];
  } else {
    const T* weights = tap.weights + start;
    for (int64_t j = 0; j < kBlock; ++j) acc[j] += weights[j] * source[j];
  }
}

// out[0:length] = sum over taps of weight * source, blocked so that the
// kBlock partial sums stay in registers across all taps.
template <typename T>
inline void gather_taps_impl(const TapList<T>& list, int64_t length, T* out) {
  for (int64_t start = 0; start < length; start += kBlock) {
    T acc[kBlock] = {};
    for (int64_t t = 0; t < list.count; ++t) accumulate_tap(list.taps[t], start, acc);
    std::memcpy(out + start, acc, sizeof(acc));
  }
}

// sum(a[0:length] * b[0:length]) in a fixed blocked order.
template <typename T>
inline T dot_impl(const T* a, const T* b, int64_t length) {
  T acc[kBlock] = {};
  for (int64_t start = 0; start < length; start += kBlock) {
    for (int64_t j = 0; j < kBlock; ++j) acc[j] += a[start + j] * b[start + j];
  }
  T total = 0;
  for (int64_t j = 0; j < kBlock; ++j) total += acc[j];
  return total;
}

// acc[0:length] += a[0:length] * b[0:length]
template <typename T>
inline void multiply_accumulate_impl(T* acc, const T* a, const T* b, int64_t length) {
  for (int64_t i = 0; i < length; ++i) acc[i] += a[i] * b[i];
}

// dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows, i < columns,
// converted between the tensor type and the accumulation type.
template <typename From, typename To>
inline void copy_rows_impl(const From* src, int64_t src_stride, To* dst, int64_t dst_stride,
                           int64_t rows, int64_t columns) {
  for (int64_t r = 0; r < rows; ++r) {
    const From* src_row = src + r * src_stride;
    To* dst_row = dst + r * dst_stride;
    if constexpr (std::is_same_v<From, To>) {
      std::memcpy(dst_row, src_row, columns * sizeof(To));
    } else {
      for (int64_t i = 0; i < columns; ++i) dst_row[i] = static_cast<To>(src_row[i]);
    }
  }
}

#define DIM_CONV_DEFINE_KERNELS(T)                                                           \
  DIM_CONV_CPU_CLONES void gather_taps(const TapList<T>& list, int64_t length, T* out) {      \
    gather_taps_impl(list, length, out);                                                      \
  }                                                                                           \
  DIM_CONV_CPU_CLONES T dot(const T* a, const T* b, int64_t length) {                         \
    return dot_impl(a, b, length);                                                            \
  }                                                                                           \
  DIM_CONV_CPU_CLONES void multiply_accumulate(T* acc, const T* a, const T* b,                \
                                               int64_t length) {                              \
    multiply_accumulate_impl(acc, a, b, length);                                              \
  }
DIM_CONV_DEFINE_KERNELS(float)
DIM_CONV_DEFINE_KERNELS(double)
#undef DIM_CONV_DEFINE_KERNELS

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
               int64_t rows, int64_t columns) {
  copy_rows_impl(src, src_stride, dst, dst_stride, rows, columns);
}
void copy_rows(const double* src, int64_t src_stride, double* dst, int64_t dst_stride,
               int64_t rows, int64_t columns) {
  copy_rows_impl(src, src_stride, dst, dst_stride, rows, columns);
}
DIM_CONV_CPU_CLONES void copy_rows(const c10::BFloat16* src, int64_t src_stride, float* dst,
                                   int64_t dst_stride, int64_t rows, int64_t columns) {
  copy_rows_impl(src, src_stride, dst, dst_stride, rows, columns);
}
DIM_CONV_CPU_CLONES void copy_rows(const float* src, int64_t src_stride, c10::BFloat16* dst,
                                   int64_t dst_stride, int64_t rows, int64_t columns) {
  copy_rows_impl(src, src_stride, dst, dst_stride, rows, columns);
}

// Zero-padded copies, in the accumulation type T, of the planes (n, j) of a
// tensor that a thread currently needs: planes j - radius .. j + radius live in
// distinct slots j mod (a power of two > 2 * radius).
template <typename scalar_t, typename T>
class PlaneRing {
 public:
  // Plane (n, j) starts at data + (n * channels_total + j * stride + offset) * H * W.
  PlaneRing(const scalar_t* data, int64_t channels_total, int64_t stride, int64_t offset,
            int64_t radius, const PaddedLayout& layout)
      : data_(data),
        channels_total_(channels_total),
        stride_(stride),
        offset_(offset),
        slot_mask_(power_of_two_above(2 * radius) - 1),
        layout_(layout),
        buffer_((slot_mask_ + 1) * layout.size, T(0)),
        tags_(slot_mask_ + 1, -1) {}

  // Pointer to element (0, 0) of padded plane (n, j), 0 <= j < channels.
  const T* get(int64_t n, int64_t j) {
    const int64_t slot = j & slot_mask_;
    const int64_t tag = n * channels_total_ + j;
    T* plane = buffer_.data() + slot * layout_.size;
    if (tags_[slot] != tag) {
      tags_[slot] = tag;
      const scalar_t* src =
          data_ + (n * channels_total_ + j * stride_ + offset_) * layout_.height * layout_.width;
      copy_rows(src, layout_.width, plane + layout_.origin, layout_.row_stride, layout_.height,
                layout_.width);
    }
    return plane + layout_.origin;
  }

 private:
  static int64_t power_of_two_above(int64_t value) {
    int64_t power = 1;
    while (power <= value) power *= 2;
    return power;
  }

  const scalar_t* data_;
  int64_t channels_total_;
  int64_t stride_;
  int64_t offset_;
  int64_t slot_mask_;
  const PaddedLayout& layout_;
  std::vector<T> buffer_;
  std::vector<int64_t> tags_;
};

// Flat weight planes of the height- and width-wise kernels: entry
// [tap][h * row_stride + w] = Wh[h][tap] (resp. Ww[w][tap]) inside the plane,
// 0 in the padding columns and rows.
template <typename T>
class WeightPlanes {
 public:
  template <typename scalar_t>
  WeightPlanes(const scalar_t* weight_height, const scalar_t* weight_width,
               const DimConvGeometry& g, const PaddedLayout& layout)
      : length_(layout.length),
        height_(g.taps() * layout.length, T(0)),
        width_(g.taps() * layout.length, T(0)) {
    const int64_t taps = g.taps();
    for (int64_t tap = 0; tap < taps; ++tap) {
      for (int64_t h = 0; h < g.height; ++h) {
        for (int64_t w = 0; w < g.width; ++w) {
          const int64_t i = tap * length_ + h * layout.row_stride + w;
          height_[i] = static_cast<T>(weight_height[h * taps + tap]);
          width_[i] = static_cast<T>(weight_width[w * taps + tap]);
        }
      }
    }
  }

  const T* height(int64_t tap) const { return height_.data() + tap * length_; }
  const T* width(int64_t tap) const { return width_.data() + tap * length_; }

 private:
  int64_t length_;
  std::vector<T> height_;
  std::vector<T> width_;
};

// Walks the (n, c) planes [begin, end) without a division per plane.
template <typename Body>
void for_each_plane(int64_t begin, int64_t end, int64_t channels, Body body) {
  int64_t n = begin / channels;
  int64_t c = begin % channels;
  for (int64_t plane = begin; plane < end; ++plane) {
    body(plane, n, c);
    if (++c == channels) {
      c = 0;
      ++n;
    }
  }
}

template <typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& weight_depth,
                    const at::Tensor& weight_height, const at::Tensor& weight_width,
                    const DimConvGeometry& g, at::Tensor& output) {
  using T = at::opmath_type<scalar_t>;
  const PaddedLayout layout(g);
  const BranchTaps branch_taps(g, layout);
  const WeightPlanes<T> weight_planes(weight_height.data_ptr<scalar_t>(),
                                      weight_width.data_ptr<scalar_t>(), g, layout);
  const int64_t taps = g.taps();
  const int64_t channels = g.channels;
  const int64_t plane_size = g.plane();
  const int64_t channel_radius = g.radius() * std::max(g.dilation_height, g.dilation_width);
  const scalar_t* x = input.data_ptr<scalar_t>();
  const scalar_t* depth_weights = weight_depth.data_ptr<scalar_t>();
  scalar_t* y = output.data_ptr<scalar_t>();

  at::parallel_for(0, g.batch * channels, plane_grain(g), [&](int64_t begin, int64_t end) {
    PlaneRing<scalar_t, T> ring(x, channels, 1, 0, channel_radius, layout);
    std::vector<T> branch_out(layout.length);
    TapList<T> list(g.kernel_size);
    auto store = [&](scalar_t* out_plane) {
      gather_taps(list, layout.length, branch_out.data());
      copy_rows(branch_out.data(), layout.row_stride, out_plane, g.width, g.height, g.width);
      list.count = 0;
    };
    for_each_plane(begin, end, channels, [&](int64_t plane, int64_t n, int64_t c) {
      scalar_t* y_plane = y + plane * kNumBranches * plane_size;
      const T* own = ring.get(n, c);
      for (const TapGeometry& tap : branch_taps.depth) {
        list.add_scalar(own + tap.shift, static_cast<T>(depth_weights[c * taps + tap.index]));
      }
      store(y_plane + kDepthBranch * plane_size);
      // The spatial branches read neighbouring channels with per-row/-column weights.
      auto add_channel_taps = [&](const auto& branch, auto weight_plane) {
        for (const TapGeometry& tap : branch) {
          const int64_t j = c + tap.channel_offset;
          if (in_range(j, channels)) {
            list.add_vector(ring.get(n, j) + tap.shift, weight_plane(tap.index));
          }
        }
      };
      add_channel_taps(branch_taps.height, [&](int64_t i) { return weight_planes.height(i); });
      store(y_plane + kHeightBranch * plane_size);
      add_channel_taps(branch_taps.width, [&](int64_t i) { return weight_planes.width(i); });
      store(y_plane + kWidthBranch * plane_size);
    });
  });
}

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& weight_depth, const at::Tensor& weight_height,
                     const at::Tensor& weight_width, const DimConvGeometry& g,
                     at::Tensor& grad_input, at::Tensor& grad_weight_depth,
                     at::Tensor& grad_weight_height, at::Tensor& grad_weight_width) {
  using T = at::opmath_type<scalar_t>;
  const PaddedLayout layout(g);
  const BranchTaps branch_taps(g, layout);
  const WeightPlanes<T> weight_planes(weight_height.data_ptr<scalar_t>(),
                                      weight_width.data_ptr<scalar_t>(), g, layout);
  const int64_t taps = g.taps();
  const int64_t channels = g.channels;
  const int64_t plane_size = g.plane();
  const int64_t x_radius = g.radius() * std::max(g.dilation_height, g.dilation_width);
  const scalar_t* x = input.data_ptr<scalar_t>();
  const scalar_t* grad_y = grad_output.data_ptr<scalar_t>();
  const scalar_t* depth_weights = weight_depth.data_ptr<scalar_t>();
  scalar_t* grad_x = grad_input.data_ptr<scalar_t>();

  // The planes are split into one chunk per thread; each chunk accumulates its
  // own partial weight gradients: depth (C, taps) as dot products, height and
  // width as flat (taps, length) planes of products, summed over columns
  // (rows) only once, at the end.
  const int64_t planes = g.batch * channels;
  const int64_t chunk_count = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), planes / plane_grain(g)));
  const int64_t chunk_size = (planes + chunk_count - 1) / chunk_count;
  const int64_t depth_partial_size = channels * taps;
  const int64_t flat_partial_size = taps * layout.length;
  std::vector<T> depth_partials(chunk_count * depth_partial_size, T(0));
  std::vector<T> height_partials(chunk_count * flat_partial_size, T(0));
  std::vector<T> width_partials(chunk_count * flat_partial_size, T(0));

  at::parallel_for(0, chunk_count, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    const int64_t total_channels = kNumBranches * channels;
    PlaneRing<scalar_t, T> x_ring(x, channels, 1, 0, x_radius, layout);
    PlaneRing<scalar_t, T> depth_grads(grad_y, total_channels, kNumBranches, kDepthBranch, 0,
                                       layout);
    PlaneRing<scalar_t, T> height_grads(grad_y, total_channels, kNumBranches, kHeightBranch,
                                        g.radius() * g.dilation_height, layout);
    PlaneRing<scalar_t, T> width_grads(grad_y, total_channels, kNumBranches, kWidthBranch,
                                       g.radius() * g.dilation_width, layout);
    std::vector<T> grad_plane(layout.length);
    TapList<T> list(g.kernel_size);
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      T* depth_partial = depth_partials.data() + chunk * depth_partial_size;
      T* height_partial = height_partials.data() + chunk * flat_partial_size;
      T* width_partial = width_partials.data() + chunk * flat_partial_size;
      const int64_t begin = chunk * chunk_size;
      const int64_t end = std::min(planes, begin + chunk_size);
      for_each_plane(begin, end, channels, [&](int64_t plane, int64_t n, int64_t c) {
        const T* x_own = x_ring.get(n, c);
        const T* grad_depth = depth_grads.get(n, c);

        // grad_input plane c: each branch's transposed convolution, i.e. the
        // forward taps with negated channel and spatial offsets.
        list.count = 0;
        for (const TapGeometry& tap : branch_taps.depth) {
          list.add_scalar(grad_depth - tap.shift,
                          static_cast<T>(depth_weights[c * taps + tap.index]));
        }
        for (const TapGeometry& tap : branch_taps.height) {
          const int64_t j = c - tap.channel_offset;
          if (in_range(j, channels)) {
            list.add_vector(height_grads.get(n, j) - tap.shift, weight_planes.height(tap.index));
          }
        }
        for (const TapGeometry& tap : branch_taps.width) {
          const int64_t j = c - tap.channel_offset;
          if (in_range(j, channels)) {
            list.add_vector(width_grads.get(n, j) - tap.shift, weight_planes.width(tap.index));
          }
        }
        gather_taps(list, layout.length, grad_plane.data());
        copy_rows(grad_plane.data(), layout.row_stride, grad_x + plane * plane_size, g.width,
                  g.height, g.width);

        // Weight gradients: this plane's output gradients times the input
        // planes each tap read in the forward pass (zero padding columns of
        // the gradient planes mask the wrapped-around reads).
        for (const TapGeometry& tap : branch_taps.depth) {
          depth_partial[c * taps + tap.index] += dot(grad_depth, x_own + tap.shift, layout.length);
        }
        const T* grad_height = height_grads.get(n, c);
        for (const TapGeometry& tap : branch_taps.height) {
          const int64_t j = c + tap.channel_offset;
          if (in_range(j, channels)) {
            multiply_accumulate(height_partial + tap.index * layout.length, grad_height,
                                x_ring.get(n, j) + tap.shift, layout.length);
          }
        }
        const T* grad_width = width_grads.get(n, c);
        for (const TapGeometry& tap : branch_taps.width) {
          const int64_t j = c + tap.channel_offset;
          if (in_range(j, channels)) {
            multiply_accumulate(width_partial + tap.index * layout.length, grad_width,
                                x_ring.get(n, j) + tap.shift, layout.length);
          }
        }
      });
    }
  });

  // Deterministic reduction: chunks in order, then the columns (height) or
  // rows (width) of the flat partial planes.
  scalar_t* grad_depth_weights = grad_weight_depth.data_ptr<scalar_t>();
  for (int64_t i = 0; i < depth_partial_size; ++i) {
    T total = 0;
    for (int64_t chunk = 0; chunk < chunk_count; ++chunk) {
      total += depth_partials[chunk * depth_partial_size + i];
    }
    grad_depth_weights[i] = static_cast<scalar_t>(total);
  }
  std::vector<T> height_totals(g.height * taps, T(0));
  std::vector<T> width_totals(g.width * taps, T(0));
  for (int64_t chunk = 0; chunk < chunk_count; ++chunk) {
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t start = chunk * flat_partial_size + tap * layout.length;
      for (int64_t h = 0; h < g.height; ++h) {
        for (int64_t w = 0; w < g.width; ++w) {
          const int64_t i = start + h * layout.row_stride + w;
          height_totals[h * taps + tap] += height_partials[i];
          width_totals[w * taps + tap] += width_partials[i];
        }
      }
    }
  }
  scalar_t* grad_height_weights = grad_weight_height.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.height * taps; ++i) {
    grad_height_weights[i] = static_cast<scalar_t>(height_totals[i]);
  }
  scalar_t* grad_width_weights = grad_weight_width.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.width * taps; ++i) {
    grad_width_weights[i] = static_cast<scalar_t>(width_totals[i]);
  }
}

}  // namespace

at::Tensor dim_conv_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                const at::Tensor& weight_height, const at::Tensor& weight_width,
                                const DimConvGeometry& geometry) {
  auto output = at::empty(
      {geometry.batch, kNumBranches * geometry.channels, geometry.height, geometry.width},
      input.options().memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, input.scalar_type(), "dim_conv_forward_cpu", [&] {
    forward_kernel<scalar_t>(input, weight_depth, weight_height, weight_width, geometry, output);
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry) {
  auto grad_input = at::empty_like(input, at::MemoryFormat::Contiguous);
  auto grad_weight_depth = at::zeros_like(weight_depth, at::MemoryFormat::Contiguous);
  auto grad_weight_height = at::zeros_like(weight_height, at::MemoryFormat::Contiguous);
  auto grad_weight_width = at::zeros_like(weight_width, at::MemoryFormat::Contiguous);
  if (input.numel() == 0) {
    return {grad_input, grad_weight_depth, grad_weight_height, grad_weight_width};
  }
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, input.scalar_type(), "dim_conv_backward_cpu", [&] {
    backward_kernel<scalar_t>(grad_output, input, weight_depth, weight_height, weight_width,
                              geometry, grad_input, grad_weight_depth, grad_weight_height,
                              grad_weight_width);
  });
  return {grad_input, grad_weight_depth, grad_weight_height, grad_weight_width};
}

}  // namespace mmdice

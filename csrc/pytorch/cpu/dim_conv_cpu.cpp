// Fused CPU kernels of DimConv (maths in csrc/common/dim_conv_common.h).
//
// Every branch is a sum of k*k shifted copies of some input plane, scaled by a
// scalar (depth-wise: Wd[c][tap]) or by a per-element weight that depends only
// on the row (height-wise: Wh[h][tap]) or the column (width-wise: Ww[w][tap]).
// A tap reads plane c + channel_offset shifted by (rows, columns). The banded
// form (inputs of another size than the build size) only adds taps: the t-th
// kernel of a row (column) shifts the rows (columns) by t - (B - 1) / 2, and a
// branch without kernels has no taps (its output planes are written as zeros).
//
// Each thread walks a contiguous run of (n, c) planes through a "plane
// window": L1-sized copies, in the accumulation type (bf16 is converted once
// per plane), of the planes c - radius .. c + radius that the height- and
// width-wise kernels reach. A plane is copied once per column shift its taps
// use, with the columns shifted in from outside the row zeroed, between zero
// rows above and below; channels outside [0, C) read a shared zero plane. So
// every tap is one branch-free multiply-add over the dense flat range
// [0, H * W), whose results go straight into the output, and 7x7 planes
// vectorise as well as 28x28 ones. The taps' source pointers are bound once
// per thread to window slots, so moving to the next plane costs one new
// channel's copies and a few pointer updates. Scratch planes start on 64-byte
// boundaries; the height-/width-wise weights are laid out once per call as
// dense, aligned "weight planes".
//
// Forward: parallel over (n, c) planes; each plane yields output channels 3c,
// 3c+1, 3c+2. Backward: one parallel pass over (n, c) planes computes the
// grad_input plane c as a gather (the forward taps with negated offsets, no
// atomics) together with per-chunk partial weight gradients, which are
// reduced in a fixed order at the end (deterministic for a given number of
// threads).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <vector>

#include "../dim_conv.h"

// Portable binaries: the per-thread workers are compiled for AVX-512, AVX2+FMA
// and baseline x86-64, and the loader picks the best one for the running CPU.
// Everything they call in the hot path is forced inline so that it is compiled
// for the same target. GCC's unroll-and-jam would pair up the taps of the
// gather loops and leave them scalar, so it is off for this file.
#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define DIM_CONV_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#pragma GCC optimize("no-loop-unroll-and-jam")
#else
#define DIM_CONV_CPU_CLONES
#endif
#if defined(__GNUC__)
#define DIM_CONV_INLINE inline __attribute__((always_inline))
#else
#define DIM_CONV_INLINE inline
#endif

namespace mmdice {

namespace {

// Elements produced per inner block: the partial sums of one block stay in
// registers across all taps.
constexpr int64_t kBlock = 32;
// Scratch planes start on multiples of this many elements (64 bytes or more).
constexpr int64_t kAlignElements = 16;

// Planes per thread below which splitting work costs more than it saves
// (ATen's usual grain of 32768 elements).
int64_t plane_grain(const DimConvGeometry& g) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, g.plane()));
}

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Zero-initialised scratch of `count` elements starting on a 64-byte boundary.
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t count) : storage_(count + kAlignElements, T(0)) {
    constexpr uintptr_t bytes = 64;
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = reinterpret_cast<T*>((address + bytes - 1) / bytes * bytes);
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }

 private:
  std::vector<T> storage_;
  T* data_;
};

// Flat layout of one (H, W) plane copy: dense rows and at least
// radius * dilation zero rows above and below the block-rounded range
// [0, length), so that a tap shifted by r rows reads at flat offset r * W
// without bounds checks.
struct PlaneLayout {
  int64_t width;
  int64_t plane;   // H * W: elements stored per output plane
  int64_t length;  // plane rounded up to kBlock: elements computed per plane
  int64_t origin;  // buffer index of element (0, 0)
  int64_t size;    // buffer elements

  explicit PlaneLayout(const DimConvGeometry& g)
      : width(g.width), plane(g.plane()), length(round_up(g.plane(), kBlock)) {
    // The depth- and width-wise kernels shift rows, and so does a height-wise band.
    const int64_t row_shift =
        std::max(g.radius() * std::max(g.dilation_depth, g.dilation_width),
                 DimConvGeometry::band_offset(g.band_height - 1, g.band_height));
    const int64_t pad = row_shift * g.width;
    origin = round_up(pad, kAlignElements);
    size = 2 * origin + length;
  }
};

// Tap `index` = a * k + b of one branch: reads plane c + channel_offset,
// `row_offset` elements further on (a whole number of rows), in its copy
// shifted by `column_shift` columns.
struct TapGeometry {
  int64_t channel_offset;
  int64_t row_offset;
  int64_t column_shift;
  int64_t index;
};

// The taps of each branch, indexed by kDepthBranch / kHeightBranch / kWidthBranch:
// k*k depth-wise, band_height*k*k height-wise, band_width*k*k width-wise.
struct BranchTaps {
  std::array<std::vector<TapGeometry>, kNumBranches> branches;

  explicit BranchTaps(const DimConvGeometry& g) {
    const int64_t k = g.kernel_size;
    const int64_t w = g.width;
    // Kernel axes: depth (row, column), height (channel, column), width (row, channel);
    // the t-th kernel of a height-wise (width-wise) band shifts rows (columns) too.
    for (int64_t a = 0; a < k * g.band_depth; ++a) {
      for (int64_t b = 0; b < k; ++b) {
        branches[kDepthBranch].push_back(
            {0, g.offset(a, g.dilation_depth) * w, g.offset(b, g.dilation_depth), a * k + b});
      }
    }
    for (int64_t t = 0; t < g.band_height; ++t) {
      const int64_t rows = DimConvGeometry::band_offset(t, g.band_height);
      for (int64_t a = 0; a < k; ++a) {
        for (int64_t b = 0; b < k; ++b) {
          branches[kHeightBranch].push_back({g.offset(a, g.dilation_height), rows * w,
                                             g.offset(b, g.dilation_height),
                                             (t * k + a) * k + b});
        }
      }
    }
    for (int64_t t = 0; t < g.band_width; ++t) {
      const int64_t columns = DimConvGeometry::band_offset(t, g.band_width);
      for (int64_t a = 0; a < k; ++a) {
        for (int64_t b = 0; b < k; ++b) {
          branches[kWidthBranch].push_back({g.offset(b, g.dilation_width),
                                            g.offset(a, g.dilation_width) * w, columns,
                                            (t * k + a) * k + b});
        }
      }
    }
  }

  // Largest |channel_offset| of the given branches, and their column shifts (sorted, unique).
  int64_t channel_radius(std::initializer_list<int64_t> selected) const {
    int64_t radius = 0;
    for (int64_t branch : selected) {
      for (const TapGeometry& tap : branches[branch]) {
        radius = std::max(radius, std::abs(tap.channel_offset));
      }
    }
    return radius;
  }
  std::vector<int64_t> column_shifts(std::initializer_list<int64_t> selected) const {
    std::vector<int64_t> shifts;
    for (int64_t branch : selected) {
      for (const TapGeometry& tap : branches[branch]) shifts.push_back(tap.column_shift);
    }
    std::sort(shifts.begin(), shifts.end());
    shifts.erase(std::unique(shifts.begin(), shifts.end()), shifts.end());
    return shifts;
  }
};

// dst[h * W + w] = src[h * W + w + shift] where 0 <= w + shift < W, else 0,
// converted between the tensor type and the accumulation type.
template <typename From, typename To>
DIM_CONV_INLINE void copy_shifted(const From* src, To* dst, int64_t plane, int64_t width,
                                  int64_t shift) {
  const int64_t begin = std::max<int64_t>(0, -shift);
  const int64_t end = std::min<int64_t>(plane, plane - shift);
  if constexpr (std::is_same_v<From, To>) {
    if (end > begin) std::memcpy(dst + begin, src + begin + shift, (end - begin) * sizeof(To));
  } else {
    for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<To>(src[i + shift]);
  }
  // Zero the columns shifted in from outside the row (all of them when |shift| >= W).
  const int64_t zero_begin = shift > 0 ? std::max<int64_t>(0, width - shift) : 0;
  const int64_t zero_end = shift > 0 ? width : std::min<int64_t>(width, -shift);
  for (int64_t w = zero_begin; w < zero_end; ++w) {
    for (int64_t i = w; i < plane; i += width) dst[i] = To(0);
  }
}

// Copies of planes (n, c - channel_radius .. c + channel_radius) of a tensor
// with `channels` channels, one per column shift, for the thread's current
// plane (n, c). A channel stays in its ring slot j mod (a power of two > 2 *
// channel_radius) while the window slides over it; channels outside
// [0, channels) read `zero_plane`.
template <typename scalar_t, typename T>
class PlaneWindow {
 public:
  // Plane (n, j) starts at data + (n * channels_total + j * stride + offset) * H * W.
  PlaneWindow(const scalar_t* data, int64_t channels, int64_t channels_total, int64_t stride,
              int64_t offset, int64_t channel_radius, std::vector<int64_t> column_shifts,
              const PlaneLayout& layout, const T* zero_plane)
      : data_(data),
        channels_(channels),
        channels_total_(channels_total),
        stride_(stride),
        offset_(offset),
        channel_radius_(channel_radius),
        ring_mask_(power_of_two_above(2 * channel_radius) - 1),
        column_shifts_(std::move(column_shifts)),
        layout_(layout),
        zero_plane_(zero_plane),
        buffer_((ring_mask_ + 1) * column_shifts_.size() * layout.size),
        tags_(ring_mask_ + 1, -1),
        current_((2 * channel_radius + 1) * column_shifts_.size(), zero_plane) {}

  // Slot of plane (n, c + channel_offset) shifted by `column_shift` in plane().
  int64_t slot(int64_t channel_offset, int64_t column_shift) const {
    const auto found = std::find(column_shifts_.begin(), column_shifts_.end(), column_shift);
    TORCH_INTERNAL_ASSERT(found != column_shifts_.end() &&
                          std::abs(channel_offset) <= channel_radius_);
    return (channel_offset + channel_radius_) * shifts() + (found - column_shifts_.begin());
  }

  // Element (0, 0) of the plane copy in `slot` for the current plane.
  DIM_CONV_INLINE const T* plane(int64_t slot) const { return current_[slot]; }

  // Makes (n, c) the current plane, copying the channels that enter the window.
  DIM_CONV_INLINE void move_to(int64_t n, int64_t c) {
    for (int64_t o = -channel_radius_; o <= channel_radius_; ++o) {
      const int64_t j = c + o;
      const T** current = current_.data() + (o + channel_radius_) * shifts();
      if (!in_range(j, channels_)) {
        for (int64_t s = 0; s < shifts(); ++s) current[s] = zero_plane_;
        continue;
      }
      const int64_t ring_slot = j & ring_mask_;
      T* copies = buffer_.data() + ring_slot * shifts() * layout_.size + layout_.origin;
      const int64_t tag = n * channels_ + j;
      const bool stale = tags_[ring_slot] != tag;
      tags_[ring_slot] = tag;
      const scalar_t* src = data_ + (n * channels_total_ + j * stride_ + offset_) * layout_.plane;
      for (int64_t s = 0; s < shifts(); ++s) {
        T* copy = copies + s * layout_.size;
        if (stale) copy_shifted(src, copy, layout_.plane, layout_.width, column_shifts_[s]);
        current[s] = copy;
      }
    }
  }

 private:
  static int64_t power_of_two_above(int64_t value) {
    int64_t power = 1;
    while (power <= value) power *= 2;
    return power;
  }
  int64_t shifts() const { return static_cast<int64_t>(column_shifts_.size()); }

  const scalar_t* data_;
  int64_t channels_;
  int64_t channels_total_;
  int64_t stride_;
  int64_t offset_;
  int64_t channel_radius_;
  int64_t ring_mask_;
  std::vector<int64_t> column_shifts_;
  const PlaneLayout& layout_;
  const T* zero_plane_;
  AlignedBuffer<T> buffer_;
  std::vector<int64_t> tags_;
  std::vector<const T*> current_;
};

// Flat weight planes of the height- and width-wise kernels: entry
// [tap][h * W + w] = Wh[h][tap] (resp. Ww[w][tap]), 0 past the plane.
// `transposed` gives the planes of the transposed convolution (grad_input):
// the weight of the output row (column) that reads position (h, w) through
// the tap, Wh[h - rows][tap] (Ww[w - columns][tap]), 0 where that is outside
// the plane; for unbanded kernels (no row or column shift) they are the same.
template <typename T>
class WeightPlanes {
 public:
  template <typename scalar_t>
  WeightPlanes(const scalar_t* weight_height, const scalar_t* weight_width,
               const DimConvGeometry& g, const PlaneLayout& layout, bool transposed)
      : length_(layout.length),
        height_(g.height_taps() * layout.length),
        width_(g.width_taps() * layout.length) {
    const int64_t height_taps = g.height_taps();
    for (int64_t tap = 0; tap < height_taps; ++tap) {
      const int64_t rows =
          transposed ? DimConvGeometry::band_offset(tap / g.taps(), g.band_height) : 0;
      for (int64_t h = 0; h < g.height; ++h) {
        const int64_t row = h - rows;
        const T weight = in_range(row, g.height)
                             ? static_cast<T>(weight_height[row * height_taps + tap])
                             : T(0);
        T* row_weights = height_.data() + tap * length_ + h * g.width;
        for (int64_t w = 0; w < g.width; ++w) row_weights[w] = weight;
      }
    }
    const int64_t width_taps = g.width_taps();
    for (int64_t tap = 0; tap < width_taps; ++tap) {
      const int64_t columns =
          transposed ? DimConvGeometry::band_offset(tap / g.taps(), g.band_width) : 0;
      for (int64_t w = 0; w < g.width; ++w) {
        const int64_t column = w - columns;
        const T weight = in_range(column, g.width)
                             ? static_cast<T>(weight_width[column * width_taps + tap])
                             : T(0);
        T* column_weights = width_.data() + tap * length_ + w;
        for (int64_t h = 0; h < g.height; ++h) column_weights[h * g.width] = weight;
      }
    }
  }

  // Weight plane of tap `index` of the height- or width-wise branch.
  const T* get(int64_t branch, int64_t index) const {
    return (branch == kHeightBranch ? height_ : width_).data() + index * length_;
  }

 private:
  int64_t length_;
  AlignedBuffer<T> height_;
  AlignedBuffer<T> width_;
};

// Everything the workers share that does not change between planes.
template <typename scalar_t>
struct Problem {
  using T = at::opmath_type<scalar_t>;

  const DimConvGeometry& geometry;
  const PlaneLayout layout;
  const BranchTaps taps;
  const WeightPlanes<T> weight_planes;
  const AlignedBuffer<T> zero_plane;
  const scalar_t* input;
  const scalar_t* weight_depth;

  // `backward`: the weight planes are those of the transposed convolution.
  Problem(const at::Tensor& input_tensor, const at::Tensor& weight_depth_tensor,
          const at::Tensor& weight_height, const at::Tensor& weight_width,
          const DimConvGeometry& g, bool backward)
      : geometry(g),
        layout(g),
        taps(g),
        weight_planes(weight_height.data_ptr<scalar_t>(), weight_width.data_ptr<scalar_t>(), g,
                      layout, backward),
        zero_plane(layout.size),
        input(input_tensor.data_ptr<scalar_t>()),
        weight_depth(weight_depth_tensor.data_ptr<scalar_t>()) {}

  // Element (0, 0) of an all-zero plane copy.
  const T* zeros() const { return zero_plane.data() + layout.origin; }

  // A window over the input with every channel offset and column shift a tap uses.
  PlaneWindow<scalar_t, T> input_window() const {
    const std::initializer_list<int64_t> all = {kDepthBranch, kHeightBranch, kWidthBranch};
    return PlaneWindow<scalar_t, T>(input, geometry.channels, geometry.channels, 1, 0,
                                    taps.channel_radius(all), taps.column_shifts(all), layout,
                                    zeros());
  }
};

// The terms of one plane, out[o] = sum of weight * source[o] (depth-wise
// taps) and weights[o] * source[o] (height- and width-wise taps), each bound
// to a slot of a plane window; bind() refreshes the sources after the windows
// move and takes the depth-wise weights of channel c.
template <typename scalar_t>
class TapList {
 public:
  using T = at::opmath_type<scalar_t>;
  using Window = PlaneWindow<scalar_t, T>;

  explicit TapList(const Problem<scalar_t>& problem) : problem_(problem) {}

  // Adds tap `tap` of `branch` reading `window`'s copy of channel offset
  // `channel_offset` shifted by `column_shift`, `row_offset` elements on.
  void add(int64_t branch, const TapGeometry& tap, const Window& window, int64_t channel_offset,
           int64_t column_shift, int64_t row_offset) {
    Binding binding{&window, window.slot(channel_offset, column_shift), row_offset, tap.index};
    if (branch == kDepthBranch) {
      scalar_.push_back(binding);
      scalar_sources_.push_back(nullptr);
      scalar_weights_.push_back(T(0));
    } else {
      vector_.push_back(binding);
      vector_sources_.push_back(nullptr);
      vector_weights_.push_back(problem_.weight_planes.get(branch, tap.index));
    }
  }

  DIM_CONV_INLINE void bind(int64_t c) {
    for (size_t t = 0; t < scalar_.size(); ++t) {
      scalar_sources_[t] = scalar_[t].source();
      scalar_weights_[t] = static_cast<T>(
          problem_.weight_depth[c * problem_.geometry.taps() + scalar_[t].index]);
    }
    for (size_t t = 0; t < vector_.size(); ++t) vector_sources_[t] = vector_[t].source();
  }

  // out[0:plane] = sum of the terms, converted to the output type; sources are
  // read up to the block-rounded length.
  template <typename Out>
  DIM_CONV_INLINE void gather(int64_t plane, Out* out) const {
    const int64_t scalar_count = scalar_sources_.size();
    const int64_t vector_count = vector_sources_.size();
    const T* const* scalar_sources = scalar_sources_.data();
    const T* scalar_weights = scalar_weights_.data();
    const T* const* vector_sources = vector_sources_.data();
    const T* const* vector_weights = vector_weights_.data();
    for (int64_t start = 0; start < plane; start += kBlock) {
      T acc[kBlock] = {};
      for (int64_t t = 0; t < scalar_count; ++t) {
        const T weight = scalar_weights[t];
        const T* source = scalar_sources[t] + start;
        for (int64_t j = 0; j < kBlock; ++j) acc[j] += weight * source[j];
      }
      for (int64_t t = 0; t < vector_count; ++t) {
        const T* weights = vector_weights[t] + start;
        const T* source = vector_sources[t] + start;
        for (int64_t j = 0; j < kBlock; ++j) acc[j] += weights[j] * source[j];
      }
      const int64_t count = plane - start;  // < kBlock in the last block only
      if (count >= kBlock) {
        for (int64_t j = 0; j < kBlock; ++j) out[start + j] = static_cast<Out>(acc[j]);
      } else {
        for (int64_t j = 0; j < kBlock; ++j) {
          if (j < count) out[start + j] = static_cast<Out>(acc[j]);
        }
      }
    }
  }

  // Source and kernel index of the t-th depth-wise / other term (after bind()).
  const T* scalar_source(int64_t t) const { return scalar_sources_[t]; }
  int64_t scalar_index(int64_t t) const { return scalar_[t].index; }
  int64_t scalar_count() const { return scalar_.size(); }
  const T* vector_source(int64_t t) const { return vector_sources_[t]; }
  int64_t vector_index(int64_t t) const { return vector_[t].index; }
  int64_t vector_count() const { return vector_.size(); }

 private:
  struct Binding {
    const Window* window;
    int64_t slot;
    int64_t offset;
    int64_t index;
    DIM_CONV_INLINE const T* source() const { return window->plane(slot) + offset; }
  };

  const Problem<scalar_t>& problem_;
  std::vector<Binding> scalar_;
  std::vector<const T*> scalar_sources_;
  std::vector<T> scalar_weights_;
  std::vector<Binding> vector_;
  std::vector<const T*> vector_sources_;
  std::vector<const T*> vector_weights_;
};

// lanes[j] += sum over blocks of a[start + j] * b[start + j], j < kBlock: a dot
// product whose kBlock lanes are summed only once, at the end of the
// backward; length % kBlock == 0.
template <typename T>
DIM_CONV_INLINE void dot_lanes(const T* a, const T* b, int64_t length, T* lanes) {
  T acc[kBlock] = {};
  for (int64_t start = 0; start < length; start += kBlock) {
    for (int64_t j = 0; j < kBlock; ++j) acc[j] += a[start + j] * b[start + j];
  }
  for (int64_t j = 0; j < kBlock; ++j) lanes[j] += acc[j];
}

// acc[0:length] += a[0:length] * b[0:length]; length % kBlock == 0.
template <typename T>
DIM_CONV_INLINE void multiply_accumulate(T* acc, const T* a, const T* b, int64_t length) {
  for (int64_t start = 0; start < length; start += kBlock) {
    for (int64_t j = 0; j < kBlock; ++j) acc[start + j] += a[start + j] * b[start + j];
  }
}

// Walks the (n, c) planes [begin, end) without a division per plane.
struct PlaneCursor {
  int64_t n;
  int64_t c;
  int64_t channels;
  PlaneCursor(int64_t begin, int64_t channels)
      : n(begin / channels), c(begin % channels), channels(channels) {}
  DIM_CONV_INLINE void next() {
    if (++c == channels) {
      c = 0;
      ++n;
    }
  }
};

// Forward of the (n, c) planes [begin, end).
template <typename scalar_t>
DIM_CONV_INLINE void forward_planes_impl(const Problem<scalar_t>& problem, scalar_t* output,
                                         int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  const DimConvGeometry& g = problem.geometry;
  const BranchTaps& taps = problem.taps;
  PlaneWindow<scalar_t, T> window = problem.input_window();
  std::vector<TapList<scalar_t>> lists(kNumBranches, TapList<scalar_t>(problem));
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    for (const TapGeometry& tap : taps.branches[branch]) {
      lists[branch].add(branch, tap, window, tap.channel_offset, tap.column_shift,
                        tap.row_offset);
    }
  }
  PlaneCursor cursor(begin, g.channels);
  for (int64_t plane = begin; plane < end; ++plane, cursor.next()) {
    window.move_to(cursor.n, cursor.c);
    scalar_t* out = output + plane * kNumBranches * g.plane();
    for (int64_t branch = 0; branch < kNumBranches; ++branch) {
      lists[branch].bind(cursor.c);
      lists[branch].gather(g.plane(), out + branch * g.plane());
    }
  }
}

// Per-chunk partial weight gradients: depth (C, taps, kBlock) as the lanes of
// dot products, height and width as flat (taps, length) planes of products;
// lanes, columns (height) and rows (width) are summed only once, at the end.
template <typename T>
class PartialWeightGrads {
 public:
  PartialWeightGrads(int64_t chunks, int64_t planes, const DimConvGeometry& g,
                     const PlaneLayout& layout)
      : chunk_size_((planes + chunks - 1) / chunks),
        depth_size_(g.channels * g.taps() * kBlock),
        height_size_(g.height_taps() * layout.length),
        width_size_(g.width_taps() * layout.length) {
    // One aligned buffer per chunk: threads never write to a shared cache line.
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      buffers_.push_back(
          std::make_unique<AlignedBuffer<T>>(depth_size_ + height_size_ + width_size_));
    }
  }

  int64_t chunk_size() const { return chunk_size_; }  // planes per chunk
  // (C, taps, kBlock) lanes of the depth-wise weight gradient of chunk `chunk`.
  T* depth(int64_t chunk) { return buffers_[chunk]->data(); }
  // (taps, length) products of the height- or width-wise weight gradient.
  T* flat(int64_t branch, int64_t chunk) {
    return buffers_[chunk]->data() + depth_size_ + (branch == kHeightBranch ? 0 : height_size_);
  }

 private:
  int64_t chunk_size_;
  int64_t depth_size_;
  int64_t height_size_;
  int64_t width_size_;
  std::vector<std::unique_ptr<AlignedBuffer<T>>> buffers_;
};

// Backward of the planes of chunk `chunk`: grad_input and the chunk's partial
// weight gradients, each only where `mask` asks for it.
template <typename scalar_t>
DIM_CONV_INLINE void backward_chunk_impl(const Problem<scalar_t>& problem,
                                         const scalar_t* grad_output, scalar_t* grad_input,
                                         PartialWeightGrads<at::opmath_type<scalar_t>>& partials,
                                         int64_t chunk, const DimConvGradMask& mask) {
  using T = at::opmath_type<scalar_t>;
  using Window = PlaneWindow<scalar_t, T>;
  const DimConvGeometry& g = problem.geometry;
  const BranchTaps& taps = problem.taps;
  const int64_t length = problem.layout.length;
  Window x_window = problem.input_window();

  // grad_input plane c is each branch's transposed convolution: the forward
  // taps with negated channel, row and column offsets, over the gradient
  // planes of that branch (channels 3j + branch of grad_output).
  std::vector<std::unique_ptr<Window>> grad_windows;
  TapList<scalar_t> grad_input_taps(problem);
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    std::vector<int64_t> shifts = taps.column_shifts({branch});
    for (int64_t& shift : shifts) shift = -shift;
    std::sort(shifts.begin(), shifts.end());
    grad_windows.push_back(std::make_unique<Window>(
        grad_output, g.channels, kNumBranches * g.channels, kNumBranches, branch,
        taps.channel_radius({branch}), shifts, problem.layout, problem.zeros()));
    for (const TapGeometry& tap : taps.branches[branch]) {
      grad_input_taps.add(branch, tap, *grad_windows[branch], -tap.channel_offset,
                          -tap.column_shift, -tap.row_offset);
    }
  }
  // Weight gradients: the plane's output gradient of each branch times the
  // input each of its taps read in the forward pass.
  std::vector<TapList<scalar_t>> input_taps(kNumBranches, TapList<scalar_t>(problem));
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    for (const TapGeometry& tap : taps.branches[branch]) {
      input_taps[branch].add(branch, tap, x_window, tap.channel_offset, tap.column_shift,
                             tap.row_offset);
    }
  }

  // Window slot of each branch's gradient plane c itself.
  std::array<int64_t, kNumBranches> own_grad_slots;
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    if (!taps.branches[branch].empty()) own_grad_slots[branch] = grad_windows[branch]->slot(0, 0);
  }

  T* depth_partial = partials.depth(chunk);
  const int64_t begin = chunk * partials.chunk_size();
  const int64_t end = std::min(g.batch * g.channels, begin + partials.chunk_size());
  PlaneCursor cursor(begin, g.channels);
  for (int64_t plane = begin; plane < end; ++plane, cursor.next()) {
    const int64_t n = cursor.n;
    const int64_t c = cursor.c;
    if (mask.any_weight()) x_window.move_to(n, c);
    for (auto& window : grad_windows) window->move_to(n, c);
    if (mask.input) {
      grad_input_taps.bind(c);
      grad_input_taps.gather(g.plane(), grad_input + plane * g.plane());
    }

    // The zeros past the end of the gradient copies mask the reads past the plane.
    for (int64_t branch = 0; branch < kNumBranches; ++branch) {
      if (!mask.weights[branch] || taps.branches[branch].empty()) continue;
      const T* grad = grad_windows[branch]->plane(own_grad_slots[branch]);
      TapList<scalar_t>& list = input_taps[branch];
      list.bind(c);
      for (int64_t t = 0; t < list.scalar_count(); ++t) {
        dot_lanes(grad, list.scalar_source(t), length,
                  depth_partial + (c * g.taps() + list.scalar_index(t)) * kBlock);
      }
      T* flat_partial = branch == kDepthBranch ? nullptr : partials.flat(branch, chunk);
      for (int64_t t = 0; t < list.vector_count(); ++t) {
        multiply_accumulate(flat_partial + list.vector_index(t) * length, grad,
                            list.vector_source(t), length);
      }
    }
  }
}

#define DIM_CONV_DEFINE_WORKERS(scalar_t)                                                      \
  DIM_CONV_CPU_CLONES void forward_planes(const Problem<scalar_t>& problem, scalar_t* output,  \
                                          int64_t begin, int64_t end) {                         \
    forward_planes_impl(problem, output, begin, end);                                          \
  }                                                                                             \
  DIM_CONV_CPU_CLONES void backward_chunk(                                                      \
      const Problem<scalar_t>& problem, const scalar_t* grad_output, scalar_t* grad_input,      \
      PartialWeightGrads<at::opmath_type<scalar_t>>& partials, int64_t chunk,                   \
      const DimConvGradMask& mask) {                                                            \
    backward_chunk_impl(problem, grad_output, grad_input, partials, chunk, mask);               \
  }
DIM_CONV_DEFINE_WORKERS(float)
DIM_CONV_DEFINE_WORKERS(double)
DIM_CONV_DEFINE_WORKERS(c10::BFloat16)
#undef DIM_CONV_DEFINE_WORKERS

template <typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& weight_depth,
                    const at::Tensor& weight_height, const at::Tensor& weight_width,
                    const DimConvGeometry& g, at::Tensor& output) {
  const Problem<scalar_t> problem(input, weight_depth, weight_height, weight_width, g,
                                  /*backward=*/false);
  scalar_t* y = output.data_ptr<scalar_t>();
  at::parallel_for(0, g.batch * g.channels, plane_grain(g), [&](int64_t begin, int64_t end) {
    forward_planes(problem, y, begin, end);
  });
}

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& weight_depth, const at::Tensor& weight_height,
                     const at::Tensor& weight_width, const DimConvGeometry& g,
                     const DimConvGradMask& mask, at::Tensor& grad_input,
                     at::Tensor& grad_weight_depth, at::Tensor& grad_weight_height,
                     at::Tensor& grad_weight_width) {
  using T = at::opmath_type<scalar_t>;
  const Problem<scalar_t> problem(input, weight_depth, weight_height, weight_width, g,
                                  /*backward=*/true);
  const PlaneLayout& layout = problem.layout;

  // One chunk of planes per thread, each with its own partial weight gradients.
  const int64_t planes = g.batch * g.channels;
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), planes / plane_grain(g)));
  PartialWeightGrads<T> partials(chunks, planes, g, layout);
  const scalar_t* grad_y = grad_output.data_ptr<scalar_t>();
  scalar_t* grad_x = mask.input ? grad_input.data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      backward_chunk(problem, grad_y, grad_x, partials, chunk, mask);
    }
  });
  if (!mask.any_weight()) return;

  // Deterministic reduction: chunks in order, then the columns (height) or
  // rows (width) of the flat partial planes.
  scalar_t* grad_depth_weights = grad_weight_depth.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.channels * g.depth_taps(); ++i) {
    T lanes[kBlock] = {};
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const T* partial = partials.depth(chunk) + i * kBlock;
      for (int64_t j = 0; j < kBlock; ++j) lanes[j] += partial[j];
    }
    for (int64_t half = kBlock / 2; half > 0; half /= 2) {
      for (int64_t j = 0; j < half; ++j) lanes[j] += lanes[j + half];
    }
    grad_depth_weights[i] = static_cast<scalar_t>(lanes[0]);
  }
  const int64_t height_taps = g.height_taps();
  const int64_t width_taps = g.width_taps();
  std::vector<T> height_totals(g.height * height_taps, T(0));
  std::vector<T> width_totals(g.width * width_taps, T(0));
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const T* height_partial = partials.flat(kHeightBranch, chunk);
    for (int64_t tap = 0; tap < height_taps; ++tap) {
      for (int64_t h = 0; h < g.height; ++h) {
        for (int64_t w = 0; w < g.width; ++w) {
          height_totals[h * height_taps + tap] +=
              height_partial[tap * layout.length + h * g.width + w];
        }
      }
    }
    const T* width_partial = partials.flat(kWidthBranch, chunk);
    for (int64_t tap = 0; tap < width_taps; ++tap) {
      for (int64_t h = 0; h < g.height; ++h) {
        for (int64_t w = 0; w < g.width; ++w) {
          width_totals[w * width_taps + tap] +=
              width_partial[tap * layout.length + h * g.width + w];
        }
      }
    }
  }
  scalar_t* grad_height_weights = grad_weight_height.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.height * height_taps; ++i) {
    grad_height_weights[i] = static_cast<scalar_t>(height_totals[i]);
  }
  scalar_t* grad_width_weights = grad_weight_width.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.width * width_taps; ++i) {
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
    const DimConvGeometry& geometry, const DimConvGradMask& mask) {
  const auto options = grad_output.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor grad_input, grad_weight_depth, grad_weight_height, grad_weight_width;
  std::tie(grad_input, grad_weight_depth, grad_weight_height, grad_weight_width) =
      allocate_dim_conv_grads(input, weight_depth, weight_height, weight_width, mask, options);
  if (input.numel() > 0 && (mask.input || mask.any_weight())) {
    AT_DISPATCH_FLOATING_TYPES_AND(
        at::kBFloat16, input.scalar_type(), "dim_conv_backward_cpu", [&] {
          backward_kernel<scalar_t>(grad_output, input, weight_depth, weight_height,
                                    weight_width, geometry, mask, grad_input, grad_weight_depth,
                                    grad_weight_height, grad_weight_width);
        });
  }
  return {grad_input, mask.weights[kDepthBranch] ? grad_weight_depth : at::Tensor(),
          mask.weights[kHeightBranch] ? grad_weight_height : at::Tensor(),
          mask.weights[kWidthBranch] ? grad_weight_width : at::Tensor()};
}

}  // namespace mmdice

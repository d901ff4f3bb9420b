// Taps and tap lists of the fused CPU kernels of DimConv: which shifted plane
// copies each branch reads, with which weights (see dim_conv_cpu_plane_window.h).
#pragma once

#include "dim_conv_cpu_plane_window.h"

namespace mmdice {
namespace dim_conv_cpu {

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
    fill_branch(height_.data(), weight_height, g.band_height, g.height, g, transposed,
                [&](T* plane, int64_t h, T weight) {
                  T* row_weights = plane + h * g.width;
                  for (int64_t w = 0; w < g.width; ++w) row_weights[w] = weight;
                });
    fill_branch(width_.data(), weight_width, g.band_width, g.width, g, transposed,
                [&](T* plane, int64_t w, T weight) {
                  T* column_weights = plane + w;
                  for (int64_t h = 0; h < g.height; ++h) column_weights[h * g.width] = weight;
                });
  }

  // Weight plane of tap `index` of the height- or width-wise branch.
  const T* get(int64_t branch, int64_t index) const {
    return (branch == kHeightBranch ? height_ : width_).data() + index * length_;
  }

 private:
  // Fills the planes of one branch whose weights are (positions, band * k * k):
  // tap `tap` of position i (an output row for the height-wise branch, a
  // column for the width-wise one) takes weights[(i - shift) * taps + tap],
  // shift the tap's band offset when `transposed`, else 0; fill(plane, i,
  // weight) writes it to position i of the tap's plane.
  template <typename scalar_t, typename Fill>
  void fill_branch(T* planes, const scalar_t* weights, int64_t band, int64_t positions,
                   const DimConvGeometry& g, bool transposed, const Fill& fill) {
    const int64_t taps = band * g.taps();
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t shift = transposed ? DimConvGeometry::band_offset(tap / g.taps(), band) : 0;
      for (int64_t i = 0; i < positions; ++i) {
        const int64_t source = i - shift;
        const T weight =
            in_range(source, positions) ? static_cast<T>(weights[source * taps + tap]) : T(0);
        fill(planes + tap * length_, i, weight);
      }
    }
  }

  int64_t length_;
  AlignedBuffer<T> height_;
  AlignedBuffer<T> width_;
};

// Everything the workers share that does not change between planes.
template <typename scalar_t>
struct Problem {
  using T = accumulate_t<scalar_t>;

  const DimConvGeometry& geometry;
  const PlaneLayout layout;
  const BranchTaps taps;
  const WeightPlanes<T> weight_planes;
  const AlignedBuffer<T> zero_plane;
  const scalar_t* input;
  const scalar_t* weight_depth;

  // Dense NCHW input and DimConv weights as in dim_conv_common.h; `backward`:
  // the weight planes are those of the transposed convolution.
  Problem(const scalar_t* input_data, const scalar_t* weight_depth_data,
          const scalar_t* weight_height, const scalar_t* weight_width,
          const DimConvGeometry& g, bool backward)
      : geometry(g),
        layout(g),
        taps(g),
        weight_planes(weight_height, weight_width, g, layout, backward),
        zero_plane(layout.size),
        input(input_data),
        weight_depth(weight_depth_data) {}

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
  using T = accumulate_t<scalar_t>;
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

  MMDICE_INLINE void bind(int64_t c) {
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
  MMDICE_INLINE void gather(int64_t plane, Out* out) const {
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
    MMDICE_INLINE const T* source() const { return window->plane(slot) + offset; }
  };

  const Problem<scalar_t>& problem_;
  std::vector<Binding> scalar_;
  std::vector<const T*> scalar_sources_;
  std::vector<T> scalar_weights_;
  std::vector<Binding> vector_;
  std::vector<const T*> vector_sources_;
  std::vector<const T*> vector_weights_;
};

}  // namespace dim_conv_cpu
}  // namespace mmdice

// Plane windows of the fused CPU kernels of DimConv (maths in
// csrc/common/dim_conv_common.h); included by csrc/pytorch/cpu/dim_conv_cpu.cpp
// (forward), dim_conv_backward_cpu.cpp and the OpenVINO op (csrc/openvino),
// with the tap lists of dim_conv_cpu_taps.h. Free of ATen: the element type
// scalar_t accumulates in accumulate_t<scalar_t> (cpu_kernel_utils.h).
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
// GCC's unroll-and-jam would pair up the taps of the gather loops and leave
// them scalar, so it is off in every file that includes this header (after
// the headers included here, as in a single file).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "../dim_conv_common.h"
#include "cpu_kernel_utils.h"

#if MMDICE_CPU_MULTIVERSIONED
#pragma GCC optimize("no-loop-unroll-and-jam")
#endif

namespace mmdice {
namespace dim_conv_cpu {

// Elements produced per inner block: the partial sums of one block stay in
// registers across all taps.
constexpr int64_t kBlock = 32;
// Scratch planes start on multiples of this many elements (64 bytes or more).
constexpr int64_t kAlignElements = 16;

inline int64_t round_up(int64_t value, int64_t multiple) {
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

// dst[h * W + w] = src[h * W + w + shift] where 0 <= w + shift < W, else 0,
// converted between the tensor type and the accumulation type.
template <typename From, typename To>
MMDICE_INLINE void copy_shifted(const From* src, To* dst, int64_t plane, int64_t width,
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
    if (found == column_shifts_.end() || std::abs(channel_offset) > channel_radius_) {
      throw std::logic_error("PlaneWindow::slot: no copy of this channel offset and shift");
    }
    return (channel_offset + channel_radius_) * shifts() + (found - column_shifts_.begin());
  }

  // Element (0, 0) of the plane copy in `slot` for the current plane.
  MMDICE_INLINE const T* plane(int64_t slot) const { return current_[slot]; }

  // Makes (n, c) the current plane, copying the channels that enter the window.
  MMDICE_INLINE void move_to(int64_t n, int64_t c) {
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

// Walks the (n, c) planes [begin, end) without a division per plane.
struct PlaneCursor {
  int64_t n;
  int64_t c;
  int64_t channels;
  PlaneCursor(int64_t begin, int64_t channels)
      : n(begin / channels), c(begin % channels), channels(channels) {}
  MMDICE_INLINE void next() {
    if (++c == channels) {
      c = 0;
      ++n;
    }
  }
};

}  // namespace dim_conv_cpu
}  // namespace mmdice

// Row kernel of a DiCE block's end: channel_shuffle(cat(left, act(branch) * gate), 2)
// for one pixel of channels-last tensors, shared by mmdice::shuffle_gated_concat
// (csrc/pytorch/cpu) and the OpenVINO node ShuffleGatedConcat (csrc/openvino).
//
// The shuffled pixel has 2C channels: channel 2k is left[k], channel 2k + 1 is
// act(branch[k]) * gate[k], act a PReLU with `slope` (nullptr: identity; a
// nullptr gate is 1). Its
// first `first_channels` channels go to `first`, the others to `second`, so that
// the two halves a following channel split takes are written in place.
// Halves of unequal width (left L, branch R channels, L + R = 2C) go through
// shuffle_unequal_pixel: channel 2k is cat(left, branch * gate)[k], channel
// 2k + 1 its [C + k].
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu_kernel_utils.h"

namespace mmdice {
namespace shuffle_gated_concat_kernel {

// Pairs [begin_pair, end_pair) of the shuffled pixel: channels 2k and 2k + 1
// stored at out[2k - offset] and out[2k + 1 - offset].
template <typename scalar_t>
MMDICE_INLINE void store_pairs(const scalar_t* left, const scalar_t* branch,
                               const scalar_t* slope, const scalar_t* gate, int64_t begin_pair,
                               int64_t end_pair, scalar_t* out, int64_t offset) {
  using T = accumulate_t<scalar_t>;
  if (slope == nullptr && gate == nullptr) {
#pragma omp simd
    for (int64_t k = begin_pair; k < end_pair; ++k) {
      out[2 * k - offset] = left[k];
      out[2 * k + 1 - offset] = branch[k];
    }
    return;
  }
  if (slope == nullptr) {
#pragma omp simd
    for (int64_t k = begin_pair; k < end_pair; ++k) {
      out[2 * k - offset] = left[k];
      out[2 * k + 1 - offset] =
          static_cast<scalar_t>(static_cast<T>(branch[k]) * static_cast<T>(gate[k]));
    }
    return;
  }
#pragma omp simd
  for (int64_t k = begin_pair; k < end_pair; ++k) {
    const T v = static_cast<T>(branch[k]);
    const T activated = v > T(0) ? v : static_cast<T>(slope[k]) * v;
    out[2 * k - offset] = left[k];
    out[2 * k + 1 - offset] = static_cast<scalar_t>(activated * static_cast<T>(gate[k]));
  }
}

// One pixel: `channels` (C) values of left, branch, slope (or nullptr) and
// gate -> 2C shuffled values, channels [0, first_channels) at `first`, the rest
// at `second` (pass second = first + first_channels for one contiguous row).
template <typename scalar_t>
MMDICE_INLINE void shuffle_gated_concat_pixel(const scalar_t* left, const scalar_t* branch,
                                              const scalar_t* slope, const scalar_t* gate,
                                              int64_t channels, int64_t first_channels,
                                              scalar_t* first, scalar_t* second) {
  // Pairs (2k, 2k + 1) wholly in the first part, the one pair a split at an odd
  // channel cuts, and the pairs wholly in the second part.
  const int64_t first_pairs = first_channels / 2;
  store_pairs(left, branch, slope, gate, 0, first_pairs, first, 0);
  int64_t next_pair = first_pairs;
  if (first_channels % 2 && first_pairs < channels) {
    scalar_t pair[2];
    store_pairs(left, branch, slope, gate, first_pairs, first_pairs + 1, pair,
                2 * first_pairs);
    first[first_channels - 1] = pair[0];
    second[0] = pair[1];
    ++next_pair;
  }
  store_pairs(left, branch, slope, gate, next_pair, channels, second, first_channels);
}

// One pixel of halves of unequal width, as the OpenVINO node computes it (no
// PReLU: the plugin fuses it into the branch's convolution): left_channels (L)
// values of left, branch_channels (R) of branch and gate (R values, or nullptr
// for 1) -> the L + R shuffled values (L + R even), split at first_channels as
// in shuffle_gated_concat_pixel. `staging` holds L + R values: the
// concatenated pixel is assembled there, then shuffled.
template <typename scalar_t>
MMDICE_INLINE void shuffle_unequal_pixel(const scalar_t* left, int64_t left_channels,
                                         const scalar_t* branch, int64_t branch_channels,
                                         const scalar_t* gate, int64_t first_channels,
                                         scalar_t* first, scalar_t* second, scalar_t* staging) {
  using T = accumulate_t<scalar_t>;
  std::copy(left, left + left_channels, staging);
  scalar_t* gated = staging + left_channels;
  if (gate == nullptr) {
    std::copy(branch, branch + branch_channels, gated);
  } else {
#pragma omp simd
    for (int64_t k = 0; k < branch_channels; ++k) {
      gated[k] = static_cast<scalar_t>(static_cast<T>(branch[k]) * static_cast<T>(gate[k]));
    }
  }
  const int64_t half = (left_channels + branch_channels) / 2;
  shuffle_gated_concat_pixel<scalar_t>(staging, staging + half, nullptr, nullptr, half,
                                       first_channels, first, second);
}

}  // namespace shuffle_gated_concat_kernel
}  // namespace mmdice

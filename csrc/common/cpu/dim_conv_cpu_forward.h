// Forward loop of the fused CPU kernel of DimConv (the design is in
// dim_conv_cpu_plane_window.h), shared by the PyTorch kernel
// (csrc/pytorch/cpu/dim_conv_cpu.cpp), the fused DiCE op's plane loop
// (dice_fuse_cpu_planes.h) and the OpenVINO ops (csrc/openvino).
#pragma once

#include <vector>

#include "dim_conv_cpu_taps.h"

namespace mmdice {
namespace dim_conv_cpu {

// The tap lists of the three branches, bound to `window` (a problem's input_window()).
template <typename scalar_t>
std::vector<TapList<scalar_t>> forward_tap_lists(
    const Problem<scalar_t>& problem, const PlaneWindow<scalar_t, accumulate_t<scalar_t>>& window) {
  std::vector<TapList<scalar_t>> lists(kNumBranches, TapList<scalar_t>(problem));
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    for (const TapGeometry& tap : problem.taps.branches[branch]) {
      lists[branch].add(branch, tap, window, tap.channel_offset, tap.column_shift,
                        tap.row_offset);
    }
  }
  return lists;
}

// The three DimConv planes of channel c (the window's current plane) into
// out[0 : 3 * H * W], branch-major.
template <typename scalar_t, typename Out>
MMDICE_INLINE void forward_plane(std::vector<TapList<scalar_t>>& lists, int64_t c,
                                 int64_t plane, Out* out) {
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    lists[branch].bind(c);
    lists[branch].gather(plane, out + branch * plane);
  }
}

// Forward of the (n, c) planes [begin, end) into the (N, 3C, H, W) `output`.
template <typename scalar_t>
MMDICE_INLINE void forward_planes_impl(const Problem<scalar_t>& problem, scalar_t* output,
                                       int64_t begin, int64_t end) {
  const DimConvGeometry& g = problem.geometry;
  auto window = problem.input_window();
  auto lists = forward_tap_lists(problem, window);
  PlaneCursor cursor(begin, g.channels);
  for (int64_t plane = begin; plane < end; ++plane, cursor.next()) {
    window.move_to(cursor.n, cursor.c);
    forward_plane(lists, cursor.c, g.plane(), output + plane * kNumBranches * g.plane());
  }
}

}  // namespace dim_conv_cpu
}  // namespace mmdice

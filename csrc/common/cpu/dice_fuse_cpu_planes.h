// Plane loop of the fused DiCE op on dense NCHW data (maths in
// csrc/common/dice_fuse_common.h): the DimConv forward loop and the epilogue
// of the PyTorch kernels, one plane at a time (the OpenVINO op,
// csrc/openvino/dice_fuse_op.cpp).
#pragma once

#include <cstdint>

#include "dice_fuse_cpu_epilogue.h"
#include "dim_conv_cpu_forward.h"

namespace mmdice {

// The fused op on the (n, c) planes [begin, end) of the problem's input: each
// plane's three DimConv planes go to `scratch` (3 * H * W elements, rounded
// to scalar_t as in the DimConv output), the epilogue writes output plane
// (n, c) of the (N, C, H, W) `output`.
template <typename scalar_t>
MMDICE_INLINE void dice_fuse_planes_impl(const dim_conv_cpu::Problem<scalar_t>& problem,
                                         const DiceFuseParams<accumulate_t<scalar_t>>& params,
                                         scalar_t* scratch, scalar_t* output, int64_t begin,
                                         int64_t end) {
  const DimConvGeometry& g = problem.geometry;
  const int64_t plane = g.plane();
  auto window = problem.input_window();
  auto lists = dim_conv_cpu::forward_tap_lists(problem, window);
  dim_conv_cpu::PlaneCursor cursor(begin, g.channels);
  for (int64_t index = begin; index < end; ++index, cursor.next()) {
    window.move_to(cursor.n, cursor.c);
    dim_conv_cpu::forward_plane(lists, cursor.c, plane, scratch);
    fuse_plane_impl(scratch + kDepthBranch * plane, scratch + kHeightBranch * plane,
                    scratch + kWidthBranch * plane, plane,
                    DiceFuseChannel<accumulate_t<scalar_t>>(params, cursor.c),
                    output + index * plane);
  }
}

}  // namespace mmdice

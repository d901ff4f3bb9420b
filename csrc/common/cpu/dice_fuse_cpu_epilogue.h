// Epilogue loop of the fused DiCE op (maths in csrc/common/dice_fuse_common.h),
// shared by the PyTorch kernel (csrc/pytorch/cpu/dice_fuse_cpu.cpp) and the
// plane loop of dice_fuse_cpu_planes.h.
#pragma once

#include <cstdint>

#include "../dice_fuse_common.h"
#include "cpu_kernel_utils.h"

namespace mmdice {

// out[i] = channel(depth[i], height[i], width[i]) for i < plane.
template <typename scalar_t>
MMDICE_INLINE void fuse_plane_impl(const scalar_t* depth, const scalar_t* height,
                                   const scalar_t* width, int64_t plane,
                                   const DiceFuseChannel<accumulate_t<scalar_t>>& channel,
                                   scalar_t* out) {
  using T = accumulate_t<scalar_t>;
  for (int64_t i = 0; i < plane; ++i) {
    out[i] = static_cast<scalar_t>(
        channel(static_cast<T>(depth[i]), static_cast<T>(height[i]), static_cast<T>(width[i])));
  }
}

}  // namespace mmdice

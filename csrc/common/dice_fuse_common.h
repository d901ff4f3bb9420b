// Maths of the fused DiCE op (DimConv -> per-branch affine + PReLU -> 3->1
// weighted sum -> PReLU), shared by the CPU and CUDA kernels.
//
// For channel c with DimConv branch outputs y_g (g = depth, height, width;
// csrc/common/dim_conv_common.h) the fused output is
//   z_g = prelu(branch_scale[c][g] * y_g + branch_bias[c][g], branch_slope[c][g])
//   out = prelu(sum_g fuse_weight[c][g] * z_g + fuse_bias[c], out_slope[c])
// with prelu(v, a) = v if v > 0 else a * v. This is the deploy form of a DiCE
// unit's DimConv + BN + PReLU over 3C + grouped 1x1 "local fusion" (3 -> 1 per
// channel) + BN + PReLU, every BatchNorm folded into the affine terms.
#pragma once

#include <cstdint>

#include "dim_conv_common.h"

namespace mmdice {

// Per-channel parameters in the accumulation type T: (C, 3) arrays for the
// branch terms (index c * 3 + g), (C) arrays for the output terms.
template <typename T>
struct DiceFuseParams {
  const T* branch_scale;
  const T* branch_bias;
  const T* branch_slope;
  const T* fuse_weight;
  const T* fuse_bias;
  const T* out_slope;
};

// prelu(v, a) = v if v > 0 else a * v, written as max(v, 0) + a * min(v, 0)
// (exact: one of the two terms is zero) so that compilers vectorise loops over
// it: a multiply under a condition is not if-converted under the default
// -ftrapping-math.
template <typename T>
DIM_CONV_HOST_DEVICE inline T dice_fuse_prelu(T value, T slope) {
  const T positive = value > T(0) ? value : T(0);
  const T negative = value < T(0) ? value : T(0);
  return positive + slope * negative;
}

// The coefficients of one channel, loaded once per plane.
template <typename T>
struct DiceFuseChannel {
  T scale[kNumBranches];
  T bias[kNumBranches];
  T slope[kNumBranches];
  T weight[kNumBranches];
  T fuse_bias;
  T out_slope;

  DIM_CONV_HOST_DEVICE DiceFuseChannel(const DiceFuseParams<T>& p, int64_t c) {
    for (int64_t g = 0; g < kNumBranches; ++g) {
      scale[g] = p.branch_scale[c * kNumBranches + g];
      bias[g] = p.branch_bias[c * kNumBranches + g];
      slope[g] = p.branch_slope[c * kNumBranches + g];
      weight[g] = p.fuse_weight[c * kNumBranches + g];
    }
    fuse_bias = p.fuse_bias[c];
    out_slope = p.out_slope[c];
  }

  // Fused output from the depth-, height- and width-wise DimConv values.
  DIM_CONV_HOST_DEVICE T operator()(T depth, T height, T width) const {
    const T branches[kNumBranches] = {depth, height, width};
    T sum = fuse_bias;
    for (int64_t g = 0; g < kNumBranches; ++g) {
      sum += weight[g] * dice_fuse_prelu(scale[g] * branches[g] + bias[g], slope[g]);
    }
    return dice_fuse_prelu(sum, out_slope);
  }
};

}  // namespace mmdice

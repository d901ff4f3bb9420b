// Device entry points of the fused DiCE op (maths in csrc/common/dice_fuse_common.h).
// Inputs reach them already validated and contiguous: NCHW, or for the input
// of dice_fuse_forward_cpu also channels-last.
#pragma once

#include <torch/types.h>

#include "../common/dice_fuse_common.h"
#include "dim_conv.h"

namespace mmdice {

// The per-channel coefficients: branch_scale, branch_bias, branch_slope and
// fuse_weight of shape (C, 3), fuse_bias and out_slope of shape (C), all of
// the input's dtype.
struct DiceFuseTensors {
  at::Tensor branch_scale;
  at::Tensor branch_bias;
  at::Tensor branch_slope;
  at::Tensor fuse_weight;
  at::Tensor fuse_bias;
  at::Tensor out_slope;
};

// DimConv of `input` (N, C, H, W) fused with the epilogue: (N, C, H, W),
// channels-last if `channels_last_output`, else NCHW.
at::Tensor dice_fuse_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                 const at::Tensor& weight_height, const at::Tensor& weight_width,
                                 const DimConvGeometry& geometry, const DiceFuseTensors& params,
                                 bool channels_last_output);

// The epilogue alone on a DimConv output (N, 3C, H, W): (N, C, H, W).
at::Tensor dice_fuse_epilogue_cpu(const at::Tensor& dim_output, const DiceFuseTensors& params);

}  // namespace mmdice

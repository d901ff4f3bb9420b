// Device entry points of the fused DimConv op (see csrc/common/dim_conv_common.h
// for the maths). Inputs reach them already validated and NCHW-contiguous.
#pragma once

#include <torch/types.h>

#include <array>
#include <tuple>

#include "../common/dim_conv_common.h"

namespace mmdice {

// Which gradients a backward call computes, as aten's convolution_backward
// output_mask: the input's and each branch's weight (indexed by kDepthBranch,
// kHeightBranch, kWidthBranch). Gradients left out are returned undefined.
struct DimConvGradMask {
  bool input;
  std::array<bool, kNumBranches> weights;

  bool any_weight() const { return weights[0] || weights[1] || weights[2]; }
};

// The gradient tensors a backward call fills, (grad_input, grad_weight_depth,
// grad_weight_height, grad_weight_width): grad_input uninitialised when the mask
// asks for it; the three weight gradients zero-filled when any is asked for
// (they come out of one reduction and are tiny); the others undefined.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_dim_conv_grads(
    const at::Tensor& input, const at::Tensor& weight_depth, const at::Tensor& weight_height,
    const at::Tensor& weight_width, const DimConvGradMask& mask,
    const at::TensorOptions& options) {
  at::Tensor grad_input, grad_weight_depth, grad_weight_height, grad_weight_width;
  if (mask.input) grad_input = at::empty(input.sizes(), options);
  if (mask.any_weight()) {
    grad_weight_depth = at::zeros(weight_depth.sizes(), options);
    grad_weight_height = at::zeros(weight_height.sizes(), options);
    grad_weight_width = at::zeros(weight_width.sizes(), options);
  }
  return {grad_input, grad_weight_depth, grad_weight_height, grad_weight_width};
}

// Builds the geometry from validated tensors; `dilation` is (depth, height, width).
DimConvGeometry make_dim_conv_geometry(const at::Tensor& input, const at::Tensor& weight_depth,
                                       const at::Tensor& weight_height,
                                       const at::Tensor& weight_width, at::IntArrayRef dilation);

at::Tensor dim_conv_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                const at::Tensor& weight_height, const at::Tensor& weight_width,
                                const DimConvGeometry& geometry);

// Returns (grad_input, grad_weight_depth, grad_weight_height, grad_weight_width),
// those not in `mask` undefined; `input` is read only when a weight gradient is.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry, const DimConvGradMask& mask);

#ifdef WITH_CUDA
at::Tensor dim_conv_forward_cuda(const at::Tensor& input, const at::Tensor& weight_depth,
                                 const at::Tensor& weight_height, const at::Tensor& weight_width,
                                 const DimConvGeometry& geometry);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry, const DimConvGradMask& mask);
#endif

}  // namespace mmdice

// The fused DimConv op (maths in csrc/common/dim_conv_common.h): its input
// contract, shared by every op that runs DimConv, and its device kernels, which
// get their inputs validated and NCHW-contiguous.
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

// The weights an op accepts: kAny for dim_conv (a branch may hold 0 kernels,
// the height- and width-wise ones a band of any odd number), kPlain for ops
// that take the plain DimConv only (1 kernel per channel, row and column).
enum class DimConvWeightForm { kAny, kPlain };

// The shape contract of DimConv's tensors, for every op that runs DimConv:
// input (N, C, H, W); dilation three positive ints; weight_depth (C, Bd, k, k),
// weight_height (H, Bh, k, k), weight_width (W, Bw, k, k) with odd k, of the
// input's dtype and device, kernels per row as `form` allows and at least one
// branch with kernels. Raises (TORCH_CHECK) with messages prefixed by `op`.
void check_dim_conv_inputs(const char* op, const at::Tensor& input,
                           const at::Tensor& weight_depth, const at::Tensor& weight_height,
                           const at::Tensor& weight_width, at::IntArrayRef dilation,
                           DimConvWeightForm form);

// Builds the geometry from validated tensors; `dilation` is (depth, height, width).
DimConvGeometry make_dim_conv_geometry(const at::Tensor& input, const at::Tensor& weight_depth,
                                       const at::Tensor& weight_height,
                                       const at::Tensor& weight_width, at::IntArrayRef dilation);

// The device kernels, one per device (dim_conv_forward_cpu, ..._cuda):
// DimConv of `input`, an (N, 3C, H, W) NCHW output.
using DimConvForwardKernel = at::Tensor(const at::Tensor& input, const at::Tensor& weight_depth,
                                        const at::Tensor& weight_height,
                                        const at::Tensor& weight_width,
                                        const DimConvGeometry& geometry);

// Returns (grad_input, grad_weight_depth, grad_weight_height, grad_weight_width),
// those not in `mask` undefined; `input` is read only when a weight gradient is.
using DimConvBackwardKernel = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry, const DimConvGradMask& mask);

DimConvForwardKernel dim_conv_forward_cpu;
DimConvBackwardKernel dim_conv_backward_cpu;
#ifdef WITH_CUDA
DimConvForwardKernel dim_conv_forward_cuda;
DimConvBackwardKernel dim_conv_backward_cuda;
#endif

}  // namespace mmdice

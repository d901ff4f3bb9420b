// Device entry points of the fused DimConv op (see csrc/common/dim_conv_common.h
// for the maths). Inputs reach them already validated and NCHW-contiguous.
#pragma once

#include <torch/types.h>

#include <tuple>

#include "../common/dim_conv_common.h"

namespace mmdice {

// Builds the geometry from validated tensors; `dilation` is (depth, height, width).
DimConvGeometry make_dim_conv_geometry(const at::Tensor& input, const at::Tensor& weight_depth,
                                       const at::Tensor& weight_height,
                                       const at::Tensor& weight_width, at::IntArrayRef dilation);

at::Tensor dim_conv_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                const at::Tensor& weight_height, const at::Tensor& weight_width,
                                const DimConvGeometry& geometry);

// Returns (grad_input, grad_weight_depth, grad_weight_height, grad_weight_width).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry);

#ifdef WITH_CUDA
at::Tensor dim_conv_forward_cuda(const at::Tensor& input, const at::Tensor& weight_depth,
                                 const at::Tensor& weight_height, const at::Tensor& weight_width,
                                 const DimConvGeometry& geometry);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry);
#endif

}  // namespace mmdice

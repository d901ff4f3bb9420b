// Device entry points of the fused BatchNorm + PReLU op. Inputs reach them
// validated: `input` / `grad_output` NCHW-contiguous (N, C, H, W), the
// per-channel tensors contiguous (C) of the input's dtype.
#pragma once

#include <torch/types.h>

#include <tuple>

namespace mmdice {

// Per-channel batch mean and biased variance of `input`, accumulated in double.
std::tuple<at::Tensor, at::Tensor> batch_norm_stats_cpu(const at::Tensor& input);

// prelu((input - mean) / sqrt(var + eps) * weight + bias, slope), channel-wise.
at::Tensor batch_norm_prelu_forward_cpu(const at::Tensor& input, const at::Tensor& weight,
                                        const at::Tensor& bias, const at::Tensor& slope,
                                        const at::Tensor& mean, const at::Tensor& var,
                                        double eps);

// (grad_input, grad_weight, grad_bias, grad_slope); grad_input undefined unless
// `input_grad`. `batch_stats`: mean and var are the statistics of `input`
// itself (training), so grad_input includes their gradient.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_prelu_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& slope, const at::Tensor& mean,
    const at::Tensor& var, double eps, bool batch_stats, bool input_grad);

}  // namespace mmdice

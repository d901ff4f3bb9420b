// Registration of the fused BatchNorm + PReLU ops in the `mmdice` library.
//
//   mmdice::batch_norm_prelu(input, weight, bias, slope, mean?, var?, eps)
//       -> (output, mean, var): output = prelu(batch_norm(input), slope) over
//       the channels of an (N, C, H, W) input; with mean and var left out the
//       batch statistics (biased variance) are computed and returned, otherwise
//       the given ones are used (and returned as copies).
//   mmdice::batch_norm_prelu_backward(grad_output, input, weight, bias, slope, mean, var,
//                                     eps, batch_stats, input_grad)
//       -> (grad_input?, grad_weight, grad_bias, grad_slope)
//
// The fake kernels and autograd are registered from Python (mmdice/ops/batch_norm_prelu.py).
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <utility>

#include "batch_norm_prelu.h"

namespace mmdice {

namespace {

void check_input(const at::Tensor& input, const char* name) {
  TORCH_CHECK(input.dim() == 4, "mmdice::batch_norm_prelu: ", name,
              " must be (N, C, H, W), got ", input.sizes());
  TORCH_CHECK(input.numel() > 0, "mmdice::batch_norm_prelu: ", name, " must not be empty");
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "mmdice::batch_norm_prelu: ", name, " must be float32 or float64, got ",
              input.scalar_type());
}

void check_channel_params(const at::Tensor& input,
                          std::initializer_list<std::pair<const at::Tensor*, const char*>> params) {
  for (const auto& [tensor, name] : params) {
    TORCH_CHECK(tensor->dim() == 1 && tensor->size(0) == input.size(1),
                "mmdice::batch_norm_prelu: ", name, " must have shape (", input.size(1),
                "), got ", tensor->sizes());
    TORCH_CHECK(tensor->scalar_type() == input.scalar_type() &&
                    tensor->device() == input.device(),
                "mmdice::batch_norm_prelu: ", name, " must have the input's dtype ",
                input.scalar_type(), " and device ", input.device(), ", got ",
                tensor->scalar_type(), " on ", tensor->device());
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_prelu_cpu(
    const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& slope, const std::optional<at::Tensor>& mean,
    const std::optional<at::Tensor>& var, double eps) {
  check_input(input, "input");
  TORCH_CHECK(mean.has_value() == var.has_value(),
              "mmdice::batch_norm_prelu: give both mean and var, or neither");
  TORCH_CHECK(eps > 0, "mmdice::batch_norm_prelu: eps must be positive, got ", eps);
  check_channel_params(input, {{&weight, "weight"}, {&bias, "bias"}, {&slope, "slope"}});
  at::Tensor batch_mean, batch_var;
  if (mean.has_value()) {
    check_channel_params(input, {{&*mean, "mean"}, {&*var, "var"}});
    batch_mean = mean->contiguous().clone();
    batch_var = var->contiguous().clone();
  } else {
    std::tie(batch_mean, batch_var) = batch_norm_stats_cpu(input.contiguous());
  }
  at::Tensor output =
      batch_norm_prelu_forward_cpu(input.contiguous(), weight.contiguous(), bias.contiguous(),
                                   slope.contiguous(), batch_mean, batch_var, eps);
  return {output, batch_mean, batch_var};
}

std::tuple<std::optional<at::Tensor>, at::Tensor, at::Tensor, at::Tensor>
batch_norm_prelu_backward_cpu_impl(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& slope, const at::Tensor& mean,
    const at::Tensor& var, double eps, bool batch_stats, bool input_grad) {
  check_input(input, "input");
  TORCH_CHECK(grad_output.sizes() == input.sizes(),
              "mmdice::batch_norm_prelu_backward: grad_output must have the input's shape ",
              input.sizes(), ", got ", grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() &&
                  grad_output.device() == input.device(),
              "mmdice::batch_norm_prelu_backward: grad_output must have the input's dtype ",
              input.scalar_type(), " and device ", input.device(), ", got ",
              grad_output.scalar_type(), " on ", grad_output.device());
  check_channel_params(input, {{&weight, "weight"}, {&bias, "bias"}, {&slope, "slope"},
                               {&mean, "mean"}, {&var, "var"}});
  auto [grad_input, grad_weight, grad_bias, grad_slope] = batch_norm_prelu_backward_cpu(
      grad_output.contiguous(), input.contiguous(), weight.contiguous(), bias.contiguous(),
      slope.contiguous(), mean.contiguous(), var.contiguous(), eps, batch_stats, input_grad);
  return {grad_input.defined() ? std::optional<at::Tensor>(grad_input) : std::nullopt,
          grad_weight, grad_bias, grad_slope};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mmdice, m) {
  m.def(
      "batch_norm_prelu(Tensor input, Tensor weight, Tensor bias, Tensor slope, Tensor? mean, "
      "Tensor? var, float eps) -> (Tensor, Tensor, Tensor)");
  m.def(
      "batch_norm_prelu_backward(Tensor grad_output, Tensor input, Tensor weight, Tensor bias, "
      "Tensor slope, Tensor mean, Tensor var, float eps, bool batch_stats, bool input_grad) "
      "-> (Tensor?, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("batch_norm_prelu", &batch_norm_prelu_cpu);
  m.impl("batch_norm_prelu_backward", &batch_norm_prelu_backward_cpu_impl);
}

}  // namespace mmdice

// Registration of the fused DiCE ops in the `mmdice` library. dice_fuse takes
// the plain DimConv weights (check_dim_conv_inputs, dim_conv_register.cpp).
//
//   mmdice::dice_fuse(input, weight_depth, weight_height, weight_width, dilation,
//                     branch_scale, branch_bias, branch_slope, fuse_weight, fuse_bias,
//                     out_slope, channels_last) -> output (N, C, H, W), channels-last
//                     if channels_last (the input may be NCHW or channels-last either way)
//   mmdice::dice_fuse_epilogue(dim_output, branch_scale, branch_bias, branch_slope,
//                              fuse_weight, fuse_bias, out_slope) -> output (N, C, H, W)
//
// The fake kernels (torch.compile) are registered from Python (mmdice/ops/dice_fuse.py).
#include <torch/library.h>

#include <utility>

#include "dice_fuse.h"

namespace mmdice {

namespace {

void check_params(const DiceFuseTensors& p, int64_t channels, const at::Tensor& input) {
  const std::pair<const at::Tensor*, const char*> branch[] = {
      {&p.branch_scale, "branch_scale"}, {&p.branch_bias, "branch_bias"},
      {&p.branch_slope, "branch_slope"}, {&p.fuse_weight, "fuse_weight"}};
  for (const auto& [tensor, name] : branch) {
    TORCH_CHECK(tensor->dim() == 2 && tensor->size(0) == channels &&
                    tensor->size(1) == kNumBranches,
                "mmdice::dice_fuse: ", name, " must have shape (", channels, ", 3), got ",
                tensor->sizes());
  }
  const std::pair<const at::Tensor*, const char*> channel[] = {{&p.fuse_bias, "fuse_bias"},
                                                               {&p.out_slope, "out_slope"}};
  for (const auto& [tensor, name] : channel) {
    TORCH_CHECK(tensor->dim() == 1 && tensor->size(0) == channels, "mmdice::dice_fuse: ", name,
                " must have shape (", channels, "), got ", tensor->sizes());
  }
  for (const at::Tensor* tensor : {&p.branch_scale, &p.branch_bias, &p.branch_slope,
                                   &p.fuse_weight, &p.fuse_bias, &p.out_slope}) {
    TORCH_CHECK(tensor->scalar_type() == input.scalar_type() &&
                    tensor->device() == input.device(),
                "mmdice::dice_fuse: coefficients must have the input's dtype ",
                input.scalar_type(), " and device ", input.device(), ", got ",
                tensor->scalar_type(), " on ", tensor->device());
  }
}

DiceFuseTensors contiguous_params(const at::Tensor& branch_scale, const at::Tensor& branch_bias,
                                  const at::Tensor& branch_slope, const at::Tensor& fuse_weight,
                                  const at::Tensor& fuse_bias, const at::Tensor& out_slope) {
  return {branch_scale.contiguous(), branch_bias.contiguous(), branch_slope.contiguous(),
          fuse_weight.contiguous(),  fuse_bias.contiguous(),   out_slope.contiguous()};
}

at::Tensor dice_fuse_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                         const at::Tensor& weight_height, const at::Tensor& weight_width,
                         at::IntArrayRef dilation, const at::Tensor& branch_scale,
                         const at::Tensor& branch_bias, const at::Tensor& branch_slope,
                         const at::Tensor& fuse_weight, const at::Tensor& fuse_bias,
                         const at::Tensor& out_slope, bool channels_last) {
  check_dim_conv_inputs("mmdice::dice_fuse", input, weight_depth, weight_height, weight_width,
                        dilation, DimConvWeightForm::kPlain);
  const DiceFuseTensors params = contiguous_params(branch_scale, branch_bias, branch_slope,
                                                   fuse_weight, fuse_bias, out_slope);
  check_params(params, input.size(1), input);
  const auto geometry =
      make_dim_conv_geometry(input, weight_depth, weight_height, weight_width, dilation);
  const bool channels_last_input = !input.is_contiguous() &&
                                   input.is_contiguous(at::MemoryFormat::ChannelsLast);
  return dice_fuse_forward_cpu(channels_last_input ? input : input.contiguous(),
                               weight_depth.contiguous(), weight_height.contiguous(),
                               weight_width.contiguous(), geometry, params, channels_last);
}

at::Tensor dice_fuse_epilogue_cpu_impl(const at::Tensor& dim_output,
                                       const at::Tensor& branch_scale,
                                       const at::Tensor& branch_bias,
                                       const at::Tensor& branch_slope,
                                       const at::Tensor& fuse_weight, const at::Tensor& fuse_bias,
                                       const at::Tensor& out_slope) {
  TORCH_CHECK(dim_output.dim() == 4 && dim_output.size(1) % kNumBranches == 0,
              "mmdice::dice_fuse_epilogue: dim_output must be (N, 3C, H, W), got ",
              dim_output.sizes());
  const DiceFuseTensors params = contiguous_params(branch_scale, branch_bias, branch_slope,
                                                   fuse_weight, fuse_bias, out_slope);
  check_params(params, dim_output.size(1) / kNumBranches, dim_output);
  return dice_fuse_epilogue_cpu(dim_output.contiguous(), params);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mmdice, m) {
  m.def(
      "dice_fuse(Tensor input, Tensor weight_depth, Tensor weight_height, Tensor weight_width, "
      "int[] dilation, Tensor branch_scale, Tensor branch_bias, Tensor branch_slope, "
      "Tensor fuse_weight, Tensor fuse_bias, Tensor out_slope, bool channels_last) -> Tensor");
  m.def(
      "dice_fuse_epilogue(Tensor dim_output, Tensor branch_scale, Tensor branch_bias, "
      "Tensor branch_slope, Tensor fuse_weight, Tensor fuse_bias, Tensor out_slope) -> Tensor");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("dice_fuse", &dice_fuse_cpu);
  m.impl("dice_fuse_epilogue", &dice_fuse_epilogue_cpu_impl);
}

}  // namespace mmdice

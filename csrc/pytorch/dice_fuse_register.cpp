// Registration of the fused DiCE ops in the `mmdice` library (a fragment, so
// that it lives beside register.cpp without touching it).
//
//   mmdice::dice_fuse(input, weight_depth, weight_height, weight_width, dilation,
//                     branch_scale, branch_bias, branch_slope, fuse_weight, fuse_bias,
//                     out_slope, channels_last) -> output (N, C, H, W), channels-last
//                     if channels_last (the input may be NCHW or channels-last either way)
//   mmdice::dice_fuse_epilogue(dim_output, branch_scale, branch_bias, branch_slope,
//                              fuse_weight, fuse_bias, out_slope) -> output (N, C, H, W)
//   mmdice::shuffle_gated_concat(left, branch, slope, gate) -> output (N, 2C, H, W),
//                     channels-last: channel_shuffle(cat(left, prelu(branch, slope) * gate), 2)
//                     for channels-last left and branch (N, C, H, W), gate (N, C)
//
// The fake kernels (torch.compile) are registered from Python (mmdice/ops/dice_fuse.py).
#include <torch/library.h>

#include <tuple>
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
  TORCH_CHECK(input.dim() == 4, "mmdice::dice_fuse: input must be (N, C, H, W), got ",
              input.sizes());
  TORCH_CHECK(dilation.size() == 3 && dilation[0] >= 1 && dilation[1] >= 1 && dilation[2] >= 1,
              "mmdice::dice_fuse: dilation must be three positive ints, got ", dilation);
  for (const auto& [weight, name, rows] :
       {std::tuple<const at::Tensor*, const char*, int64_t>{&weight_depth, "weight_depth",
                                                            input.size(1)},
        {&weight_height, "weight_height", input.size(2)},
        {&weight_width, "weight_width", input.size(3)}}) {
    TORCH_CHECK(weight->dim() == 4 && weight->size(0) == rows && weight->size(1) == 1 &&
                    weight->size(2) == weight_depth.size(2) &&
                    weight->size(3) == weight_depth.size(2) && weight_depth.size(2) % 2 == 1,
                "mmdice::dice_fuse: ", name, " must have shape (", rows,
                ", 1, k, k) with the odd k of weight_depth, got ", weight->sizes());
    TORCH_CHECK(weight->scalar_type() == input.scalar_type() &&
                    weight->device() == input.device(),
                "mmdice::dice_fuse: ", name, " must have the input's dtype and device");
  }
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

at::Tensor shuffle_gated_concat_cpu_impl(const at::Tensor& left, const at::Tensor& branch,
                                         const at::Tensor& slope, const at::Tensor& gate) {
  TORCH_CHECK(left.dim() == 4 && left.sizes() == branch.sizes(),
              "mmdice::shuffle_gated_concat: left and branch must be (N, C, H, W) of one shape, "
              "got ", left.sizes(), " and ", branch.sizes());
  TORCH_CHECK(left.stride(1) == 1 && branch.stride(1) == 1,
              "mmdice::shuffle_gated_concat: left and branch must be channels-last (channel "
              "stride 1), got strides ", left.strides(), " and ", branch.strides());
  TORCH_CHECK(left.scalar_type() == at::kFloat || left.scalar_type() == at::kDouble,
              "mmdice::shuffle_gated_concat: left must be float32 or float64, got ",
              left.scalar_type());
  const int64_t batch = left.size(0), channels = left.size(1);
  const std::pair<const at::Tensor*, const char*> tensors[] = {
      {&branch, "branch"}, {&slope, "slope"}, {&gate, "gate"}};
  for (const auto& [tensor, name] : tensors) {
    TORCH_CHECK(tensor->scalar_type() == left.scalar_type() && tensor->device() == left.device(),
                "mmdice::shuffle_gated_concat: ", name, " must have left's dtype and device");
  }
  TORCH_CHECK(slope.dim() == 1 && slope.size(0) == channels,
              "mmdice::shuffle_gated_concat: slope must have shape (", channels, "), got ",
              slope.sizes());
  TORCH_CHECK(gate.numel() == batch * channels && gate.size(0) == batch,
              "mmdice::shuffle_gated_concat: gate must have shape (", batch, ", ", channels,
              ") (or (N, C, 1, 1)), got ", gate.sizes());
  return shuffle_gated_concat_cpu(left, branch, slope.contiguous(),
                                  gate.reshape({batch, channels}).contiguous());
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
  m.def("shuffle_gated_concat(Tensor left, Tensor branch, Tensor slope, Tensor gate) -> Tensor");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("dice_fuse", &dice_fuse_cpu);
  m.impl("dice_fuse_epilogue", &dice_fuse_epilogue_cpu_impl);
  m.impl("shuffle_gated_concat", &shuffle_gated_concat_cpu_impl);
}

}  // namespace mmdice

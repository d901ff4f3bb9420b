// The fused DiCE op as an OpenVINO operation, "DiCEFuse" of opset "mmdice":
// the deploy form of a DiCE unit's DimConv + BN + PReLU + local fusion + BN +
// PReLU, the same maths and inputs as torch.ops.mmdice.dice_fuse
// (csrc/common/dice_fuse_common.h), run by the CPU loops of csrc/common/cpu.
//
// Inputs (all f32, or all bf16 with f32 accumulation): x (N, C, H, W), or
// (N, H, W, C) with layout "NHWC"; weight_depth (C, 1, k, k), weight_height
// (H, Bh, k, k), weight_width (W, Bw, k, k) with odd k, Bh and Bw (Bh = Bw =
// 1 at the build size, bands of kernels at other sizes as in
// csrc/common/dim_conv_common.h); branch_scale,
// branch_bias, branch_slope, fuse_weight (C, 3); fuse_bias, out_slope (C).
// Attributes: dilation, three positive ints (depth, height, width); layout,
// "NCHW" (default) or "NHWC", of x and the output; with_mean, 0 (default) or 1;
// input_pool, 0 (default) or 1: the unit runs on avg_pool2d(x, 3, stride 2,
// padding 1) (padding counted), pooled as the rows are read, so H and W above
// are x's pooled size ((size - 1) / 2 + 1; the row kernel only: k = 3 or 5 at
// the build size).
// Outputs: y, x's shape (pooled with input_pool = 1) and type; with with_mean
// = 1 also y's means over (H, W), (N, C) (the SE gate's pooling, computed as y
// is written).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "float_inputs_op.hpp"

namespace mmdice {
namespace openvino {

class DiCEFuse : public FloatInputsOp {
 public:
  OPENVINO_OP("DiCEFuse", "mmdice");

  DiCEFuse() = default;
  DiCEFuse(const ov::OutputVector& inputs, std::vector<int64_t> dilation,
           std::string layout = "NCHW", int64_t with_mean = 0, int64_t input_pool = 0);

  void validate_and_infer_types() override;
  std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& inputs) const override;
  bool visit_attributes(ov::AttributeVisitor& visitor) override;
  bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;

 private:
  std::vector<int64_t> dilation_{1, 1, 1};
  std::string layout_ = "NCHW";
  int64_t with_mean_ = 0;
  int64_t input_pool_ = 0;
};

}  // namespace openvino
}  // namespace mmdice

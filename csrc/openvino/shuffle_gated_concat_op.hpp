// A DiCE block's end as an OpenVINO operation, "ShuffleGatedConcat" of opset
// "mmdice": channel_shuffle(cat(left, branch * gate), 2), optionally split
// into its two channel halves, in one pass over channels-last tensors (the
// maths of torch.ops.mmdice.shuffle_gated_concat without its PReLU, which the
// CPU plugin fuses into the convolution that produces `branch`).
//
// Inputs (f32, or bf16 computed in f32): left (N, H, W, L) and branch
// (N, H, W, R) with L + R = 2C even (usually L = R = C; a block that widens
// its input has L < R), and optionally gate (N, R) or (N, R, 1, 1) (without
// it: cat(left, branch)).
// Attribute: num_outputs, 1 (one (N, H, W, 2C) output) or 2 (its channels
// [0, C) and [C, 2C) as two (N, H, W, C) outputs: the halves the next
// ShuffleNet block splits).
#pragma once

#include <cstdint>

#include "float_inputs_op.hpp"

namespace mmdice {
namespace openvino {

class ShuffleGatedConcat : public FloatInputsOp {
 public:
  OPENVINO_OP("ShuffleGatedConcat", "mmdice");

  ShuffleGatedConcat() = default;
  ShuffleGatedConcat(const ov::OutputVector& inputs, int64_t outputs);

  void validate_and_infer_types() override;
  std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& inputs) const override;
  bool visit_attributes(ov::AttributeVisitor& visitor) override;
  bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;

 private:
  int64_t outputs_ = 1;
};

}  // namespace openvino
}  // namespace mmdice

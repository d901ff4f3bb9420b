// What the mmdice OpenVINO operations share: every input of one element type,
// f32 or bf16 (bf16 computed in f32), and an evaluate() for those two types.
#pragma once

#include <openvino/op/op.hpp>

#include <cstddef>

namespace mmdice {
namespace openvino {

// Whether evaluate() runs on inputs of `type`.
inline bool is_evaluated_type(const ov::element::Type& type) {
  return type == ov::element::f32 || type == ov::element::bf16;
}

class FloatInputsOp : public ov::op::Op {
 public:
  using ov::op::Op::Op;

  bool has_evaluate() const override { return is_evaluated_type(get_input_element_type(0)); }

 protected:
  // Node validation of the element types: input 0 f32, bf16 or dynamic, every
  // other input of its type; `input_names[i]` names input i in the messages.
  void validate_input_types(const char* const input_names[]) {
    const ov::element::Type type = get_input_element_type(0);
    NODE_VALIDATION_CHECK(this, type.is_dynamic() || is_evaluated_type(type), get_type_name(),
                          ": ", input_names[0], " must be f32 or bf16, got ", type);
    for (size_t i = 1; i < get_input_size(); ++i) {
      NODE_VALIDATION_CHECK(this, get_input_element_type(i) == type, get_type_name(), ": ",
                            input_names[i], " must have ", input_names[0],
                            "'s element type ", type, ", got ", get_input_element_type(i));
    }
  }
};

}  // namespace openvino
}  // namespace mmdice

// ShuffleGatedConcat (shuffle_gated_concat_op.hpp): shape inference and the CPU
// evaluate(), the row kernel of csrc/common/cpu/shuffle_gated_concat_cpu.h on
// OpenVINO's threads.
#include "shuffle_gated_concat_op.hpp"

#include <openvino/core/parallel.hpp>
#include <openvino/core/type/bfloat16.hpp>

#include <algorithm>
#include <vector>

#include "../common/cpu/cpu_kernel_utils.h"
#include "openvino_accumulate.hpp"
#include "../common/cpu/shuffle_gated_concat_cpu.h"

namespace mmdice {
namespace openvino {

namespace {

// Channel widths of one ShuffleGatedConcat: left L, branch R (the gate's
// width), the first output's (the whole L + R when there is one output).
struct Widths {
  int64_t left, branch, first;
  int64_t total() const { return left + branch; }
};

// Pixels [begin, end) of left and branch -> the shuffled pixels split into
// `first` and `second` (rows of widths.first and total - first values).
template <typename scalar_t>
MMDICE_INLINE void shuffle_pixels_impl(const scalar_t* left, const scalar_t* branch,
                                       const scalar_t* gate, int64_t pixels_per_image,
                                       Widths widths, scalar_t* first, scalar_t* second,
                                       int64_t begin, int64_t end) {
  const int64_t second_channels = widths.total() - widths.first;
  if (widths.left == widths.branch) {
    for (int64_t pixel = begin; pixel < end; ++pixel) {
      shuffle_gated_concat_kernel::shuffle_gated_concat_pixel<scalar_t>(
          left + pixel * widths.left, branch + pixel * widths.branch, nullptr,
          gate == nullptr ? nullptr : gate + (pixel / pixels_per_image) * widths.branch,
          widths.left, widths.first, first + pixel * widths.first,
          second + pixel * second_channels);
    }
    return;
  }
  std::vector<scalar_t> staging(widths.total());
  for (int64_t pixel = begin; pixel < end; ++pixel) {
    shuffle_gated_concat_kernel::shuffle_unequal_pixel<scalar_t>(
        left + pixel * widths.left, widths.left, branch + pixel * widths.branch, widths.branch,
        gate == nullptr ? nullptr : gate + (pixel / pixels_per_image) * widths.branch,
        widths.first, first + pixel * widths.first, second + pixel * second_channels,
        staging.data());
  }
}

MMDICE_CPU_CLONES void shuffle_pixels(const float* left, const float* branch, const float* gate,
                                      int64_t pixels_per_image, Widths widths, float* first,
                                      float* second, int64_t begin, int64_t end) {
  shuffle_pixels_impl(left, branch, gate, pixels_per_image, widths, first, second, begin, end);
}

MMDICE_CPU_CLONES void shuffle_pixels(const ov::bfloat16* left, const ov::bfloat16* branch,
                                      const ov::bfloat16* gate, int64_t pixels_per_image,
                                      Widths widths, ov::bfloat16* first, ov::bfloat16* second,
                                      int64_t begin, int64_t end) {
  shuffle_pixels_impl(left, branch, gate, pixels_per_image, widths, first, second, begin, end);
}

template <typename scalar_t>
void evaluate_typed(ov::TensorVector& outputs, const ov::TensorVector& inputs,
                    const ov::Shape& shape, const Widths& widths, int64_t split) {
  const int64_t pixels_per_image = static_cast<int64_t>(shape[1] * shape[2]);
  const int64_t pixels = static_cast<int64_t>(shape[0]) * pixels_per_image;
  const scalar_t* left = inputs[0].data<const scalar_t>();
  const scalar_t* branch = inputs[1].data<const scalar_t>();
  const scalar_t* gate = inputs.size() > 2 ? inputs[2].data<const scalar_t>() : nullptr;
  scalar_t* first = outputs[0].data<scalar_t>();
  scalar_t* second = split == 2 ? outputs[1].data<scalar_t>() : first;
  const int64_t grain = parallel_grain(widths.total());
  const int workers = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(parallel_get_max_threads(), pixels / grain)));
  ov::parallel_nt(workers, [&](int thread, int count) {
    const int64_t begin = pixels * thread / count;
    const int64_t end = pixels * (thread + 1) / count;
    if (begin < end) {
      shuffle_pixels(left, branch, gate, pixels_per_image, widths, first, second, begin, end);
    }
  });
}

}  // namespace

ShuffleGatedConcat::ShuffleGatedConcat(const ov::OutputVector& inputs, int64_t outputs)
    : FloatInputsOp(inputs), outputs_(outputs) {
  constructor_validate_and_infer_types();
}

void ShuffleGatedConcat::validate_and_infer_types() {
  const size_t inputs = get_input_size();
  NODE_VALIDATION_CHECK(this, inputs == 2 || inputs == 3,
                        "ShuffleGatedConcat takes 2 or 3 inputs (left, branch[, gate]), got ",
                        inputs);
  NODE_VALIDATION_CHECK(this, outputs_ == 1 || outputs_ == 2,
                        "ShuffleGatedConcat: num_outputs must be 1 or 2, got ", outputs_);
  const char* const names[] = {"left", "branch", "gate"};
  validate_input_types(names);
  const ov::element::Type type = get_input_element_type(0);
  const ov::PartialShape& left = get_input_partial_shape(0);
  const ov::PartialShape& branch = get_input_partial_shape(1);
  bool same_pixels = left.rank().compatible(4) && branch.rank().compatible(4);
  if (same_pixels && left.rank().is_static() && branch.rank().is_static()) {
    for (size_t axis = 0; axis < 3; ++axis) {
      same_pixels = same_pixels && left[axis].compatible(branch[axis]);
    }
  }
  NODE_VALIDATION_CHECK(this, same_pixels,
                        "ShuffleGatedConcat: left and branch must be (N, H, W, L) and (N, H, W, "
                        "R) of one N, H, W, got ", left, " and ", branch);
  if (inputs == 3) {
    const ov::Rank gate_rank = get_input_partial_shape(2).rank();
    NODE_VALIDATION_CHECK(this, gate_rank.compatible(2) || gate_rank.compatible(4),
                          "ShuffleGatedConcat: gate must be (N, C) or (N, C, 1, 1), got ",
                          get_input_partial_shape(2));
  }
  if (left.rank().is_dynamic() || branch.rank().is_dynamic()) {
    for (int64_t i = 0; i < outputs_; ++i) set_output_type(i, type, ov::PartialShape::dynamic());
    return;
  }
  const ov::Dimension total = left[3] + branch[3];
  NODE_VALIDATION_CHECK(this, total.is_dynamic() || total.get_length() % 2 == 0,
                        "ShuffleGatedConcat: left and branch channels must add up to an even "
                        "number (the shuffle takes two groups), got ", left[3], " + ", branch[3]);
  ov::PartialShape joined = left;
  if (outputs_ == 2) {
    joined[3] = total.is_static() ? ov::Dimension(total.get_length() / 2) : ov::Dimension();
    set_output_type(0, type, joined);
    set_output_type(1, type, joined);
    return;
  }
  joined[3] = total;
  set_output_type(0, type, joined);
}

std::shared_ptr<ov::Node> ShuffleGatedConcat::clone_with_new_inputs(
    const ov::OutputVector& inputs) const {
  return std::make_shared<ShuffleGatedConcat>(inputs, outputs_);
}

bool ShuffleGatedConcat::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("num_outputs", outputs_);
  return true;
}

bool ShuffleGatedConcat::evaluate(ov::TensorVector& outputs,
                                  const ov::TensorVector& inputs) const {
  const ov::element::Type type = inputs[0].get_element_type();
  if (!is_evaluated_type(type)) return false;
  const ov::Shape& shape = inputs[0].get_shape();
  const ov::Shape& branch = inputs[1].get_shape();
  OPENVINO_ASSERT(shape.size() == 4 && branch.size() == 4 && branch[0] == shape[0] &&
                      branch[1] == shape[1] && branch[2] == shape[2] &&
                      (shape[3] + branch[3]) % 2 == 0,
                  "ShuffleGatedConcat: left and branch must be (N, H, W, L) and (N, H, W, R) "
                  "with L + R even, got ", shape, " and ", branch);
  OPENVINO_ASSERT(inputs.size() < 3 || inputs[2].get_size() == shape[0] * branch[3],
                  "ShuffleGatedConcat: gate must hold N * R = ", shape[0] * branch[3],
                  " values, got shape ", inputs[2].get_shape());
  const int64_t total = static_cast<int64_t>(shape[3] + branch[3]);
  const Widths widths{static_cast<int64_t>(shape[3]), static_cast<int64_t>(branch[3]),
                      outputs_ == 2 ? total / 2 : total};
  ov::Shape joined = shape;
  joined[3] = static_cast<size_t>(widths.first);
  for (int64_t i = 0; i < outputs_; ++i) outputs[i].set_shape(joined);
  if (shape[0] * shape[1] * shape[2] == 0) return true;
  if (type == ov::element::f32) {
    evaluate_typed<float>(outputs, inputs, shape, widths, outputs_);
  } else {
    evaluate_typed<ov::bfloat16>(outputs, inputs, shape, widths, outputs_);
  }
  return true;
}

}  // namespace openvino
}  // namespace mmdice

// ShuffleGatedConcat (shuffle_gated_concat_op.hpp): shape inference and the CPU
// evaluate(), the row kernel of csrc/common/cpu/shuffle_gated_concat_cpu.h on
// OpenVINO's threads.
#include "shuffle_gated_concat_op.hpp"

#include <openvino/core/parallel.hpp>
#include <openvino/core/type/bfloat16.hpp>

#include <algorithm>

#include "../common/cpu/cpu_kernel_utils.h"
#include "openvino_accumulate.hpp"
#include "../common/cpu/shuffle_gated_concat_cpu.h"

namespace mmdice {
namespace openvino {

namespace {

// Pixels [begin, end), each `channels` values of left and branch -> the shuffled
// pixel split at `first_channels` into `first` and `second` (rows of
// first_channels and 2C - first_channels values).
template <typename scalar_t>
MMDICE_INLINE void shuffle_pixels_impl(const scalar_t* left, const scalar_t* branch,
                                       const scalar_t* gate, int64_t pixels_per_image,
                                       int64_t channels, int64_t first_channels,
                                       scalar_t* first, scalar_t* second, int64_t begin,
                                       int64_t end) {
  const int64_t second_channels = 2 * channels - first_channels;
  for (int64_t pixel = begin; pixel < end; ++pixel) {
    shuffle_gated_concat_kernel::shuffle_gated_concat_pixel<scalar_t>(
        left + pixel * channels, branch + pixel * channels, nullptr,
        gate == nullptr ? nullptr : gate + (pixel / pixels_per_image) * channels, channels,
        first_channels,
        first + pixel * first_channels, second + pixel * second_channels);
  }
}

MMDICE_CPU_CLONES void shuffle_pixels(const float* left, const float* branch, const float* gate,
                                      int64_t pixels_per_image, int64_t channels,
                                      int64_t first_channels, float* first, float* second,
                                      int64_t begin, int64_t end) {
  shuffle_pixels_impl(left, branch, gate, pixels_per_image, channels, first_channels, first,
                      second, begin, end);
}

MMDICE_CPU_CLONES void shuffle_pixels(const ov::bfloat16* left, const ov::bfloat16* branch,
                                      const ov::bfloat16* gate, int64_t pixels_per_image,
                                      int64_t channels, int64_t first_channels,
                                      ov::bfloat16* first, ov::bfloat16* second, int64_t begin,
                                      int64_t end) {
  shuffle_pixels_impl(left, branch, gate, pixels_per_image, channels, first_channels, first,
                      second, begin, end);
}

template <typename scalar_t>
void evaluate_typed(ov::TensorVector& outputs, const ov::TensorVector& inputs,
                    const ov::Shape& shape, int64_t split) {
  const int64_t channels = static_cast<int64_t>(shape[3]);
  const int64_t pixels_per_image = static_cast<int64_t>(shape[1] * shape[2]);
  const int64_t pixels = static_cast<int64_t>(shape[0]) * pixels_per_image;
  const scalar_t* left = inputs[0].data<const scalar_t>();
  const scalar_t* branch = inputs[1].data<const scalar_t>();
  const scalar_t* gate = inputs.size() > 2 ? inputs[2].data<const scalar_t>() : nullptr;
  const int64_t first_channels = split == 2 ? channels : 2 * channels;
  scalar_t* first = outputs[0].data<scalar_t>();
  scalar_t* second = split == 2 ? outputs[1].data<scalar_t>() : first;
  const int64_t grain = parallel_grain(2 * channels);
  const int workers = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(parallel_get_max_threads(), pixels / grain)));
  ov::parallel_nt(workers, [&](int thread, int count) {
    const int64_t begin = pixels * thread / count;
    const int64_t end = pixels * (thread + 1) / count;
    if (begin < end) {
      shuffle_pixels(left, branch, gate, pixels_per_image, channels, first_channels, first,
                     second, begin, end);
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
  NODE_VALIDATION_CHECK(this, left.rank().compatible(4) && left.compatible(branch),
                        "ShuffleGatedConcat: left and branch must be (N, H, W, C) of one shape, "
                        "got ", left, " and ", branch);
  if (inputs == 3) {
    const ov::Rank gate_rank = get_input_partial_shape(2).rank();
    NODE_VALIDATION_CHECK(this, gate_rank.compatible(2) || gate_rank.compatible(4),
                          "ShuffleGatedConcat: gate must be (N, C) or (N, C, 1, 1), got ",
                          get_input_partial_shape(2));
  }
  if (left.rank().is_dynamic()) {
    for (int64_t i = 0; i < outputs_; ++i) set_output_type(i, type, ov::PartialShape::dynamic());
    return;
  }
  if (outputs_ == 2) {
    set_output_type(0, type, left);
    set_output_type(1, type, left);
    return;
  }
  ov::PartialShape joined = left;
  joined[3] = left[3] * 2;
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
  OPENVINO_ASSERT(shape.size() == 4 && inputs[1].get_shape() == shape,
                  "ShuffleGatedConcat: left and branch must be (N, H, W, C) of one shape, got ",
                  shape, " and ", inputs[1].get_shape());
  OPENVINO_ASSERT(inputs.size() < 3 || inputs[2].get_size() == shape[0] * shape[3],
                  "ShuffleGatedConcat: gate must hold N * C = ", shape[0] * shape[3],
                  " values, got shape ", inputs[2].get_shape());
  if (outputs_ == 2) {
    outputs[0].set_shape(shape);
    outputs[1].set_shape(shape);
  } else {
    outputs[0].set_shape({shape[0], shape[1], shape[2], 2 * shape[3]});
  }
  if (ov::shape_size(shape) == 0) return true;
  if (type == ov::element::f32) {
    evaluate_typed<float>(outputs, inputs, shape, outputs_);
  } else {
    evaluate_typed<ov::bfloat16>(outputs, inputs, shape, outputs_);
  }
  return true;
}

}  // namespace openvino
}  // namespace mmdice

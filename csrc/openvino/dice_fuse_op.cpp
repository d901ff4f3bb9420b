// DiCEFuse (dice_fuse_op.hpp): shape inference and the CPU evaluate(), the
// plane loop of csrc/common/cpu/dice_fuse_cpu_planes.h parallel over the
// (n, c) planes on OpenVINO's own threads (ov::parallel_nt, TBB), so that it
// shares the CPU plugin's thread pool instead of competing with it.
#include "dice_fuse_op.hpp"

#include <openvino/core/parallel.hpp>

#include <algorithm>
#include <utility>
#include <vector>

#include "../common/cpu/dice_fuse_cpu_planes.h"

namespace mmdice {
namespace openvino {

namespace {

constexpr size_t kNumInputs = 10;
const char* const kInputNames[kNumInputs] = {
    "x",           "weight_depth", "weight_height", "weight_width", "branch_scale",
    "branch_bias", "branch_slope", "fuse_weight",   "fuse_bias",    "out_slope"};

// The (n, c) planes [begin, end) of the fused op; one worker per target (cpu_kernel_utils.h).
MMDICE_CPU_CLONES void dice_fuse_planes(const dim_conv_cpu::Problem<float>& problem,
                                        const DiceFuseParams<float>& params, float* scratch,
                                        float* output, int64_t begin, int64_t end) {
  dice_fuse_planes_impl(problem, params, scratch, output, begin, end);
}

}  // namespace

DiCEFuse::DiCEFuse(const ov::OutputVector& inputs, std::vector<int64_t> dilation)
    : ov::op::Op(inputs), dilation_(std::move(dilation)) {
  constructor_validate_and_infer_types();
}

void DiCEFuse::validate_and_infer_types() {
  NODE_VALIDATION_CHECK(this, get_input_size() == kNumInputs, "DiCEFuse takes ", kNumInputs,
                        " inputs (x, three DimConv weights, six coefficients), got ",
                        get_input_size());
  NODE_VALIDATION_CHECK(this,
                        dilation_.size() == 3 &&
                            std::all_of(dilation_.begin(), dilation_.end(),
                                        [](int64_t d) { return d > 0; }),
                        "DiCEFuse: dilation must be three positive ints, got ", dilation_.size(),
                        " values");
  const ov::element::Type type = get_input_element_type(0);
  for (size_t i = 1; i < kNumInputs; ++i) {
    NODE_VALIDATION_CHECK(this, get_input_element_type(i) == type, "DiCEFuse: ",
                          kInputNames[i], " must have x's element type ", type, ", got ",
                          get_input_element_type(i));
  }
  const ov::PartialShape& x = get_input_partial_shape(0);
  NODE_VALIDATION_CHECK(this, x.rank().compatible(4), "DiCEFuse: x must be (N, C, H, W), got ",
                        x);
  const size_t expected_rank[kNumInputs] = {4, 4, 4, 4, 2, 2, 2, 2, 1, 1};
  for (size_t i = 1; i < kNumInputs; ++i) {
    NODE_VALIDATION_CHECK(this, get_input_partial_shape(i).rank().compatible(expected_rank[i]),
                          "DiCEFuse: ", kInputNames[i], " must have rank ", expected_rank[i],
                          ", got ", get_input_partial_shape(i));
  }
  set_output_type(0, type, x);
}

std::shared_ptr<ov::Node> DiCEFuse::clone_with_new_inputs(const ov::OutputVector& inputs) const {
  return std::make_shared<DiCEFuse>(inputs, dilation_);
}

bool DiCEFuse::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("dilation", dilation_);
  return true;
}

bool DiCEFuse::has_evaluate() const { return get_input_element_type(0) == ov::element::f32; }

bool DiCEFuse::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
  if (inputs[0].get_element_type() != ov::element::f32) return false;
  const ov::Shape& x = inputs[0].get_shape();
  const ov::Shape& weight_depth = inputs[1].get_shape();
  const ov::Shape& weight_height = inputs[2].get_shape();
  const ov::Shape& weight_width = inputs[3].get_shape();
  const auto odd = [](size_t value) { return value % 2 == 1; };
  const bool weights_fit =
      x.size() == 4 && weight_depth.size() == 4 && weight_depth[0] == x[1] &&
      weight_depth[1] == 1 && weight_depth[2] == weight_depth[3] && odd(weight_depth[3]) &&
      weight_height.size() == 4 && weight_height[0] == x[2] && odd(weight_height[1]) &&
      weight_width.size() == 4 && weight_width[0] == x[3] && odd(weight_width[1]) &&
      weight_height[2] == weight_depth[2] && weight_height[3] == weight_depth[3] &&
      weight_width[2] == weight_depth[2] && weight_width[3] == weight_depth[3];
  OPENVINO_ASSERT(weights_fit, "DiCEFuse: x (N, C, H, W) ", x,
                  " needs weight_depth (C, 1, k, k), weight_height (H, Bh, k, k) and weight_width "
                  "(W, Bw, k, k) with odd k, Bh and Bw, got ",
                  weight_depth, ", ", weight_height, ", ", weight_width);
  const int64_t channels = static_cast<int64_t>(x[1]);
  const int64_t kernel_size = static_cast<int64_t>(weight_depth[3]);
  for (size_t i = 4; i < kNumInputs; ++i) {
    const ov::Shape expected =
        i < 8 ? ov::Shape({x[1], static_cast<size_t>(kNumBranches)}) : ov::Shape({x[1]});
    OPENVINO_ASSERT(inputs[i].get_shape() == expected, "DiCEFuse: ", kInputNames[i],
                    " must have shape ", expected, ", got ", inputs[i].get_shape());
  }
  outputs[0].set_shape(x);
  DimConvGeometry geometry{static_cast<int64_t>(x[0]), channels,
                           static_cast<int64_t>(x[2]), static_cast<int64_t>(x[3]),
                           kernel_size,  dilation_[0],
                           dilation_[1], dilation_[2],
                           static_cast<int64_t>(weight_height[1]),
                           static_cast<int64_t>(weight_width[1])};
  const int64_t planes = geometry.batch * channels;
  if (planes == 0 || geometry.plane() == 0) return true;
  const dim_conv_cpu::Problem<float> problem(
      inputs[0].data<const float>(), inputs[1].data<const float>(), inputs[2].data<const float>(),
      inputs[3].data<const float>(), geometry, /*backward=*/false);
  const DiceFuseParams<float> params{inputs[4].data<const float>(), inputs[5].data<const float>(),
                                     inputs[6].data<const float>(), inputs[7].data<const float>(),
                                     inputs[8].data<const float>(), inputs[9].data<const float>()};
  float* output = outputs[0].data<float>();
  const int64_t threads = std::max<int64_t>(
      1, std::min<int64_t>(parallel_get_max_threads(),
                           planes / parallel_grain(geometry.plane())));
  ov::parallel_nt(static_cast<int>(threads), [&](int thread, int count) {
    const int64_t begin = planes * thread / count;
    const int64_t end = planes * (thread + 1) / count;
    if (begin < end) {
      std::vector<float> scratch(kNumBranches * geometry.plane());
      dice_fuse_planes(problem, params, scratch.data(), output, begin, end);
    }
  });
  return true;
}

}  // namespace openvino
}  // namespace mmdice

// DiCEFuse (dice_fuse_op.hpp): shape inference and the CPU evaluate(): the
// row kernel of csrc/common/cpu/dice_fuse_cpu_rows.h (the PyTorch op's), or
// for banded weights the plane loop of dice_fuse_cpu_planes.h, parallel on
// OpenVINO's own threads (ov::parallel_nt, TBB), so that it shares the CPU
// plugin's thread pool instead of competing with it.
#include "dice_fuse_op.hpp"

#include <openvino/core/parallel.hpp>
#include <openvino/core/type/bfloat16.hpp>

#include <algorithm>
#include <utility>
#include <vector>

#include "../common/cpu/cpu_kernel_utils.h"
#include "openvino_accumulate.hpp"
#include "../common/cpu/dice_fuse_cpu_planes.h"
#include "../common/cpu/dice_fuse_cpu_rows.h"

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

// Output rows [begin, end) of the row kernel (and their column sums, when
// `channel_sums` is given); one worker per element type.
MMDICE_CPU_CLONES void dice_fuse_rows_f32(const dice_fuse_rows::Problem<float>& problem,
                                          int64_t begin, int64_t end, float* scratch,
                                          float* channel_sums) {
  dice_fuse_rows::run_rows_impl(problem, begin, end, scratch, channel_sums);
}

MMDICE_CPU_CLONES void dice_fuse_rows_bf16(const dice_fuse_rows::Problem<ov::bfloat16>& problem,
                                           int64_t begin, int64_t end, float* scratch,
                                           float* channel_sums) {
  dice_fuse_rows::run_rows_impl(problem, begin, end, scratch, channel_sums);
}

void run_rows(const dice_fuse_rows::Problem<float>& problem, int64_t begin, int64_t end,
              float* scratch, float* channel_sums) {
  dice_fuse_rows_f32(problem, begin, end, scratch, channel_sums);
}

void run_rows(const dice_fuse_rows::Problem<ov::bfloat16>& problem, int64_t begin, int64_t end,
              float* scratch, float* channel_sums) {
  dice_fuse_rows_bf16(problem, begin, end, scratch, channel_sums);
}

// Workers for `items` work items, `grain` of them at least per worker: one per
// OpenVINO thread, fewer for small problems.
int worker_count(int64_t items, int64_t grain) {
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(parallel_get_max_threads(), items / grain)));
}

// The row kernel on the evaluate() tensors, x and output with their strides
// (x pooled first when `pool` is enabled); with a second output, the output's
// means over (H, W) as (N, C) in it.
template <typename scalar_t>
void evaluate_rows(ov::TensorVector& outputs, const ov::TensorVector& inputs,
                   const DimConvGeometry& geometry, dice_fuse_rows::Strides input_strides,
                   dice_fuse_rows::Strides output_strides, dice_fuse_rows::InputPool pool) {
  std::vector<std::vector<float>> coefficients;
  for (size_t i = 4; i < kNumInputs; ++i) {
    const scalar_t* data = inputs[i].data<const scalar_t>();
    coefficients.emplace_back(data, data + inputs[i].get_size());
  }
  const DiceFuseParams<float> params{coefficients[0].data(), coefficients[1].data(),
                                     coefficients[2].data(), coefficients[3].data(),
                                     coefficients[4].data(), coefficients[5].data()};
  const dice_fuse_rows::Problem<scalar_t> problem(
      inputs[0].data<const scalar_t>(), input_strides, inputs[1].data<const scalar_t>(),
      inputs[2].data<const scalar_t>(), inputs[3].data<const scalar_t>(), geometry, params,
      outputs[0].data<scalar_t>(), output_strides, pool);
  const int64_t rows = problem.rows();
  const int workers = worker_count(rows, dice_fuse_rows::row_grain(geometry));
  const bool with_mean = outputs.size() > 1;
  const int64_t means = geometry.batch * geometry.channels;
  std::vector<std::vector<float>> sums(with_mean ? workers : 0, std::vector<float>(means, 0.f));
  ov::parallel_nt(workers, [&](int thread, int count) {
    const int64_t begin = rows * thread / count;
    const int64_t end = rows * (thread + 1) / count;
    if (begin < end) {
      std::vector<float> scratch(problem.scratch_elements());
      run_rows(problem, begin, end, scratch.data(), with_mean ? sums[thread].data() : nullptr);
    }
  });
  if (!with_mean) return;
  scalar_t* mean = outputs[1].data<scalar_t>();
  const float scale = 1.f / static_cast<float>(geometry.plane());
  for (int64_t i = 0; i < means; ++i) {
    float total = 0.f;
    for (const std::vector<float>& partial : sums) total += partial[i];
    mean[i] = static_cast<scalar_t>(total * scale);
  }
}

// The means over (H, W) of a planar f32 (N, C, H, W) output, as (N, C).
void plane_means(const float* output, const DimConvGeometry& geometry, float* mean) {
  const int64_t plane = geometry.plane();
  for (int64_t i = 0; i < geometry.batch * geometry.channels; ++i) {
    double total = 0.0;
    for (int64_t j = 0; j < plane; ++j) total += output[i * plane + j];
    mean[i] = static_cast<float>(total / static_cast<double>(plane));
  }
}

}  // namespace

DiCEFuse::DiCEFuse(const ov::OutputVector& inputs, std::vector<int64_t> dilation,
                   std::string layout, int64_t with_mean, int64_t input_pool)
    : FloatInputsOp(inputs),
      dilation_(std::move(dilation)),
      layout_(std::move(layout)),
      with_mean_(with_mean),
      input_pool_(input_pool) {
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
  NODE_VALIDATION_CHECK(this, layout_ == "NCHW" || layout_ == "NHWC",
                        "DiCEFuse: layout must be \"NCHW\" or \"NHWC\", got \"", layout_, "\"");
  NODE_VALIDATION_CHECK(this, with_mean_ == 0 || with_mean_ == 1,
                        "DiCEFuse: with_mean must be 0 or 1, got ", with_mean_);
  NODE_VALIDATION_CHECK(this, input_pool_ == 0 || input_pool_ == 1,
                        "DiCEFuse: input_pool must be 0 or 1, got ", input_pool_);
  validate_input_types(kInputNames);
  const ov::element::Type type = get_input_element_type(0);
  const ov::PartialShape& x = get_input_partial_shape(0);
  NODE_VALIDATION_CHECK(this, x.rank().compatible(4), "DiCEFuse: x must be (N, C, H, W) or with ",
                        "layout NHWC (N, H, W, C), got ", x);
  const size_t expected_rank[kNumInputs] = {4, 4, 4, 4, 2, 2, 2, 2, 1, 1};
  for (size_t i = 1; i < kNumInputs; ++i) {
    NODE_VALIDATION_CHECK(this, get_input_partial_shape(i).rank().compatible(expected_rank[i]),
                          "DiCEFuse: ", kInputNames[i], " must have rank ", expected_rank[i],
                          ", got ", get_input_partial_shape(i));
  }
  ov::PartialShape y = x;
  if (input_pool_ && x.rank().is_static()) {
    const size_t first_spatial = layout_ == "NHWC" ? 1 : 2;
    for (size_t axis = first_spatial; axis < first_spatial + 2; ++axis) {
      y[axis] = x[axis].is_static()
                    ? ov::Dimension(dice_fuse_rows::InputPool::pooled(x[axis].get_length()))
                    : ov::Dimension::dynamic();
    }
  }
  set_output_type(0, type, y);
  if (with_mean_) {
    const bool nhwc = layout_ == "NHWC";
    set_output_type(1, type,
                    x.rank().is_static()
                        ? ov::PartialShape({x[0], x[nhwc ? 3 : 1]})
                        : ov::PartialShape::dynamic(2));
  }
}

std::shared_ptr<ov::Node> DiCEFuse::clone_with_new_inputs(const ov::OutputVector& inputs) const {
  return std::make_shared<DiCEFuse>(inputs, dilation_, layout_, with_mean_, input_pool_);
}

bool DiCEFuse::visit_attributes(ov::AttributeVisitor& visitor) {
  visitor.on_attribute("dilation", dilation_);
  visitor.on_attribute("layout", layout_);
  visitor.on_attribute("with_mean", with_mean_);
  visitor.on_attribute("input_pool", input_pool_);
  return true;
}

bool DiCEFuse::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
  const ov::element::Type type = inputs[0].get_element_type();
  if (!is_evaluated_type(type)) return false;
  const ov::Shape& stored = inputs[0].get_shape();
  const bool nhwc = layout_ == "NHWC";
  OPENVINO_ASSERT(stored.size() == 4, "DiCEFuse: x must have rank 4, got ", stored);
  // x as (N, C, H, W), and the unit's input: x, or x pooled.
  const ov::Shape source = nhwc ? ov::Shape{stored[0], stored[3], stored[1], stored[2]} : stored;
  const dice_fuse_rows::InputPool pool =
      input_pool_ ? dice_fuse_rows::InputPool{static_cast<int64_t>(source[2]),
                                              static_cast<int64_t>(source[3])}
                  : dice_fuse_rows::InputPool{};
  ov::Shape x = source;
  if (pool.enabled()) {
    x[2] = static_cast<size_t>(dice_fuse_rows::InputPool::pooled(pool.height));
    x[3] = static_cast<size_t>(dice_fuse_rows::InputPool::pooled(pool.width));
  }
  const ov::Shape& weight_depth = inputs[1].get_shape();
  const ov::Shape& weight_height = inputs[2].get_shape();
  const ov::Shape& weight_width = inputs[3].get_shape();
  const auto odd = [](size_t value) { return value % 2 == 1; };
  const bool weights_fit =
      weight_depth.size() == 4 && weight_depth[0] == x[1] &&
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
  outputs[0].set_shape(nhwc ? ov::Shape{x[0], x[2], x[3], x[1]} : x);
  if (with_mean_) outputs[1].set_shape({x[0], x[1]});
  DimConvGeometry geometry{static_cast<int64_t>(x[0]), channels,
                           static_cast<int64_t>(x[2]), static_cast<int64_t>(x[3]),
                           kernel_size,  dilation_[0],
                           dilation_[1], dilation_[2],
                           static_cast<int64_t>(weight_height[1]),
                           static_cast<int64_t>(weight_width[1])};
  const int64_t planes = geometry.batch * channels;
  if (planes == 0 || geometry.plane() == 0) return true;
  if (dice_fuse_rows::supports(geometry)) {
    DimConvGeometry source_geometry = geometry;
    source_geometry.height = static_cast<int64_t>(source[2]);
    source_geometry.width = static_cast<int64_t>(source[3]);
    const auto strides_of = [nhwc](const DimConvGeometry& g) {
      return nhwc ? dice_fuse_rows::Strides::nhwc(g) : dice_fuse_rows::Strides::nchw(g);
    };
    if (type == ov::element::f32) {
      evaluate_rows<float>(outputs, inputs, geometry, strides_of(source_geometry),
                           strides_of(geometry), pool);
    } else {
      evaluate_rows<ov::bfloat16>(outputs, inputs, geometry, strides_of(source_geometry),
                                  strides_of(geometry), pool);
    }
    return true;
  }
  OPENVINO_ASSERT(!pool.enabled(), "DiCEFuse: input_pool runs with the row kernel only (kernel "
                  "size 3 or 5, weights at the build size), got kernel size ", kernel_size,
                  " and weight_height ", weight_height);
  OPENVINO_ASSERT(!nhwc && type == ov::element::f32,
                  "DiCEFuse: banded weights (other input sizes than the build size) and kernel "
                  "sizes other than 3 and 5 run in layout NCHW and f32 only, got ", layout_, " ",
                  type);
  const dim_conv_cpu::Problem<float> problem(
      inputs[0].data<const float>(), inputs[1].data<const float>(), inputs[2].data<const float>(),
      inputs[3].data<const float>(), geometry, /*backward=*/false);
  const DiceFuseParams<float> params{inputs[4].data<const float>(), inputs[5].data<const float>(),
                                     inputs[6].data<const float>(), inputs[7].data<const float>(),
                                     inputs[8].data<const float>(), inputs[9].data<const float>()};
  float* output = outputs[0].data<float>();
  const int workers = worker_count(planes, parallel_grain(geometry.plane()));
  ov::parallel_nt(workers, [&](int thread, int count) {
    const int64_t begin = planes * thread / count;
    const int64_t end = planes * (thread + 1) / count;
    if (begin < end) {
      std::vector<float> scratch(kNumBranches * geometry.plane());
      dice_fuse_planes(problem, params, scratch.data(), output, begin, end);
    }
  });
  if (with_mean_) plane_means(output, geometry, outputs[1].data<float>());
  return true;
}

}  // namespace openvino
}  // namespace mmdice

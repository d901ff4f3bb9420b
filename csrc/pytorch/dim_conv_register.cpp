// Registration of the fused DimConv ops in the `mmdice` library, and DimConv's
// input contract (check_dim_conv_inputs, make_dim_conv_geometry), which the
// other ops that run DimConv share.
//
//   mmdice::dim_conv(input, weight_depth, weight_height, weight_width, dilation) -> output
//
// weight_depth is (C, 1, k, k); weight_height (H, Bh, k, k) and weight_width
// (W, Bw, k, k) hold Bh (Bw) kernels per output row (column), the banded form of
// csrc/common/dim_conv_common.h (odd Bh, Bw; 1 is the plain DimConv). A weight
// with 0 kernels in dim 1 (any branch) leaves its branch out: zero outputs.
//   mmdice::dim_conv_backward(grad_output, input, weight_depth, weight_height, weight_width,
//                             dilation, output_mask) -> (grad_input, grad_weight_depth,
//                                                        grad_weight_height, grad_weight_width)
//
// output_mask (four bools, as aten's convolution_backward) selects the
// gradients to compute; the others come back as None. `input` is read only
// for weight gradients, so a caller that needs none may pass any tensor of
// the input's shape, dtype and device (e.g. an expanded scalar).
//
// Autograd and the fake (meta) kernels are registered from Python
// (mmdice/ops/dim_conv.py) through torch.library.
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>

#include "dim_conv.h"

namespace mmdice {

namespace {

// Dim 1 holds the kernels per row: 0 (branch left out), 1, or with `banded`
// any odd number; exactly 1 for the plain form.
void check_weight(const char* op, const at::Tensor& weight, const char* name, int64_t rows,
                  int64_t kernel_size, const at::Tensor& input, bool banded,
                  DimConvWeightForm form) {
  const int64_t kernels = weight.dim() == 4 ? weight.size(1) : -1;
  const bool kernels_allowed = form == DimConvWeightForm::kPlain
                                   ? kernels == 1
                                   : kernels == 0 || kernels == 1 || (banded && kernels % 2 == 1);
  const char* allowed = form == DimConvWeightForm::kPlain ? "1"
                        : banded                          ? "0 or an odd band"
                                                          : "0 or 1";
  TORCH_CHECK(weight.dim() == 4 && weight.size(0) == rows && kernels_allowed &&
                  weight.size(2) == kernel_size && weight.size(3) == kernel_size,
              op, ": ", name, " must have shape (", rows, ", ", allowed, ", ", kernel_size, ", ",
              kernel_size, "), got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == input.scalar_type(), op, ": ", name, " dtype ",
              weight.scalar_type(), " differs from input dtype ", input.scalar_type());
  TORCH_CHECK(weight.device() == input.device(), op, ": ", name, " is on ", weight.device(),
              " but input is on ", input.device());
}

void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input) {
  TORCH_CHECK(grad_output.device() == input.device(),
              "mmdice::dim_conv_backward: grad_output is on ", grad_output.device(),
              " but input is on ", input.device());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(),
              "mmdice::dim_conv_backward: grad_output dtype ", grad_output.scalar_type(),
              " differs from input dtype ", input.scalar_type());
  const std::array<int64_t, 4> expected = {input.size(0), kNumBranches * input.size(1),
                                           input.size(2), input.size(3)};
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef(expected),
              "mmdice::dim_conv_backward: grad_output must have shape (N, 3C, H, W) = ",
              at::IntArrayRef(expected), " for an input of shape ", input.sizes(), ", got ",
              grad_output.sizes());
}

// mmdice::dim_conv on the device of `forward`; the last line of defence: the
// Python wrapper raises friendlier ValueErrors first.
template <DimConvForwardKernel* forward>
at::Tensor dim_conv_checked(const at::Tensor& input, const at::Tensor& weight_depth,
                            const at::Tensor& weight_height, const at::Tensor& weight_width,
                            at::IntArrayRef dilation) {
  check_dim_conv_inputs("mmdice::dim_conv", input, weight_depth, weight_height, weight_width,
                        dilation, DimConvWeightForm::kAny);
  const auto geometry =
      make_dim_conv_geometry(input, weight_depth, weight_height, weight_width, dilation);
  return forward(input.contiguous(), weight_depth.contiguous(), weight_height.contiguous(),
                 weight_width.contiguous(), geometry);
}

using OptionalGrads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                                 std::optional<at::Tensor>, std::optional<at::Tensor>>;

std::optional<at::Tensor> defined_or_none(const at::Tensor& tensor) {
  return tensor.defined() ? std::optional<at::Tensor>(tensor) : std::nullopt;
}

// mmdice::dim_conv_backward on the device of `backward`.
template <DimConvBackwardKernel* backward>
OptionalGrads dim_conv_backward_checked(const at::Tensor& grad_output, const at::Tensor& input,
                                        const at::Tensor& weight_depth,
                                        const at::Tensor& weight_height,
                                        const at::Tensor& weight_width, at::IntArrayRef dilation,
                                        std::array<bool, 4> output_mask) {
  check_dim_conv_inputs("mmdice::dim_conv", input, weight_depth, weight_height, weight_width,
                        dilation, DimConvWeightForm::kAny);
  check_grad_output(grad_output, input);
  const DimConvGradMask mask{output_mask[0], {output_mask[1], output_mask[2], output_mask[3]}};
  const auto geometry =
      make_dim_conv_geometry(input, weight_depth, weight_height, weight_width, dilation);
  // Only the weight gradients read the input: a placeholder is not copied.
  const at::Tensor input_read = mask.any_weight() ? input.contiguous() : input;
  const auto grads = backward(grad_output.contiguous(), input_read, weight_depth.contiguous(),
                              weight_height.contiguous(), weight_width.contiguous(), geometry,
                              mask);
  return {defined_or_none(std::get<0>(grads)), defined_or_none(std::get<1>(grads)),
          defined_or_none(std::get<2>(grads)), defined_or_none(std::get<3>(grads))};
}

}  // namespace

void check_dim_conv_inputs(const char* op, const at::Tensor& input,
                           const at::Tensor& weight_depth, const at::Tensor& weight_height,
                           const at::Tensor& weight_width, at::IntArrayRef dilation,
                           DimConvWeightForm form) {
  TORCH_CHECK(input.dim() == 4, op, ": input must be (N, C, H, W), got ", input.sizes());
  TORCH_CHECK(dilation.size() == 3 && dilation[0] >= 1 && dilation[1] >= 1 && dilation[2] >= 1,
              op, ": dilation must be three positive ints, got ", dilation);
  TORCH_CHECK(weight_depth.dim() == 4, op, ": weight_depth must be 4-D");
  const int64_t kernel_size = weight_depth.size(2);
  TORCH_CHECK(kernel_size % 2 == 1, op, ": kernel size must be odd, got ", kernel_size);
  check_weight(op, weight_depth, "weight_depth", input.size(1), kernel_size, input, false, form);
  check_weight(op, weight_height, "weight_height", input.size(2), kernel_size, input, true, form);
  check_weight(op, weight_width, "weight_width", input.size(3), kernel_size, input, true, form);
  TORCH_CHECK(weight_depth.size(1) + weight_height.size(1) + weight_width.size(1) > 0, op,
              ": at least one weight must hold kernels (dim 1 > 0)");
}

DimConvGeometry make_dim_conv_geometry(const at::Tensor& input, const at::Tensor& weight_depth,
                                       const at::Tensor& weight_height,
                                       const at::Tensor& weight_width, at::IntArrayRef dilation) {
  return DimConvGeometry{input.size(0),        input.size(1),        input.size(2),
                         input.size(3),        weight_depth.size(2), dilation[0],
                         dilation[1],          dilation[2],          weight_height.size(1),
                         weight_width.size(1), weight_depth.size(1)};
}

TORCH_LIBRARY_FRAGMENT(mmdice, m) {
  m.def(
      "dim_conv(Tensor input, Tensor weight_depth, Tensor weight_height, Tensor weight_width, "
      "int[] dilation) -> Tensor");
  m.def(
      "dim_conv_backward(Tensor grad_output, Tensor input, Tensor weight_depth, "
      "Tensor weight_height, Tensor weight_width, int[] dilation, bool[4] output_mask) "
      "-> (Tensor?, Tensor?, Tensor?, Tensor?)");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("dim_conv", &dim_conv_checked<dim_conv_forward_cpu>);
  m.impl("dim_conv_backward", &dim_conv_backward_checked<dim_conv_backward_cpu>);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(mmdice, CUDA, m) {
  m.impl("dim_conv", &dim_conv_checked<dim_conv_forward_cuda>);
  m.impl("dim_conv_backward", &dim_conv_backward_checked<dim_conv_backward_cuda>);
}
#endif

}  // namespace mmdice

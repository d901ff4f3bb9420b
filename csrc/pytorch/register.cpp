// The one registration file of mmdice._ext: declares the `mmdice` operator
// library and binds the CPU and (when built) CUDA kernels to it.
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
#include <Python.h>
#include <torch/library.h>

#include <array>
#include <optional>

#include "dim_conv.h"

namespace mmdice {

namespace {

// Dim 1 holds the kernels per row: 0 (branch left out), 1, or with `banded`
// any odd number.
void check_weight(const at::Tensor& weight, const char* name, int64_t rows,
                  int64_t kernel_size, const at::Tensor& input, bool banded) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(0) == rows &&
                  (weight.size(1) == 0 || weight.size(1) == 1 ||
                   (banded && weight.size(1) % 2 == 1)) &&
                  weight.size(2) == kernel_size && weight.size(3) == kernel_size,
              "mmdice::dim_conv: ", name, " must have shape (", rows, ", ",
              banded ? "0 or an odd band" : "0 or 1", ", ", kernel_size, ", ", kernel_size,
              "), got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == input.scalar_type(), "mmdice::dim_conv: ", name,
              " dtype ", weight.scalar_type(), " differs from input dtype ", input.scalar_type());
  TORCH_CHECK(weight.device() == input.device(), "mmdice::dim_conv: ", name, " is on ",
              weight.device(), " but input is on ", input.device());
}

// Last line of defence: the Python wrapper raises friendlier ValueErrors first.
void check_inputs(const at::Tensor& input, const at::Tensor& weight_depth,
                  const at::Tensor& weight_height, const at::Tensor& weight_width,
                  at::IntArrayRef dilation) {
  TORCH_CHECK(input.dim() == 4, "mmdice::dim_conv: input must be (N, C, H, W), got ",
              input.sizes());
  TORCH_CHECK(dilation.size() == 3 && dilation[0] >= 1 && dilation[1] >= 1 && dilation[2] >= 1,
              "mmdice::dim_conv: dilation must be three positive ints, got ", dilation);
  TORCH_CHECK(weight_depth.dim() == 4, "mmdice::dim_conv: weight_depth must be 4-D");
  const int64_t kernel_size = weight_depth.size(2);
  TORCH_CHECK(kernel_size % 2 == 1, "mmdice::dim_conv: kernel size must be odd, got ",
              kernel_size);
  check_weight(weight_depth, "weight_depth", input.size(1), kernel_size, input, false);
  check_weight(weight_height, "weight_height", input.size(2), kernel_size, input, true);
  check_weight(weight_width, "weight_width", input.size(3), kernel_size, input, true);
  TORCH_CHECK(weight_depth.size(1) + weight_height.size(1) + weight_width.size(1) > 0,
              "mmdice::dim_conv: at least one weight must hold kernels (dim 1 > 0)");
}

template <typename Forward>
at::Tensor forward_impl(Forward forward, const at::Tensor& input, const at::Tensor& weight_depth,
                        const at::Tensor& weight_height, const at::Tensor& weight_width,
                        at::IntArrayRef dilation) {
  check_inputs(input, weight_depth, weight_height, weight_width, dilation);
  const auto geometry =
      make_dim_conv_geometry(input, weight_depth, weight_height, weight_width, dilation);
  return forward(input.contiguous(), weight_depth.contiguous(), weight_height.contiguous(),
                 weight_width.contiguous(), geometry);
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

using OptionalGrads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                                 std::optional<at::Tensor>, std::optional<at::Tensor>>;

std::optional<at::Tensor> defined_or_none(const at::Tensor& tensor) {
  return tensor.defined() ? std::optional<at::Tensor>(tensor) : std::nullopt;
}

template <typename Backward>
OptionalGrads backward_impl(Backward backward, const at::Tensor& grad_output,
                            const at::Tensor& input, const at::Tensor& weight_depth,
                            const at::Tensor& weight_height, const at::Tensor& weight_width,
                            at::IntArrayRef dilation, std::array<bool, 4> output_mask) {
  check_inputs(input, weight_depth, weight_height, weight_width, dilation);
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

at::Tensor dim_conv_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                        const at::Tensor& weight_height, const at::Tensor& weight_width,
                        at::IntArrayRef dilation) {
  return forward_impl(dim_conv_forward_cpu, input, weight_depth, weight_height, weight_width,
                      dilation);
}

OptionalGrads dim_conv_backward_cpu_impl(const at::Tensor& grad_output,
                                         const at::Tensor& input, const at::Tensor& weight_depth,
                                         const at::Tensor& weight_height,
                                         const at::Tensor& weight_width, at::IntArrayRef dilation,
                                         std::array<bool, 4> output_mask) {
  return backward_impl(dim_conv_backward_cpu, grad_output, input, weight_depth, weight_height,
                       weight_width, dilation, output_mask);
}

#ifdef WITH_CUDA
at::Tensor dim_conv_cuda(const at::Tensor& input, const at::Tensor& weight_depth,
                         const at::Tensor& weight_height, const at::Tensor& weight_width,
                         at::IntArrayRef dilation) {
  return forward_impl(dim_conv_forward_cuda, input, weight_depth, weight_height, weight_width,
                      dilation);
}

OptionalGrads dim_conv_backward_cuda_impl(const at::Tensor& grad_output,
                                          const at::Tensor& input, const at::Tensor& weight_depth,
                                          const at::Tensor& weight_height,
                                          const at::Tensor& weight_width, at::IntArrayRef dilation,
                                          std::array<bool, 4> output_mask) {
  return backward_impl(dim_conv_backward_cuda, grad_output, input, weight_depth, weight_height,
                       weight_width, dilation, output_mask);
}
#endif

}  // namespace

DimConvGeometry make_dim_conv_geometry(const at::Tensor& input, const at::Tensor& weight_depth,
                                       const at::Tensor& weight_height,
                                       const at::Tensor& weight_width, at::IntArrayRef dilation) {
  return DimConvGeometry{input.size(0),        input.size(1),        input.size(2),
                         input.size(3),        weight_depth.size(2), dilation[0],
                         dilation[1],          dilation[2],          weight_height.size(1),
                         weight_width.size(1), weight_depth.size(1)};
}

TORCH_LIBRARY(mmdice, m) {
  m.def(
      "dim_conv(Tensor input, Tensor weight_depth, Tensor weight_height, Tensor weight_width, "
      "int[] dilation) -> Tensor");
  m.def(
      "dim_conv_backward(Tensor grad_output, Tensor input, Tensor weight_depth, "
      "Tensor weight_height, Tensor weight_width, int[] dilation, bool[4] output_mask) "
      "-> (Tensor?, Tensor?, Tensor?, Tensor?)");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("dim_conv", &dim_conv_cpu);
  m.impl("dim_conv_backward", &dim_conv_backward_cpu_impl);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(mmdice, CUDA, m) {
  m.impl("dim_conv", &dim_conv_cuda);
  m.impl("dim_conv_backward", &dim_conv_backward_cuda_impl);
}
#endif

}  // namespace mmdice

// Importing `mmdice._ext` from Python loads this library and runs the
// registrations above; the module itself exposes no functions.
extern "C" PyObject* PyInit__ext(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_ext", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

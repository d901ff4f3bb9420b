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
//                             dilation) -> (grad_input, grad_weight_depth,
//                                           grad_weight_height, grad_weight_width)
//
// Autograd and the fake (meta) kernels are registered from Python
// (mmdice/ops/dim_conv.py) through torch.library.
#include <Python.h>
#include <torch/library.h>

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

template <typename Backward>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_impl(
    Backward backward, const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight_depth, const at::Tensor& weight_height,
    const at::Tensor& weight_width, at::IntArrayRef dilation) {
  check_inputs(input, weight_depth, weight_height, weight_width, dilation);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == input.size(0) &&
                  grad_output.size(1) == kNumBranches * input.size(1) &&
                  grad_output.size(2) == input.size(2) && grad_output.size(3) == input.size(3),
              "mmdice::dim_conv_backward: grad_output must have shape (N, 3C, H, W), got ",
              grad_output.sizes());
  const auto geometry =
      make_dim_conv_geometry(input, weight_depth, weight_height, weight_width, dilation);
  return backward(grad_output.contiguous(), input.contiguous(), weight_depth.contiguous(),
                  weight_height.contiguous(), weight_width.contiguous(), geometry);
}

at::Tensor dim_conv_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                        const at::Tensor& weight_height, const at::Tensor& weight_width,
                        at::IntArrayRef dilation) {
  return forward_impl(dim_conv_forward_cpu, input, weight_depth, weight_height, weight_width,
                      dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cpu_impl(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width, at::IntArrayRef dilation) {
  return backward_impl(dim_conv_backward_cpu, grad_output, input, weight_depth, weight_height,
                       weight_width, dilation);
}

#ifdef WITH_CUDA
at::Tensor dim_conv_cuda(const at::Tensor& input, const at::Tensor& weight_depth,
                         const at::Tensor& weight_height, const at::Tensor& weight_width,
                         at::IntArrayRef dilation) {
  return forward_impl(dim_conv_forward_cuda, input, weight_depth, weight_height, weight_width,
                      dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cuda_impl(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width, at::IntArrayRef dilation) {
  return backward_impl(dim_conv_backward_cuda, grad_output, input, weight_depth, weight_height,
                       weight_width, dilation);
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
      "Tensor weight_height, Tensor weight_width, int[] dilation) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
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

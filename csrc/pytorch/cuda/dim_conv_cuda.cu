// Host launchers of the fused DimConv op on CUDA (kernels in
// csrc/common/cuda/dim_conv_cuda_kernel.cuh and dim_conv_cuda_weight_grad_kernel.cuh,
// maths in csrc/common/dim_conv_common.h).
#ifdef WITH_CUDA

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <tuple>
#include <type_traits>

#include "../../common/cuda/dim_conv_cuda_kernel.cuh"
#include "../../common/cuda/dim_conv_cuda_weight_grad_kernel.cuh"
#include "../dim_conv.h"

namespace mmdice {

namespace {

// Grid-stride kernels get at most this many blocks per SM.
constexpr int64_t kElementwiseBlocksPerSm = 32;
// The weight-gradient reduction aims at this many blocks per SM and branch.
constexpr int64_t kReductionBlocksPerSm = 4;

int64_t ceil_div(int64_t numerator, int64_t denominator) {
  return (numerator + denominator - 1) / denominator;
}

// Multiprocessors of the current device (the caller's CUDAGuard selects it).
// ATen/cuda/CUDAContext.h is avoided on purpose: it needs the cuSPARSE/cuBLAS
// headers, which a bare CUDA toolkit may lack.
int64_t multiprocessor_count() {
  int device = 0;
  int count = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// Blocks of a grid-stride launch over `total` elements (total > 0).
dim3 elementwise_grid(int64_t total) {
  return dim3(static_cast<unsigned int>(std::min(
      ceil_div(total, kDimConvThreads), multiprocessor_count() * kElementwiseBlocksPerSm)));
}

// Calls `launch(std::integral_constant<int, K>{})` with the specialised kernel
// size K (3 or 5) or K == 0, the generic kernels.
template <typename Launch>
void dispatch_kernel_size(int64_t kernel_size, const Launch& launch) {
  switch (kernel_size) {
    case 3:
      launch(std::integral_constant<int, 3>{});
      break;
    case 5:
      launch(std::integral_constant<int, 5>{});
      break;
    default:
      launch(std::integral_constant<int, 0>{});
      break;
  }
}

// Launches `kernel` (a __global__ function) on `grid` blocks of
// kDimConvThreads threads on `stream` and checks the launch.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, cudaStream_t stream, const Args&... args) {
  kernel<<<grid, kDimConvThreads, 0, stream>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// grad_input of the backward: each branch's transposed convolution, gathered.
void launch_grad_input(const at::Tensor& grad_output, const at::Tensor& weight_depth,
                       const at::Tensor& weight_height, const at::Tensor& weight_width,
                       const DimConvGeometry& geometry, at::Tensor& grad_input) {
  const dim3 grid = elementwise_grid(grad_input.numel());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "dim_conv_grad_input_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        dispatch_kernel_size(geometry.kernel_size, [&](auto kernel_size) {
          launch(dim_conv_grad_input_cuda_kernel<scalar_t, acc_t, decltype(kernel_size)::value>,
                 grid, stream, grad_output.const_data_ptr<scalar_t>(),
                 weight_depth.const_data_ptr<scalar_t>(), weight_height.const_data_ptr<scalar_t>(),
                 weight_width.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(),
                 geometry);
        });
      });
}

// The three weight gradients of the backward: per-block partial sums, then
// their fixed-order reduction.
void launch_grad_weights(const at::Tensor& grad_output, const at::Tensor& input,
                         const DimConvGeometry& geometry, at::Tensor& grad_weight_depth,
                         at::Tensor& grad_weight_height, at::Tensor& grad_weight_width) {
  const int64_t taps = geometry.taps();
  const bool generic_kernel_size = geometry.kernel_size != 3 && geometry.kernel_size != 5;
  TORCH_CHECK(!generic_kernel_size || taps <= 65535,
              "mmdice::dim_conv_backward (CUDA): kernel size ", geometry.kernel_size,
              " is too large (at most 255)");
  const DimConvWeightGradPlan plan =
      make_dim_conv_weight_grad_plan(geometry, multiprocessor_count() * kReductionBlocksPerSm);
  const dim3 reduction_grid(static_cast<unsigned int>(plan.total_blocks()),
                            generic_kernel_size ? static_cast<unsigned int>(taps) : 1u);
  const dim3 finalize_grid = elementwise_grid(
      (plan.rows[kDepthBranch] + plan.rows[kHeightBranch] + plan.rows[kWidthBranch]) * taps);
  at::Tensor partials = at::empty({plan.total_partials(taps)},
                                  input.options().dtype(at::toOpMathType(input.scalar_type())));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dim_conv_grad_weight_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        dispatch_kernel_size(geometry.kernel_size, [&](auto kernel_size) {
          launch(dim_conv_grad_weight_partial_cuda_kernel<scalar_t, acc_t,
                                                          decltype(kernel_size)::value>,
                 reduction_grid, stream, grad_output.const_data_ptr<scalar_t>(),
                 input.const_data_ptr<scalar_t>(), geometry, plan,
                 partials.mutable_data_ptr<acc_t>());
        });
        launch(dim_conv_grad_weight_finalize_cuda_kernel<scalar_t, acc_t>, finalize_grid, stream,
               partials.const_data_ptr<acc_t>(), plan, geometry,
               grad_weight_depth.mutable_data_ptr<scalar_t>(),
               grad_weight_height.mutable_data_ptr<scalar_t>(),
               grad_weight_width.mutable_data_ptr<scalar_t>());
      });
}

}  // namespace

at::Tensor dim_conv_forward_cuda(const at::Tensor& input, const at::Tensor& weight_depth,
                                 const at::Tensor& weight_height, const at::Tensor& weight_width,
                                 const DimConvGeometry& geometry) {
  const at::cuda::CUDAGuard device_guard(input.device());
  at::Tensor output = at::empty(
      {geometry.batch, kNumBranches * geometry.channels, geometry.height, geometry.width},
      input.options());
  const int64_t total = input.numel();
  if (total == 0) return output;

  const dim3 grid = elementwise_grid(total);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dim_conv_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        dispatch_kernel_size(geometry.kernel_size, [&](auto kernel_size) {
          launch(dim_conv_forward_cuda_kernel<scalar_t, acc_t, decltype(kernel_size)::value>, grid,
                 stream, input.const_data_ptr<scalar_t>(), weight_depth.const_data_ptr<scalar_t>(),
                 weight_height.const_data_ptr<scalar_t>(), weight_width.const_data_ptr<scalar_t>(),
                 output.mutable_data_ptr<scalar_t>(), geometry);
        });
      });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry, const DimConvGradMask& mask) {
  const at::cuda::CUDAGuard device_guard(grad_output.device());
  const auto options = grad_output.options();
  at::Tensor grad_input, grad_weight_depth, grad_weight_height, grad_weight_width;
  std::tie(grad_input, grad_weight_depth, grad_weight_height, grad_weight_width) =
      allocate_dim_conv_grads(input, weight_depth, weight_height, weight_width, mask, options);
  if (input.numel() > 0 && mask.input) {
    launch_grad_input(grad_output, weight_depth, weight_height, weight_width, geometry,
                      grad_input);
  }
  if (input.numel() > 0 && mask.any_weight()) {
    launch_grad_weights(grad_output, input, geometry, grad_weight_depth, grad_weight_height,
                        grad_weight_width);
  }
  return {grad_input, mask.weights[kDepthBranch] ? grad_weight_depth : at::Tensor(),
          mask.weights[kHeightBranch] ? grad_weight_height : at::Tensor(),
          mask.weights[kWidthBranch] ? grad_weight_width : at::Tensor()};
}

}  // namespace mmdice

#endif  // WITH_CUDA

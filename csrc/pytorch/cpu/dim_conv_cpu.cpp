// Forward CPU kernel of DimConv (the design is in
// csrc/common/cpu/dim_conv_cpu_plane_window.h, the loop in dim_conv_cpu_forward.h):
// parallel over (n, c) planes; each plane yields output channels 3c, 3c+1, 3c+2.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include "../../common/cpu/dim_conv_cpu_forward.h"
#include "../dim_conv.h"
#include "cpu_accumulate.h"

namespace mmdice {
namespace dim_conv_cpu {
namespace {

#define DIM_CONV_DEFINE_WORKER(scalar_t)                                                       \
  MMDICE_CPU_CLONES void forward_planes(const Problem<scalar_t>& problem, scalar_t* output,    \
                                        int64_t begin, int64_t end) {                           \
    forward_planes_impl(problem, output, begin, end);                                          \
  }
MMDICE_CPU_FLOATING_TYPES_AND_BFLOAT16(DIM_CONV_DEFINE_WORKER)
#undef DIM_CONV_DEFINE_WORKER

template <typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& weight_depth,
                    const at::Tensor& weight_height, const at::Tensor& weight_width,
                    const DimConvGeometry& g, at::Tensor& output) {
  const Problem<scalar_t> problem(input.data_ptr<scalar_t>(), weight_depth.data_ptr<scalar_t>(),
                                  weight_height.data_ptr<scalar_t>(),
                                  weight_width.data_ptr<scalar_t>(), g, /*backward=*/false);
  scalar_t* y = output.data_ptr<scalar_t>();
  const int64_t grain = parallel_grain(g.plane());
  at::parallel_for(0, g.batch * g.channels, grain, [&](int64_t begin, int64_t end) {
    forward_planes(problem, y, begin, end);
  });
}

}  // namespace
}  // namespace dim_conv_cpu

at::Tensor dim_conv_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                const at::Tensor& weight_height, const at::Tensor& weight_width,
                                const DimConvGeometry& geometry) {
  auto output = at::empty(
      {geometry.batch, kNumBranches * geometry.channels, geometry.height, geometry.width},
      input.options().memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, input.scalar_type(), "dim_conv_forward_cpu", [&] {
    dim_conv_cpu::forward_kernel<scalar_t>(input, weight_depth, weight_height, weight_width,
                                           geometry, output);
  });
  return output;
}

}  // namespace mmdice

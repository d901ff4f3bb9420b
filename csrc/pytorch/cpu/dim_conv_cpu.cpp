// Forward CPU kernel of DimConv (the design is in dim_conv_cpu_plane_window.h):
// parallel over (n, c) planes; each plane yields output channels 3c, 3c+1, 3c+2.
#include "dim_conv_cpu_taps.h"

namespace mmdice {
namespace dim_conv_cpu {
namespace {

// Forward of the (n, c) planes [begin, end).
template <typename scalar_t>
MMDICE_INLINE void forward_planes_impl(const Problem<scalar_t>& problem, scalar_t* output,
                                         int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  const DimConvGeometry& g = problem.geometry;
  const BranchTaps& taps = problem.taps;
  PlaneWindow<scalar_t, T> window = problem.input_window();
  std::vector<TapList<scalar_t>> lists(kNumBranches, TapList<scalar_t>(problem));
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    for (const TapGeometry& tap : taps.branches[branch]) {
      lists[branch].add(branch, tap, window, tap.channel_offset, tap.column_shift,
                        tap.row_offset);
    }
  }
  PlaneCursor cursor(begin, g.channels);
  for (int64_t plane = begin; plane < end; ++plane, cursor.next()) {
    window.move_to(cursor.n, cursor.c);
    scalar_t* out = output + plane * kNumBranches * g.plane();
    for (int64_t branch = 0; branch < kNumBranches; ++branch) {
      lists[branch].bind(cursor.c);
      lists[branch].gather(g.plane(), out + branch * g.plane());
    }
  }
}

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
  const Problem<scalar_t> problem(input, weight_depth, weight_height, weight_width, g,
                                  /*backward=*/false);
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

// CPU kernel of the deploy form's block epilogue, mmdice::shuffle_gated_concat:
// channel_shuffle(cat(left, prelu(branch, slope) * gate), 2) of channels-last
// tensors, i.e. per pixel out[2k] = left[k], out[2k + 1] = prelu(branch[k]) * gate[n, k].
//
// ATen computes it as a PReLU, a multiply into a stride-2 channel view and a copy
// into the other one (TensorIterator's strided loops): three passes. Here it is
// one pass per pixel row (csrc/common/cpu/shuffle_gated_concat_cpu.h, the OpenVINO
// node's kernel too). (A plain shuffled concat of channels-last parts in the
// same style is no faster than ATen's copies into channel views, so the deploy
// form keeps those copies; benchmarks/RESULTS.md.)
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cstdint>

#include "../../common/cpu/cpu_kernel_utils.h"
#include "../../common/cpu/shuffle_gated_concat_cpu.h"
#include "../channel_shuffle.h"

namespace mmdice {

namespace {

#define CHANNEL_SHUFFLE_DEFINE_WORKERS(scalar_t)                                            \
  MMDICE_CPU_CLONES void shuffle_row(const scalar_t* left, const scalar_t* branch,         \
                                     const scalar_t* slope, const scalar_t* gate,          \
                                     int64_t channels, scalar_t* out) {                    \
    shuffle_gated_concat_kernel::shuffle_gated_concat_pixel(left, branch, slope, gate, channels, \
                                                         2 * channels, out, out + 2 * channels); \
  }
MMDICE_CPU_FLOATING_TYPES(CHANNEL_SHUFFLE_DEFINE_WORKERS)
#undef CHANNEL_SHUFFLE_DEFINE_WORKERS

// Offset of pixel `row` (n, h, w in row-major order) in a 4-D tensor of `sizes`.
int64_t row_offset(const at::Tensor& t, int64_t row) {
  const int64_t width = t.size(3), plane = t.size(2) * width;
  const int64_t n = row / plane, h = (row % plane) / width, w = row % width;
  return n * t.stride(0) + h * t.stride(2) + w * t.stride(3);
}

}  // namespace

at::Tensor shuffle_gated_concat_cpu(const at::Tensor& left, const at::Tensor& branch,
                                    const at::Tensor& slope, const at::Tensor& gate) {
  const int64_t batch = left.size(0), channels = left.size(1);
  auto out = at::empty({batch, 2 * channels, left.size(2), left.size(3)},
                       left.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t rows = batch * left.size(2) * left.size(3);
  const int64_t pixels = left.size(2) * left.size(3);
  const int64_t grain = parallel_grain(2 * channels);
  AT_DISPATCH_FLOATING_TYPES(left.scalar_type(), "shuffle_gated_concat_cpu", [&] {
    const scalar_t* left_data = left.const_data_ptr<scalar_t>();
    const scalar_t* branch_data = branch.const_data_ptr<scalar_t>();
    const scalar_t* slope_data = slope.const_data_ptr<scalar_t>();
    const scalar_t* gate_data = gate.const_data_ptr<scalar_t>();
    scalar_t* out_data = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        shuffle_row(left_data + row_offset(left, row), branch_data + row_offset(branch, row),
                    slope_data, gate_data + (row / pixels) * channels, channels,
                    out_data + row * 2 * channels);
      }
    });
  });
  return out;
}

}  // namespace mmdice

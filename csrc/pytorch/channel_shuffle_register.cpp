// Registration of the shuffled, gated concat in the `mmdice` library.
//
//   mmdice::shuffle_gated_concat(left, branch, slope, gate) -> output (N, 2C, H, W),
//                     channels-last: channel_shuffle(cat(left, prelu(branch, slope) * gate), 2)
//                     for channels-last left and branch (N, C, H, W), gate (N, C)
//
// The fake kernel (torch.compile) is registered from Python (mmdice/ops/channel_shuffle.py).
#include <torch/library.h>

#include <utility>

#include "channel_shuffle.h"

namespace mmdice {

namespace {

at::Tensor shuffle_gated_concat_cpu_impl(const at::Tensor& left, const at::Tensor& branch,
                                         const at::Tensor& slope, const at::Tensor& gate) {
  TORCH_CHECK(left.dim() == 4 && left.sizes() == branch.sizes(),
              "mmdice::shuffle_gated_concat: left and branch must be (N, C, H, W) of one shape, "
              "got ", left.sizes(), " and ", branch.sizes());
  TORCH_CHECK(left.stride(1) == 1 && branch.stride(1) == 1,
              "mmdice::shuffle_gated_concat: left and branch must be channels-last (channel "
              "stride 1), got strides ", left.strides(), " and ", branch.strides());
  TORCH_CHECK(left.scalar_type() == at::kFloat || left.scalar_type() == at::kDouble,
              "mmdice::shuffle_gated_concat: left must be float32 or float64, got ",
              left.scalar_type());
  const int64_t batch = left.size(0), channels = left.size(1);
  const std::pair<const at::Tensor*, const char*> tensors[] = {
      {&branch, "branch"}, {&slope, "slope"}, {&gate, "gate"}};
  for (const auto& [tensor, name] : tensors) {
    TORCH_CHECK(tensor->scalar_type() == left.scalar_type() && tensor->device() == left.device(),
                "mmdice::shuffle_gated_concat: ", name, " must have left's dtype and device");
  }
  TORCH_CHECK(slope.dim() == 1 && slope.size(0) == channels,
              "mmdice::shuffle_gated_concat: slope must have shape (", channels, "), got ",
              slope.sizes());
  TORCH_CHECK(gate.numel() == batch * channels && gate.size(0) == batch,
              "mmdice::shuffle_gated_concat: gate must have shape (", batch, ", ", channels,
              ") (or (N, C, 1, 1)), got ", gate.sizes());
  return shuffle_gated_concat_cpu(left, branch, slope.contiguous(),
                                  gate.reshape({batch, channels}).contiguous());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mmdice, m) {
  m.def("shuffle_gated_concat(Tensor left, Tensor branch, Tensor slope, Tensor gate) -> Tensor");
}

TORCH_LIBRARY_IMPL(mmdice, CPU, m) {
  m.impl("shuffle_gated_concat", &shuffle_gated_concat_cpu_impl);
}

}  // namespace mmdice

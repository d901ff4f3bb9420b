// Device entry point of the deploy form's block epilogue (the shuffled, gated
// concat of a DiCE block). Inputs reach it validated.
#pragma once

#include <torch/types.h>

namespace mmdice {

// channel_shuffle(cat(left, prelu(branch, slope) * gate), 2): left and branch
// (N, C, H, W) with unit channel stride (channels-last or a channel slice of
// it), slope (C), gate (N, C) contiguous; returns (N, 2C, H, W) channels-last.
at::Tensor shuffle_gated_concat_cpu(const at::Tensor& left, const at::Tensor& branch,
                                    const at::Tensor& slope, const at::Tensor& gate);

}  // namespace mmdice

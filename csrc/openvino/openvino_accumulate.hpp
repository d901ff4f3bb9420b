// The type the CPU kernels of csrc/common/cpu accumulate OpenVINO's bf16 in: f32
// (include before the kernel headers, as csrc/pytorch/cpu/cpu_accumulate.h does
// for c10::BFloat16).
#pragma once

#include <openvino/core/type/bfloat16.hpp>

#include "../common/cpu/cpu_kernel_utils.h"

namespace mmdice {

template <>
struct AccumulateType<ov::bfloat16> {
  using type = float;
};

}  // namespace mmdice

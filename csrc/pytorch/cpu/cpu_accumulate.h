// The accumulation type of the ATen-free CPU kernel code (csrc/common/cpu) for
// ATen's bfloat16: at::opmath_type, float.
#pragma once

#include <ATen/OpMathType.h>

#include "../../common/cpu/cpu_kernel_utils.h"

namespace mmdice {

template <>
struct AccumulateType<c10::BFloat16> {
  using type = at::opmath_type<c10::BFloat16>;
};

}  // namespace mmdice

// Helpers shared by the CPU kernels of every op (csrc/pytorch/cpu/*_cpu.cpp and
// the OpenVINO ops of csrc/openvino); free of ATen.
//
// Portable binaries: a kernel's per-thread workers are plain (non-template)
// functions marked MMDICE_CPU_CLONES, compiled for AVX-512, AVX2+FMA and
// baseline x86-64; the loader picks the best one for the running CPU (GCC
// multiversions plain functions, not templates, hence one worker per dtype,
// defined through MMDICE_CPU_FLOATING_TYPES*).
// Everything a worker calls in its hot path is MMDICE_INLINE, so that it is
// compiled for the worker's target.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define MMDICE_CPU_MULTIVERSIONED 1
#define MMDICE_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MMDICE_CPU_MULTIVERSIONED 0
#define MMDICE_CPU_CLONES
#endif

#if defined(__GNUC__)
#define MMDICE_INLINE inline __attribute__((always_inline))
#else
#define MMDICE_INLINE inline
#endif

// Expand DEFINE(scalar_t) once per dtype that a kernel's AT_DISPATCH covers
// (AT_DISPATCH_FLOATING_TYPES, or ..._AND(at::kBFloat16, ...)), to define its
// workers for each.
#define MMDICE_CPU_FLOATING_TYPES(DEFINE) DEFINE(float) DEFINE(double)
#define MMDICE_CPU_FLOATING_TYPES_AND_BFLOAT16(DEFINE) \
  MMDICE_CPU_FLOATING_TYPES(DEFINE) DEFINE(c10::BFloat16)

namespace mmdice {

// Elements per parallel task: ATen's at::internal::GRAIN_SIZE.
constexpr int64_t kParallelGrainElements = 32768;

// Work items per parallel task when each item covers `item_elements`
// elements: kParallelGrainElements, and at least one item.
inline int64_t parallel_grain(int64_t item_elements) {
  return std::max<int64_t>(1, kParallelGrainElements / std::max<int64_t>(1, item_elements));
}

// The type a kernel accumulates `scalar_t` in: itself; float for bfloat16
// (specialised where c10::BFloat16 is known, csrc/pytorch/cpu/cpu_accumulate.h),
// as at::opmath_type.
template <typename scalar_t>
struct AccumulateType {
  using type = scalar_t;
};
template <typename scalar_t>
using accumulate_t = typename AccumulateType<scalar_t>::type;

}  // namespace mmdice

// Tiled transposes between channels-last rows and channel planes, shared by
// the CPU kernels of the fused DiCE op (csrc/pytorch/cpu/dice_fuse_cpu.cpp and
// dice_fuse_cpu_rows.h); free of ATen.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mmdice {

// dst (columns, dst_stride) = the transpose of src (rows, src_stride) columns
// [0, columns): between an NHWC image and NCHW planes, in cache-sized tiles.
template <typename scalar_t>
inline void transpose_tiles_scalar(const scalar_t* src, int64_t src_stride, int64_t rows,
                            int64_t columns, scalar_t* dst, int64_t dst_stride) {
  constexpr int64_t kTile = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = std::min(rows, r0 + kTile);
    for (int64_t c0 = 0; c0 < columns; c0 += kTile) {
      const int64_t c1 = std::min(columns, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * dst_stride + r] = src[r * src_stride + c];
      }
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DICE_FUSE_AVX2_TRANSPOSE 1
// 8x8 float blocks in AVX2 registers (unpack, shuffle, lane permute), the
// ragged edges scalar: the scalar tiles would make the channels-last form of
// dice_fuse markedly slower than the NCHW one.
__attribute__((target("avx2"))) inline void transpose_tiles_avx2(const float* src, int64_t src_stride,
                                                          int64_t rows, int64_t columns,
                                                          float* dst, int64_t dst_stride) {
  const int64_t full_rows = rows / 8 * 8, full_columns = columns / 8 * 8;
  for (int64_t r0 = 0; r0 < full_rows; r0 += 8) {
    for (int64_t c0 = 0; c0 < full_columns; c0 += 8) {
      const float* s = src + r0 * src_stride + c0;
      __m256 r[8], t[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * src_stride);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 2; ++i) {
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* d = dst + c0 * dst_stride + r0;
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(d + i * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(d + (i + 4) * dst_stride,
                         _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c_begin = r < full_rows ? full_columns : 0;
    for (int64_t c = c_begin; c < columns; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
  }
}
#endif

template <typename scalar_t>
inline void transpose_tiles(const scalar_t* src, int64_t src_stride, int64_t rows, int64_t columns,
                     scalar_t* dst, int64_t dst_stride) {
#ifdef DICE_FUSE_AVX2_TRANSPOSE
  if constexpr (std::is_same_v<scalar_t, float>) {
    static const bool has_avx2 = __builtin_cpu_supports("avx2");
    if (has_avx2) {
      transpose_tiles_avx2(src, src_stride, rows, columns, dst, dst_stride);
      return;
    }
  }
#endif
  transpose_tiles_scalar(src, src_stride, rows, columns, dst, dst_stride);
}

}  // namespace mmdice

// The AVX2 + FMA vector type the ISA-generic kernels are instantiated with (8 floats, ymm), for the
// translation units compiled with AVX2 flags (src/kernels/*/avx2.cpp). The generic kernels call only
// these members; avx512.hpp gives the same members for 16 floats. Internal linkage throughout (an anonymous
// namespace): see ARCHITECTURE.md, "ISA".
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/simd/avx2.hpp belongs in translation units compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include <cstdint>

namespace tinytorch::kernels {
namespace {

struct Avx2 {
  using reg = __m256;
  typedef float gcc_vec __attribute__((vector_size(32)));  // the same 8 floats as a GCC vector
  static constexpr int width = 8;
  static constexpr const char* name = "avx2";
  // The packed GEMM's register tile: MR rows x 2 vectors (12 ymm accumulators).
  static constexpr int mr = 6;
  static constexpr bool has_narrow = false;  // (avx512.hpp's Narrow: a half vector for short tiles)

  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static void stream(float* p, reg v) { _mm256_stream_ps(p, v); }  // p aligned to sizeof(reg)
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  // max(a, b) and min(a, b), b where either is NaN (so max(lo, x) and min(hi, x) keep a NaN x).
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // M consecutive floats (2 or 4) repeated across the vector: one load, no shuffle.
  template <int M>
  static reg broadcast_group(const float* p) {
    static_assert(M == 2 || M == 4);
    if constexpr (M == 2) {
      double d;
      __builtin_memcpy(&d, p, sizeof d);
      return _mm256_castpd_ps(_mm256_set1_pd(d));
    } else {
      const __m128 x = _mm_loadu_ps(p);
      return _mm256_set_m128(x, x);
    }
  }
  // Lane i of the result is lane idx[i] of v.
  static reg permute(reg v, const int32_t* idx) {
    return _mm256_permutevar8x32_ps(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)));
  }

  // Lanes [0, n) set (0 <= n <= width).
  struct Mask {
    __m256i bits;
  };
  static Mask first(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane)};
  }
  // The lanes in m from p0, the others from p1; neither is read outside its lanes.
  static reg load_blend(Mask m, const float* p0, const float* p1) {
    const __m256i other = _mm256_xor_si256(m.bits, _mm256_set1_epi32(-1));
    return _mm256_or_ps(_mm256_maskload_ps(p0, m.bits), _mm256_maskload_ps(p1, other));
  }

  // The `width` floats at base + idx[j] for the lanes j whose ok[j] is -1, 0 elsewhere (idx and ok
  // 32-byte aligned): a hardware gather.
  static gcc_vec gather(const float* base, const int32_t* idx, const int32_t* ok) {
    const __m256i i = _mm256_load_si256(reinterpret_cast<const __m256i*>(idx));
    const __m256 m = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ok)));
    return reinterpret_cast<gcc_vec>(_mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, i, m, 4));
  }

  // dst[0 .. n) = src[0 .. n) for short runs, in fixed-size moves: a loop here becomes a call to
  // memcpy (docs/PERFORMANCE.md, "Short copies").
  static void copy_short(float* dst, const float* src, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) __builtin_memcpy(dst + j, src + j, 64);
    if (n - j >= 8) __builtin_memcpy(dst + j, src + j, 32), j += 8;
    if (n - j >= 4) __builtin_memcpy(dst + j, src + j, 16), j += 4;
    if (n - j >= 2) __builtin_memcpy(dst + j, src + j, 8), j += 2;
    if (n - j >= 1) __builtin_memcpy(dst + j, src + j, 4);
  }

  // A tile row of two vectors cut short, its first cols < 2 * width floats to row: added to row
  // (accumulate), else plus *bias when bias is given. Through a buffer, lane by lane: AVX2's masked
  // stores are slow on some CPUs, and a partial row is at most one per tile row.
  static void store_part(float* row, reg v0, reg v1, int cols, bool accumulate, const float* bias) {
    alignas(32) float tile[16];
    _mm256_store_ps(tile, v0);
    _mm256_store_ps(tile + 8, v1);
    if (accumulate) {
      for (int j = 0; j < cols; ++j) row[j] += tile[j];
    } else if (bias) {
      for (int j = 0; j < cols; ++j) row[j] = tile[j] + *bias;
    } else {
      for (int j = 0; j < cols; ++j) row[j] = tile[j];
    }
  }
};

}  // namespace
}  // namespace tinytorch::kernels

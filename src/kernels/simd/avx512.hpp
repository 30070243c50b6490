// The AVX-512 vector type the ISA-generic kernels are instantiated with (16 floats, zmm), for the
// translation units compiled with AVX-512 flags (src/kernels/*/avx512.cpp): the same members as
// Avx2 in avx2.hpp. Internal linkage throughout (an anonymous namespace): see ARCHITECTURE.md,
// "ISA".
#pragma once

#if !defined(__AVX512F__)
#error "kernels/simd/avx512.hpp belongs in translation units compiled with -mavx512f"
#endif

#include <immintrin.h>

#include <cstdint>

namespace tinytorch::kernels {
namespace {

struct Avx512 {
  using reg = __m512;
  typedef float gcc_vec __attribute__((vector_size(64)));
  static constexpr int width = 16;
  static constexpr const char* name = "avx512";
  // The packed GEMM's register tile: MR rows x 2 vectors (24 zmm accumulators).
  static constexpr int mr = 12;

  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static void stream(float* p, reg v) { _mm512_stream_ps(p, v); }  // p aligned to sizeof(reg)
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // max(a, b) and min(a, b), b where either is NaN (so max(lo, x) and min(hi, x) keep a NaN x).
  // (The masked forms: GCC 12's unmasked ones pass an undefined vector it then warns about.)
  static reg max(reg a, reg b) { return _mm512_mask_max_ps(b, 0xFFFF, a, b); }
  static reg min(reg a, reg b) { return _mm512_mask_min_ps(b, 0xFFFF, a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  // M consecutive floats (2 or 4) repeated across the vector: one load, no shuffle.
  template <int M>
  static reg broadcast_group(const float* p) {
    static_assert(M == 2 || M == 4);
    if constexpr (M == 2) {
      double d;
      __builtin_memcpy(&d, p, sizeof d);
      return _mm512_castpd_ps(_mm512_set1_pd(d));
    } else {
      return _mm512_mask_broadcast_f32x4(_mm512_setzero_ps(), 0xFFFF, _mm_loadu_ps(p));
    }
  }
  // Lane i of the result is lane idx[i] of v. (The masked forms of these two: see max above.)
  static reg permute(reg v, const int32_t* idx) {
    return _mm512_mask_permutexvar_ps(v, 0xFFFF, _mm512_loadu_si512(idx), v);
  }

  // Half a vector (ymm), for the GEMM tile's last few pixels (gemm/tile.hpp): on a CPU whose 512-bit
  // operations take both of its 256-bit units (AMD's Zen 4) a ymm multiply-add costs half a zmm
  // one, elsewhere the same; its lanes as a zmm's low half (widen: the rest zero).
  struct Narrow {
    using reg = __m256;
    static constexpr int width = 8;
    static reg zero() { return _mm256_setzero_ps(); }
    static reg broadcast(const float* p) { return _mm256_set1_ps(*p); }
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  };
  static constexpr bool has_narrow = true;
  // (Shuffles, not _mm512_castps512_ps256 and _mm512_zextps256_ps512: GCC 12 builds those from an
  // undefined vector it then warns about; these compile to the same register moves or none.)
  static Narrow::reg low(reg v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7); }
  static reg widen(Narrow::reg v) {
    return __builtin_shufflevector(v, _mm256_setzero_ps(), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }

  struct Mask {
    __mmask16 bits;
  };
  static Mask first(int n) {
    return {n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n < 0 ? 0 : n)) - 1)};
  }
  static reg load_blend(Mask m, const float* p0, const float* p1) {
    return _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(m.bits, p0), static_cast<__mmask16>(~m.bits), p1);
  }

  // As Avx2::gather (idx and ok 64-byte aligned).
  static gcc_vec gather(const float* base, const int32_t* idx, const int32_t* ok) {
    const __mmask16 k = _mm512_test_epi32_mask(_mm512_load_si512(ok), _mm512_set1_epi32(-1));
    return reinterpret_cast<gcc_vec>(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, _mm512_load_si512(idx), base, 4));
  }

  // As Avx2::copy_short: 16 floats per move, the last one masked.
  static void copy_short(float* dst, const float* src, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
    if (j < n) {
      const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
      _mm512_mask_storeu_ps(dst + j, k, _mm512_maskz_loadu_ps(k, src + j));
    }
  }

  // As Avx2::store_part, with masked loads and stores.
  static void store_part(float* row, reg v0, reg v1, int cols, bool accumulate, const float* bias) {
    const __mmask16 m0 = first(cols).bits, m1 = first(cols - 16).bits;
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    } else if (bias) {
      v0 = _mm512_add_ps(v0, _mm512_set1_ps(*bias));
      v1 = _mm512_add_ps(v1, _mm512_set1_ps(*bias));
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
};

}  // namespace
}  // namespace tinytorch::kernels

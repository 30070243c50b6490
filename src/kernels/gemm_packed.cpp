// The packed GEMM micro-kernels (AVX-512 12x32, also run as 8x32 and 4x32; AVX2 6x16) and the
// run-time choice between them. Compiled for the baseline (x86-64-v3); the AVX-512 kernel carries its own target
// attribute and only runs where cpu_isa() says so.
#include "kernels/gemm_packed.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/contract.hpp"
#include "core/verbose.hpp"
#include "kernels/cpu.hpp"

namespace tinytorch::kernels {
namespace {

// The register tile's multiply-add loop, shared by the packed and the direct kernels, which differ
// only in where row k of B comes from (load_b(k, b0, b1) loads its two halves). acc0/acc1 hold the
// tile's two halves. The AVX-512 tile computes M <= 12 of the panel's 12 rows: the last panel of a
// layer whose channel count is not a multiple of 12 (64, 128, 256 ...) runs only the rows it has.
template <int M, class LoadB>
__attribute__((target("avx512f"), always_inline)) inline void tile_mx32(int64_t kc, const float* a, LoadB load_b,
                                                                        __m512 (&acc0)[12], __m512 (&acc1)[12]) {
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 b0, b1;
    load_b(k, b0, b1);
#pragma GCC unroll 12
    for (int r = 0; r < M; ++r) {
      const __m512 av = _mm512_set1_ps(a[k * 12 + r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
}

// The AVX2 tile: M <= 6 of the panel's 6 rows (the last panel of 32, 64, 128 ... channels has 2 or 4).
template <int M = 6, class LoadB>
__attribute__((always_inline)) inline void tile_6x16(int64_t kc, const float* a, LoadB load_b, __m256 (&acc0)[6],
                                                     __m256 (&acc1)[6]) {
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0, b1;
    load_b(k, b0, b1);
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + k * 6 + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
}

// Rows [0, rows) of the 12x32 tile in acc to c (ldc), columns [0, cols): added to c for
// Store::Accumulate, else plus bias[r] when bias is given; Store::Stream writes full, 64-byte
// aligned rows with non-temporal stores (other rows as Store::Write).
template <int M>
__attribute__((target("avx512f"), always_inline)) inline void store_mx32(const __m512 (&acc0)[12],
                                                                         const __m512 (&acc1)[12], float* c,
                                                                         int64_t ldc, int rows, int cols, Store store,
                                                                         const float* bias) {
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1) : 0;
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
    __m512 v0 = acc0[r], v1 = acc1[r];
    if (store == Store::Accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    } else if (bias) {
      v0 = _mm512_add_ps(v0, _mm512_set1_ps(bias[r]));
      v1 = _mm512_add_ps(v1, _mm512_set1_ps(bias[r]));
    }
    if (store == Store::Stream && m0 == 0xFFFF && m1 == 0xFFFF && (reinterpret_cast<uintptr_t>(row) & 63) == 0) {
      _mm512_stream_ps(row, v0);
      _mm512_stream_ps(row + 16, v1);
    } else if (m0 == 0xFFFF && m1 == 0xFFFF) {
      _mm512_storeu_ps(row, v0);
      _mm512_storeu_ps(row + 16, v1);
    } else {
      _mm512_mask_storeu_ps(row, m0, v0);
      _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
  }
}

// Calls f(std::integral_constant<int, M>) with the smallest tile height M of MR/3, 2MR/3, MR that
// covers `rows` (AVX-512: 4, 8, 12; AVX2: 2, 4, 6): the kernels are compiled for each.
template <int MR, class F>
inline void with_tile_rows(int rows, F f) {
  if (rows <= MR / 3) return f(std::integral_constant<int, MR / 3>{});
  if (rows <= 2 * MR / 3) return f(std::integral_constant<int, 2 * MR / 3>{});
  f(std::integral_constant<int, MR>{});
}

template <int M>
__attribute__((target("avx512f"))) void micro_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                     int rows, int cols, Store store, const float* bias) {
  __m512 acc0[12], acc1[12];
  tile_mx32<M>(
      kc, a,
      [b](int64_t k, __m512 & b0, __m512 & b1) __attribute__((target("avx512f"), always_inline)) {
        b0 = _mm512_loadu_ps(b + k * 32);
        b1 = _mm512_loadu_ps(b + k * 32 + 16);
      },
      acc0, acc1);
  store_mx32<M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

__attribute__((target("avx512f"))) void micro_avx512_12x32(int64_t kc, const float* a, const float* b, float* c,
                                                           int64_t ldc, int rows, int cols, Store store,
                                                           const float* bias) {
  with_tile_rows<12>(rows,
                     [&](auto m) { micro_avx512<decltype(m)::value>(kc, a, b, c, ldc, rows, cols, store, bias); });
}

// All the A panels of a layer against one B panel: rows [0, m) of C, panel by panel.
__attribute__((target("avx512f"))) void panels_avx512_12x32(int64_t kc, const float* a, int64_t a_stride, int64_t m,
                                                            const float* b, float* c, int64_t ldc, int cols,
                                                            Store store, const float* bias) {
  int64_t r0 = 0;
  for (; r0 + 12 <= m; r0 += 12, a += a_stride) {
    micro_avx512<12>(kc, a, b, c + r0 * ldc, ldc, 12, cols, store, bias ? bias + r0 : nullptr);
  }
  if (r0 < m) {
    micro_avx512_12x32(kc, a, b, c + r0 * ldc, ldc, static_cast<int>(m - r0), cols, store, bias ? bias + r0 : nullptr);
  }
}

// Rows [0, rows) of the 6x16 tile to c (ldc), as store_mx32 does (Store::Stream: whole rows at
// 32-byte aligned addresses).
template <int M = 6>
__attribute__((always_inline)) inline void store_6x16(const __m256 (&acc0)[6], const __m256 (&acc1)[6], float* c,
                                                      int64_t ldc, int rows, int cols, Store store, const float* bias) {
  // A constant trip count with a break, so that acc0[r] and acc1[r] have constant indices and the
  // accumulators stay in registers (a loop to `rows` made GCC keep them in memory, storing all 12
  // at every k: half the AVX2 kernel's speed).
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
    if (cols == 16) {  // a whole row: two vectors straight to c (streamed when asked and aligned)
      __m256 v0 = acc0[r], v1 = acc1[r];
      if (store == Store::Accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      } else if (bias) {
        v0 = _mm256_add_ps(v0, _mm256_set1_ps(bias[r]));
        v1 = _mm256_add_ps(v1, _mm256_set1_ps(bias[r]));
      }
      if (store == Store::Stream && (reinterpret_cast<uintptr_t>(row) & 31) == 0) {
        _mm256_stream_ps(row, v0);
        _mm256_stream_ps(row + 8, v1);
      } else {
        _mm256_storeu_ps(row, v0);
        _mm256_storeu_ps(row + 8, v1);
      }
      continue;
    }
    // A tile cut short (the last pixels of a layer): through a buffer, lane by lane.
    alignas(32) float tile[16];
    _mm256_store_ps(tile, acc0[r]);
    _mm256_store_ps(tile + 8, acc1[r]);
    if (store == Store::Accumulate) {
      for (int j = 0; j < cols; ++j) row[j] += tile[j];
    } else {
      const float add = bias ? bias[r] : 0.0f;
      for (int j = 0; j < cols; ++j) row[j] = tile[j] + add;
    }
  }
}

template <int M>
void micro_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, Store store,
                const float* bias) {
  __m256 acc0[6], acc1[6];
  tile_6x16<M>(
      kc, a,
      [b](int64_t k, __m256& b0, __m256& b1) {
        b0 = _mm256_loadu_ps(b + k * 16);
        b1 = _mm256_loadu_ps(b + k * 16 + 8);
      },
      acc0, acc1);
  store_6x16<M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

void micro_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, Store store,
                     const float* bias) {
  with_tile_rows<6>(rows, [&](auto m) { micro_avx2<decltype(m)::value>(kc, a, b, c, ldc, rows, cols, store, bias); });
}

void panels_avx2_6x16(int64_t kc, const float* a, int64_t a_stride, int64_t m, const float* b, float* c, int64_t ldc,
                      int cols, Store store, const float* bias) {
  for (int64_t r0 = 0; r0 < m; r0 += 6, a += a_stride) {
    micro_avx2_6x16(kc, a, b, c + r0 * ldc, ldc, static_cast<int>(std::min<int64_t>(6, m - r0)), cols, store,
                    bias ? bias + r0 : nullptr);
  }
}

template <int M>
__attribute__((target("avx512f"))) void direct_avx512(int64_t kc, const float* a, const float* base,
                                                      const int64_t* offset, float* c, int64_t ldc, int rows, int cols,
                                                      Store store, const float* bias) {
  __m512 acc0[12], acc1[12];
  tile_mx32<M>(
      kc, a, [ base, offset ](int64_t k, __m512 & b0, __m512 & b1) __attribute__((target("avx512f"), always_inline)) {
        b0 = _mm512_loadu_ps(base + offset[k]);
        b1 = _mm512_loadu_ps(base + offset[k] + 16);
      },
      acc0, acc1);
  store_mx32<M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

__attribute__((target("avx512f"))) void direct_avx512_12x32(int64_t kc, const float* a, const float* base,
                                                            const int64_t* offset, float* c, int64_t ldc, int rows,
                                                            int cols, Store store, const float* bias) {
  with_tile_rows<12>(
      rows, [&](auto m) { direct_avx512<decltype(m)::value>(kc, a, base, offset, c, ldc, rows, cols, store, bias); });
}

// A tile whose NR pixels straddle two images: lanes [0, split) are pixels of the first (B rows at
// base0 + offset[k], output at c0), lanes [split, NR) the first pixels of the next (B rows at
// base1 + offset[k], output at c1). Masked loads and stores: no lane touches the other image.
template <int M>
__attribute__((target("avx512f"))) void direct_split_avx512(int64_t kc, const float* a, const float* base0,
                                                            const float* base1, int split, const int64_t* offset,
                                                            float* c0, float* c1, int64_t ldc, int rows, int cols,
                                                            Store store, const float* bias) {
  const __mmask16 lo0 = split >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << split) - 1);
  const __mmask16 lo1 = split <= 16 ? 0 : static_cast<__mmask16>((1u << (split - 16)) - 1);
  const __mmask16 hi0 = static_cast<__mmask16>(~lo0), hi1 = static_cast<__mmask16>(~lo1);
  const float* b1p = base1 - split;  // lane j >= split reads base1[j - split]
  __m512 acc0[12], acc1[12];
  tile_mx32<M>(
      kc, a,
      [=](int64_t k, __m512 & b0, __m512 & b1) __attribute__((target("avx512f"), always_inline)) {
        const float *p0 = base0 + offset[k], *p1 = b1p + offset[k];
        b0 = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo0, p0), hi0, p1);
        b1 = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo1, p0 + 16), hi1, p1 + 16);
      },
      acc0, acc1);
  // Stores: the first image's lanes, then the second's (cols counts both).
  store_mx32<M>(acc0, acc1, c0, ldc, rows, split, store, bias);
  // Shift lanes [split, NR) down to 0: permutex2var picks lane (i + split) of the pair (indices
  // wrap past 31; those lanes are beyond cols - split and not stored).
  const __m512i i0 = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                      _mm512_set1_epi32(split));
  const __m512i i1 = _mm512_and_si512(_mm512_add_epi32(i0, _mm512_set1_epi32(16)), _mm512_set1_epi32(31));
  __m512 part0[12], part1[12];
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    part0[r] = _mm512_permutex2var_ps(acc0[r], i0, acc1[r]);
    part1[r] = _mm512_permutex2var_ps(acc0[r], i1, acc1[r]);
  }
  store_mx32<M>(part0, part1, c1, ldc, rows, cols - split, store, bias);
}

__attribute__((target("avx512f"))) void direct_split_avx512_12x32(int64_t kc, const float* a, const float* base0,
                                                                  const float* base1, int split, const int64_t* offset,
                                                                  float* c0, float* c1, int64_t ldc, int rows, int cols,
                                                                  Store store, const float* bias) {
  with_tile_rows<12>(rows, [&](auto m) {
    direct_split_avx512<decltype(m)::value>(kc, a, base0, base1, split, offset, c0, c1, ldc, rows, cols, store, bias);
  });
}

template <int M>
void direct_avx2(int64_t kc, const float* a, const float* base, const int64_t* offset, float* c, int64_t ldc, int rows,
                 int cols, Store store, const float* bias) {
  __m256 acc0[6], acc1[6];
  tile_6x16<M>(
      kc, a,
      [base, offset](int64_t k, __m256& b0, __m256& b1) {
        b0 = _mm256_loadu_ps(base + offset[k]);
        b1 = _mm256_loadu_ps(base + offset[k] + 8);
      },
      acc0, acc1);
  store_6x16<M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

void direct_avx2_6x16(int64_t kc, const float* a, const float* base, const int64_t* offset, float* c, int64_t ldc,
                      int rows, int cols, Store store, const float* bias) {
  with_tile_rows<6>(
      rows, [&](auto m) { direct_avx2<decltype(m)::value>(kc, a, base, offset, c, ldc, rows, cols, store, bias); });
}

void direct_split_avx2_6x16(int64_t kc, const float* a, const float* base0, const float* base1, int split,
                            const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                            const float* bias) {
  alignas(32) int32_t lanes[16];
  for (int j = 0; j < 16; ++j) lanes[j] = j < split ? -1 : 0;  // -1: the first image's lane
  const __m256i lo0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  const __m256i lo1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
  const __m256i ones = _mm256_set1_epi32(-1);
  const __m256i hi0 = _mm256_xor_si256(lo0, ones), hi1 = _mm256_xor_si256(lo1, ones);
  const float* b1p = base1 - split;
  __m256 acc0[6], acc1[6];
  tile_6x16(
      kc, a,
      [=](int64_t k, __m256& b0, __m256& b1) {
        const float *p0 = base0 + offset[k], *p1 = b1p + offset[k];
        b0 = _mm256_or_ps(_mm256_maskload_ps(p0, lo0), _mm256_maskload_ps(p1, hi0));
        b1 = _mm256_or_ps(_mm256_maskload_ps(p0 + 8, lo1), _mm256_maskload_ps(p1 + 8, hi1));
      },
      acc0, acc1);
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {  // constant indices: see store_6x16
    if (r >= rows) break;
    alignas(32) float tile[16];
    _mm256_store_ps(tile, acc0[r]);
    _mm256_store_ps(tile + 8, acc1[r]);
    const float add = bias && store != Store::Accumulate ? bias[r] : 0.0f;
    for (int j = 0; j < cols; ++j) {
      float* dst = j < split ? c0 + r * ldc + j : c1 + r * ldc + (j - split);
      *dst = store == Store::Accumulate ? *dst + tile[j] : tile[j] + add;
    }
  }
}

using DirectSplitKernel = void (*)(int64_t, const float*, const float*, const float*, int, const int64_t*, float*,
                                   float*, int64_t, int, int, Store, const float*);

using DirectKernel = void (*)(int64_t, const float*, const float*, const int64_t*, float*, int64_t, int, int, Store,
                              const float*);

using MicroKernel = void (*)(int64_t, const float*, const float*, float*, int64_t, int, int, Store, const float*);
using PanelsKernel = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t, int, Store,
                              const float*);

struct Choice {
  GemmTile tile;
  MicroKernel kernel;
  PanelsKernel panels;
  DirectKernel direct;
  DirectSplitKernel direct_split;
};

const Choice& choice() {
  static const Choice c = [] {
    if (verbose_enabled()) {
      verbose_log(std::string("micro-kernels: ") + (cpu_isa() == Isa::Avx512 ? "avx512 12x32 (the CPU has AVX-512)"
                                                    : cpu_has_avx512()
                                                        ? "avx2 6x16 (TINYTORCH_ISA=avx2 holds AVX-512 back)"
                                                        : "avx2 6x16 (the CPU has no AVX-512)"));
    }
    if (cpu_isa() == Isa::Avx512) {
      return Choice{{12, 32, "avx512"},
                    &micro_avx512_12x32,
                    &panels_avx512_12x32,
                    &direct_avx512_12x32,
                    &direct_split_avx512_12x32};
    }
    return Choice{{6, 16, "avx2"}, &micro_avx2_6x16, &panels_avx2_6x16, &direct_avx2_6x16, &direct_split_avx2_6x16};
  }();
  return c;
}

}  // namespace

const GemmTile& packed_gemm_tile() { return choice().tile; }

namespace {

// A full panel with the row count known at compile time: the row loop unrolls into MR loads from
// MR rows and one run of MR stores.
template <int MR>
void pack_full_panel(float* dst, const float* a, int64_t K, int64_t lda) {
  for (int64_t k = 0; k < K; ++k, dst += MR) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) dst[r] = a[r * lda + k];
  }
}

}  // namespace

void pack_a(float* dst, const float* a, int64_t M, int64_t K, int64_t lda, int mr) {
  TT_EXPECTS(M >= 0 && K >= 0 && lda >= K && mr >= 1);
  for (int64_t m0 = 0; m0 < M; m0 += mr) {
    const int64_t rows = std::min<int64_t>(mr, M - m0);
    if (rows == mr && (mr == 12 || mr == 6)) {
      if (mr == 12) pack_full_panel<12>(dst, a + m0 * lda, K, lda);
      if (mr == 6) pack_full_panel<6>(dst, a + m0 * lda, K, lda);
      dst += K * mr;
      continue;
    }
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t r = 0; r < rows; ++r) dst[k * mr + r] = a[(m0 + r) * lda + k];
      for (int64_t r = rows; r < mr; ++r) dst[k * mr + r] = 0.0f;
    }
    dst += K * mr;
  }
}

void gemm_micro(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc, int rows, int cols,
                Store store, const float* bias) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS(ldc >= cols && a_panel != nullptr && b_panel != nullptr && c != nullptr);
  choice().kernel(kc, a_panel, b_panel, c, ldc, rows, cols, store, bias);
}

void direct_micro(int64_t kc, const float* a_panel, const float* base, const int64_t* offset, float* c, int64_t ldc,
                  int rows, int cols, Store store, const float* bias) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS(ldc >= cols && a_panel != nullptr && base != nullptr && (kc == 0 || offset != nullptr));
  choice().direct(kc, a_panel, base, offset, c, ldc, rows, cols, store, bias);
}

void direct_micro_split(int64_t kc, const float* a_panel, const float* base0, const float* base1, int split,
                        const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                        const float* bias) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr);
  TT_EXPECTS(split > 0 && split < cols && cols <= packed_gemm_tile().nr);  // a straddling tile: both images
  choice().direct_split(kc, a_panel, base0, base1, split, offset, c0, c1, ldc, rows, cols, store, bias);
}

void gemm_micro_panels(int64_t kc, const float* a_panels, int64_t a_stride, int64_t m, const float* b_panel, float* c,
                       int64_t ldc, int cols, Store store, const float* bias) {
  TT_EXPECTS(kc >= 0 && m >= 0 && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS(a_stride >= kc * packed_gemm_tile().mr && ldc >= cols);
  choice().panels(kc, a_panels, a_stride, m, b_panel, c, ldc, cols, store, bias);
}

void stream_fence() { _mm_sfence(); }

}  // namespace tinytorch::kernels

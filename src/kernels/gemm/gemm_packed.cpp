// The packed GEMM's entry points: each checks its contract and calls the micro-kernel of the
// ISA this process runs (gemm/avx2.cpp or gemm/avx512.cpp, both built from gemm/tile.hpp), chosen
// once. pack_a is plain C++.
#include "kernels/gemm/gemm_packed.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/contract.hpp"
#include "kernels/cpu.hpp"
#include "kernels/gemm/table.hpp"

namespace tinytorch::kernels {
namespace {

const GemmKernels& choice() {
  static const GemmKernels& table = isa_table("micro-kernels", &avx2::gemm_kernels, &avx512::gemm_kernels);
  return table;
}

}  // namespace

const GemmTile& packed_gemm_tile() { return choice().tile; }

const GemmTile& wide_gemm_tile() { return choice().wide; }

void gemm_wide_panels(int64_t kc, const float* a, int64_t lda, int64_t m, const float* b_panel, float* c, int64_t ldc,
                      int cols, Store store, const float* bias) {
  TT_EXPECTS(choice().wide_panels != nullptr);
  TT_EXPECTS(kc >= 0 && m >= 0 && lda >= kc && lda >= 1 && cols >= 1 && cols <= choice().wide.nr && ldc >= cols);
  TT_EXPECTS(a != nullptr && b_panel != nullptr && c != nullptr);
  choice().wide_panels(kc, a, lda, m, b_panel, c, ldc, cols, store, bias);
}

void direct_wide_panels(int64_t kc, const float* a, int64_t lda, int64_t m, const float* base, const int64_t* offset,
                        float* c, int64_t ldc, int cols, Store store, const float* bias) {
  TT_EXPECTS(choice().direct_wide_panels != nullptr);
  TT_EXPECTS(kc >= 0 && m >= 0 && lda >= kc && lda >= 1 && cols >= 1 && cols <= choice().wide.nr && ldc >= cols);
  TT_EXPECTS(a != nullptr && base != nullptr && c != nullptr && (kc == 0 || offset != nullptr));
  choice().direct_wide_panels(kc, a, lda, m, base, offset, c, ldc, cols, store, bias);
}

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
                Store store, const float* bias, int64_t lda) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS(ldc >= cols && a_panel != nullptr && b_panel != nullptr && c != nullptr);
  TT_EXPECTS(lda == 0 || lda >= kc);
  choice().micro(kc, a_panel, lda, b_panel, c, ldc, rows, cols, store, bias);
}

void direct_micro(int64_t kc, const float* a_panel, const float* base, const int64_t* offset, float* c, int64_t ldc,
                  int rows, int cols, Store store, const float* bias, int64_t lda) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS(ldc >= cols && a_panel != nullptr && base != nullptr && (kc == 0 || offset != nullptr));
  TT_EXPECTS(lda == 0 || lda >= kc);
  choice().direct(kc, a_panel, lda, base, offset, c, ldc, rows, cols, store, bias);
}

void direct_micro_panels(int64_t kc, const float* a_panels, int64_t a_stride, int64_t m, const float* base,
                         const int64_t* offset, float* c, int64_t ldc, int cols, Store store, const float* bias,
                         int64_t lda) {
  TT_EXPECTS(kc >= 0 && m >= 0 && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS((lda == 0 ? a_stride >= kc * packed_gemm_tile().mr : a_stride == lda * packed_gemm_tile().mr) &&
             ldc >= cols && (kc == 0 || offset != nullptr));
  TT_EXPECTS(lda == 0 || lda >= kc);
  choice().direct_panels(kc, a_panels, a_stride, lda, m, base, offset, c, ldc, cols, store, bias);
}

void direct_micro_split(int64_t kc, const float* a_panel, const float* base0, const float* base1, int split,
                        const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                        const float* bias, int64_t lda) {
  TT_EXPECTS(kc >= 0 && rows >= 1 && rows <= packed_gemm_tile().mr);
  TT_EXPECTS(split > 0 && split < cols && cols <= packed_gemm_tile().nr);  // a straddling tile: both images
  TT_EXPECTS(lda == 0 || lda >= kc);
  choice().direct_split(kc, a_panel, lda, base0, base1, split, offset, c0, c1, ldc, rows, cols, store, bias);
}

void gemm_micro_panels(int64_t kc, const float* a_panels, int64_t a_stride, int64_t m, const float* b_panel, float* c,
                       int64_t ldc, int cols, Store store, const float* bias, int64_t lda) {
  TT_EXPECTS(kc >= 0 && m >= 0 && cols >= 1 && cols <= packed_gemm_tile().nr);
  TT_EXPECTS((lda == 0 ? a_stride >= kc * packed_gemm_tile().mr : a_stride == lda * packed_gemm_tile().mr) &&
             ldc >= cols);
  TT_EXPECTS(lda == 0 || lda >= kc);
  choice().panels(kc, a_panels, a_stride, lda, m, b_panel, c, ldc, cols, store, bias);
}

void dot_rows(int64_t rows, int64_t K, const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy) {
  TT_EXPECTS(rows >= 0 && K >= 0 && m >= 0 && ldw >= K && ldx >= K && (m <= 1 || ldy >= rows));
  TT_EXPECTS(rows == 0 || m == 0 || (w != nullptr && x != nullptr && y != nullptr));
  if (rows == 0) return;
  for (int64_t n0 = 0; n0 < m; n0 += 4) {
    choice().dot(rows, K, w, ldw, x + n0 * ldx, ldx, static_cast<int>(std::min<int64_t>(4, m - n0)), y + n0 * ldy, ldy);
  }
}

void stream_fence() { _mm_sfence(); }

}  // namespace tinytorch::kernels

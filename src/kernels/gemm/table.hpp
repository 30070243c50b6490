// The micro-kernels of one ISA as a table of function pointers: gemm/avx2.cpp and gemm/avx512.cpp
// each build one from the same templates (gemm/tile.hpp); gemm_packed.cpp picks one per process.
// Private to src/kernels/gemm.
#pragma once

#include <cstdint>

#include "kernels/gemm/gemm_packed.hpp"

namespace tinytorch::kernels {

struct GemmKernels {
  GemmTile tile;
  // lda: 0 for packed A panels, else A's row stride (gemm_packed.hpp).
  void (*micro)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows, int cols,
                Store store, const float* bias);
  void (*panels)(int64_t kc, const float* a, int64_t a_stride, int64_t lda, int64_t m, const float* b, float* c,
                 int64_t ldc, int cols, Store store, const float* bias);
  void (*direct)(int64_t kc, const float* a, int64_t lda, const float* base, const int64_t* offset, float* c,
                 int64_t ldc, int rows, int cols, Store store, const float* bias);
  void (*direct_panels)(int64_t kc, const float* a, int64_t a_stride, int64_t lda, int64_t m, const float* base,
                        const int64_t* offset, float* c, int64_t ldc, int cols, Store store, const float* bias);
  void (*direct_split)(int64_t kc, const float* a, int64_t lda, const float* base0, const float* base1, int split,
                       const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                       const float* bias);
  // gemm/dot.hpp; 1 <= m <= 8.
  void (*dot)(int64_t rows, int64_t K, const float* w, int64_t ldw, const float* x, int64_t ldx, int m, float* y,
              int64_t ldy);
  // The wide tile (gemm_packed.hpp, wide_gemm_tile): nr 0 and no kernels where the ISA has none.
  GemmTile wide;
  void (*wide_panels)(int64_t kc, const float* a, int64_t lda, int64_t m, const float* b, float* c, int64_t ldc,
                      int cols, Store store, const float* bias);
  void (*direct_wide_panels)(int64_t kc, const float* a, int64_t lda, int64_t m, const float* base,
                             const int64_t* offset, float* c, int64_t ldc, int cols, Store store, const float* bias);
};

namespace avx2 {
const GemmKernels& gemm_kernels();
}
namespace avx512 {
const GemmKernels& gemm_kernels();
}

}  // namespace tinytorch::kernels

// Our GEMM micro-kernels for convolution: C[M, N] (+)= A[M, K] B[K, N] on packed panels, with a
// register tile chosen per CPU at run time: 12x32 with AVX-512 (24 zmm accumulators), 6x16 with
// AVX2 + FMA (12 ymm accumulators). Pure functions: no allocation, no threads.
//
// Layouts (MR x NR is the register tile):
//   packed A: [ceil(M / MR)][K][MR]  rows of A interleaved by MR, zero rows past M
//   packed B: [ceil(N / NR)][kc][NR] one panel per NR columns, zero columns past N
// The reference for all of this is conv2d_forward_reference (and plain GEMM in the tests).
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

struct GemmTile {
  int mr, nr;
  const char* isa;  // "avx512" or "avx2"
};

// How a micro-kernel writes its tile: overwrite it (adding the bias, if any), add to what is there
// (a later K block), or overwrite it with non-temporal stores (whole tile rows at aligned
// addresses; other rows as Write). Streaming saves reading each output line before writing it, for
// outputs too big to stay in cache; call stream_fence() before other threads read what was streamed.
enum class Store { Write, Accumulate, Stream };

void stream_fence();

// The tile of the micro-kernel this CPU runs (AVX-512 when the CPU has it).
const GemmTile& packed_gemm_tile();

// a [M, K] row-major (leading dimension lda) -> packed A (see above).
void pack_a(float* dst, const float* a, int64_t M, int64_t K, int64_t lda, int mr);

// One MR x NR tile: c[rows, cols] (ldc) = a_panel [kc][MR] x b_panel [kc][NR], plus bias[r] per
// row when bias is given (Write, Stream), or += (Accumulate: a later K block). rows <= MR, cols <= NR.
// A panels are packed, or with lda > 0 (every kernel below) the rows of a row-major matrix: row r
// of a panel at a_panel + r * lda, taps [0, kc) from there (the caller's weight, not copied); the
// kernels over every panel then take consecutive rows (a_stride = MR * lda).
void gemm_micro(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc, int rows, int cols,
                Store store, const float* bias, int64_t lda = 0);

// gemm_micro over every A panel: c[m, cols] (ldc) = A x b_panel, A's panels a_stride floats apart
// (panel p holds rows p * MR ..), bias[0 .. m) and store as gemm_micro. One call per B panel.
void gemm_micro_panels(int64_t kc, const float* a_panels, int64_t a_stride, int64_t m, const float* b_panel, float* c,
                       int64_t ldc, int cols, Store store, const float* bias, int64_t lda = 0);

// The direct-convolution variant: B is not packed but read in place, row k of the tile being the
// NR floats at base + offset[k] (a zero-padded input image, see ops/conv2d_direct.cpp).
// c[rows, cols] (ldc) = a_panel [kc][MR] x B, plus bias or += as gemm_micro.
// Reads NR floats at every base + offset[k] whatever cols is: the caller provides slack.
void direct_micro(int64_t kc, const float* a_panel, const float* base, const int64_t* offset, float* c, int64_t ldc,
                  int rows, int cols, Store store, const float* bias, int64_t lda = 0);

// direct_micro over every A panel of a group: c[m, cols] (ldc) = A x B, A's panels a_stride floats
// apart (panel p holds rows p * MR ..), B read as direct_micro reads it, bias[0 .. m) and store as
// direct_micro. One call per pixel tile.
void direct_micro_panels(int64_t kc, const float* a_panels, int64_t a_stride, int64_t m, const float* base,
                         const int64_t* offset, float* c, int64_t ldc, int cols, Store store, const float* bias,
                         int64_t lda = 0);

// The same for a tile whose NR pixels straddle two images: lanes [0, split) read B rows at
// base0 + offset[k] and go to c0, lanes [split, cols) read base1 + offset[k] (pixel lane - split of
// the second image) and go to c1. 0 < split < cols <= NR. Neither image is read past its slack.
void direct_micro_split(int64_t kc, const float* a_panel, const float* base0, const float* base1, int split,
                        const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                        const float* bias, int64_t lda = 0);

// The wide tile: 3 vectors of pixels (AVX-512: 48) by 2 MR / 3 rows (8), for a run of pixels whose
// last 2-vector tile would be mostly empty (a 7x7 image, 49 = 32 + 17, is one wide tile and one
// pixel for dot_rows). A is always rows read in place (lda > 0, rows [0, m) consecutive), B a
// packed panel [kc][nr] (gemm_wide_panels) or read as direct_micro reads it (direct_wide_panels,
// nr floats at every base + offset[k]: the caller provides slack). c[m, cols] (ldc), bias and store
// as gemm_micro_panels (Stream written as Write). wide_gemm_tile().nr is 0 where the ISA has no
// wide tile (AVX2: 3 vectors of accumulators by 4 rows would leave too few registers; its 16-pixel
// tiles leave a 7x7 image 1 pixel): then neither kernel may be called.
const GemmTile& wide_gemm_tile();
void gemm_wide_panels(int64_t kc, const float* a, int64_t lda, int64_t m, const float* b_panel, float* c, int64_t ldc,
                      int cols, Store store, const float* bias);
void direct_wide_panels(int64_t kc, const float* a, int64_t lda, int64_t m, const float* base, const int64_t* offset,
                        float* c, int64_t ldc, int cols, Store store, const float* bias);

// y[n * ldy + o] = x[n * ldx + 0 .. K) . w[o * ldw + 0 .. K) for vectors n < m and weight rows
// o < rows: a few vectors against a row-major weight read as it lies, 4 vectors at a time
// (gemm/dot.hpp). Linear layers and whole-image convolutions at batch 1 to 8, where sgemm would
// copy the weight into packed panels to use each a few times.
// Up to this many vectors the callers take dot_rows over sgemm (measured in docs/PERFORMANCE.md,
// "Dot products of a few rows").
constexpr int64_t kDotRowsBatch = 8;
void dot_rows(int64_t rows, int64_t K, const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy);

}  // namespace tinytorch::kernels

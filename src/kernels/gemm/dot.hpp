// Products of a few vectors with a row-major weight, read once as it lies: y[n, o] = x[n, :] .
// w[o, :] for up to 4 vectors at a time (linear layers and whole-image convolutions at batch 1 to
// 8: gemm_packed.cpp's dot_rows takes the vectors 4 at a time), written once for any vector type V
// (simd/avx2.hpp, simd/avx512.hpp).
//
// Each block of R weight rows is streamed once against the M vectors: R x M accumulators, every
// weight vector loaded once and multiplied into M of them, each vector's chunk loaded once per
// block. R is the most rows (up to 8) whose R x M accumulators fit in half the registers (16 zmm,
// 8 ymm), the other half holding the loads. Whole rows are summed into the accumulators, then the
// lane sums of all of them at once (lane_sums). At batch 1 the weight's stream from L3 or memory is
// the cost; 4 vectors, not 8, per pass: with 8 (2 rows a block) the vectors' 40 KB (1280 inputs)
// left L1 and every multiply-add waited on a load (1x1280 -> 1000 at batch 8: 323-382 us, 4 at a
// time 243-274, ONNX Runtime 174-225).
// Included only by the ISA files gemm/avx2.cpp and gemm/avx512.cpp; internal linkage throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace tinytorch::kernels {
namespace {

// Each weight row is prefetched 512 bytes ahead of its loads: at batch 1 the row streams from L3 or
// memory, and 1x1280 -> 1000 went from 141-152 to 119-155 us (noisy VM; ONNX Runtime 110-160).
constexpr int64_t kDotPrefetch = 128;

template <class V>
constexpr int dot_block_rows(int m) {
  const int accumulators = V::width == 16 ? 16 : 8;
  int r = 8;
  while (r > 1 && r * m > accumulators) r /= 2;
  return r;
}

// The lane sums of n <= W vectors, out[i] = v[i]'s, by a tree of folds: a fold adds the two halves
// of each segment of two vectors into one vector, a's and b's folded segments interleaved; log2 W
// levels leave one vector of W sums, vector i's in lane bitrev(i), so the vectors go in bit-reversed
// order. 2W - 1 shuffles and W - 1 adds for W sums, where a horizontal sum per vector takes 2 log2 W
// each; the order is fixed, so are the bits.
constexpr int bit_reverse(int i, int bits) {
  int r = 0;
  for (int b = 0; b < bits; ++b) r |= (i >> b & 1) << (bits - 1 - b);
  return r;
}

// Lane p of a fold of two vectors of W lanes whose segments are `len` long: the first (or, high,
// second) half of segment p / (len / 2) / 2 of vector p / (len / 2) % 2 (a, then b, in
// __builtin_shufflevector's numbering).
constexpr int fold_lane(int W, int len, int p, bool high) {
  const int half = len / 2, out_segment = p / half;
  return out_segment % 2 * W + out_segment / 2 * len + p % half + (high ? half : 0);
}

template <int W, int Len, class G, size_t... P>
G fold(G a, G b, std::index_sequence<P...>) {
  return __builtin_shufflevector(a, b, fold_lane(W, Len, P, false)...) +
         __builtin_shufflevector(a, b, fold_lane(W, Len, P, true)...);
}

template <int W, int Len, class G>
void fold_level(G* v, int count) {
  for (int i = 0; i < count / 2; ++i) v[i] = fold<W, Len>(v[2 * i], v[2 * i + 1], std::make_index_sequence<W>{});
  if constexpr (Len > 2) fold_level<W, Len / 2>(v, count / 2);
}

template <class V, int N>
void lane_sums(const typename V::reg (&acc)[N], float* out) {
  constexpr int W = V::width, bits = W == 16 ? 4 : 3;
  static_assert(N <= W && (1 << bits) == W);
  using G = typename V::gcc_vec;
  G v[W];
  for (int j = 0; j < W; ++j) {
    const int i = bit_reverse(j, bits);
    v[j] = i < N ? reinterpret_cast<const G&>(acc[i]) : G{};
  }
  fold_level<W, W>(v, W);
  __builtin_memcpy(out, &v[0], sizeof(float) * N);
}

// Rows [0, rows) of one block, rows <= R; rows past `rows` read the last one again (not stored).
template <class V, int R, int M>
void dot_block(int64_t K, const float* w, int64_t ldw, int rows, const float* x, int64_t ldx, float* y, int64_t ldy) {
  constexpr int W = V::width;
  alignas(64) static const float kZeros[W] = {};
  const float* row[R];
  for (int r = 0; r < R; ++r) row[r] = w + (r < rows ? r : rows - 1) * ldw;
  typename V::reg acc[R * M];  // row r, vector n at r * M + n
  for (typename V::reg& a : acc) a = V::zero();
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    typename V::reg xv[M];
    for (int n = 0; n < M; ++n) xv[n] = V::load(x + n * ldx + k);
    for (int r = 0; r < R; ++r) {
      __builtin_prefetch(row[r] + k + kDotPrefetch);
      const typename V::reg wv = V::load(row[r] + k);
      for (int n = 0; n < M; ++n) acc[r * M + n] = V::fmadd(wv, xv[n], acc[r * M + n]);
    }
  }
  if (k < K) {  // the last K % W taps: masked loads, zero in the other lanes
    const typename V::Mask tail = V::first(static_cast<int>(K - k));
    typename V::reg xv[M];
    for (int n = 0; n < M; ++n) xv[n] = V::load_blend(tail, x + n * ldx + k, kZeros);
    for (int r = 0; r < R; ++r) {
      const typename V::reg wv = V::load_blend(tail, row[r] + k, kZeros);
      for (int n = 0; n < M; ++n) acc[r * M + n] = V::fmadd(wv, xv[n], acc[r * M + n]);
    }
  }
  float sums[R * M];
  lane_sums<V>(acc, sums);
  for (int r = 0; r < rows; ++r)
    for (int n = 0; n < M; ++n) y[n * ldy + r] = sums[r * M + n];
}

template <class V, int M>
void dot_rows_of(int64_t rows, int64_t K, const float* w, int64_t ldw, const float* x, int64_t ldx, float* y,
                 int64_t ldy) {
  constexpr int R = dot_block_rows<V>(M);
  for (int64_t o = 0; o < rows; o += R) {
    const int n = static_cast<int>(rows - o < R ? rows - o : R);
    dot_block<V, R, M>(K, w + o * ldw, ldw, n, x, ldx, y + o, ldy);
  }
}

template <class V>
void dot_rows(int64_t rows, int64_t K, const float* w, int64_t ldw, const float* x, int64_t ldx, int m, float* y,
              int64_t ldy) {
  switch (m) {
    case 1:
      return dot_rows_of<V, 1>(rows, K, w, ldw, x, ldx, y, ldy);
    case 2:
      return dot_rows_of<V, 2>(rows, K, w, ldw, x, ldx, y, ldy);
    case 3:
      return dot_rows_of<V, 3>(rows, K, w, ldw, x, ldx, y, ldy);
    default:
      return dot_rows_of<V, 4>(rows, K, w, ldw, x, ldx, y, ldy);
  }
}

}  // namespace
}  // namespace tinytorch::kernels

// ocblock.hpp's register block, written once for any vector type V of the simd headers. Included
// only by the ISA files ocblock/avx2.cpp and avx512.cpp; internal linkage throughout.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/ocblock/ocblock.hpp"

namespace tinytorch::kernels {
namespace {

// NP pixels x V::width channels, NP accumulators; Linear: pixel j's tap 0 at window + j (one
// address register, displacements), else at window + base[j]. The same multiply-adds in the same
// order as ocblock.cpp's GCC-vector blocks: the same bits.
template <class V, int NP, bool Linear>
void vector_block(const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
                  float* acc_io, bool first) {
  constexpr int L = V::width;
  typename V::reg acc[NP];
#pragma GCC unroll 12
  for (int j = 0; j < NP; ++j) acc[j] = first ? V::zero() : V::load(acc_io + j * L);
  const float* px[NP];
  if constexpr (!Linear) {
#pragma GCC unroll 12
    for (int j = 0; j < NP; ++j) px[j] = window + base[j];
  }
  for (int64_t k = 0; k < K; ++k) {
    const typename V::reg wv = V::load(w + k * L);
    const int64_t o = offset[k];
#pragma GCC unroll 12
    for (int j = 0; j < NP; ++j) acc[j] = V::fmadd(V::broadcast(Linear ? window + o + j : px[j] + o), wv, acc[j]);
  }
#pragma GCC unroll 12
  for (int j = 0; j < NP; ++j) V::store(acc_io + j * L, acc[j]);
}

// Two vectors of channels per pixel (weights w0, w1; sums acc0, acc1), 2 NP accumulators.
template <class V, int NP, bool Linear>
void vector_block2(const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w0,
                   const float* w1, float* acc0, float* acc1, bool first) {
  constexpr int L = V::width;
  typename V::reg a0[NP], a1[NP];
#pragma GCC unroll 12
  for (int j = 0; j < NP; ++j) {
    a0[j] = first ? V::zero() : V::load(acc0 + j * L);
    a1[j] = first ? V::zero() : V::load(acc1 + j * L);
  }
  const float* px[NP];
  if constexpr (!Linear) {
#pragma GCC unroll 12
    for (int j = 0; j < NP; ++j) px[j] = window + base[j];
  }
  for (int64_t k = 0; k < K; ++k) {
    const typename V::reg v0 = V::load(w0 + k * L), v1 = V::load(w1 + k * L);
    const int64_t o = offset[k];
#pragma GCC unroll 12
    for (int j = 0; j < NP; ++j) {
      const typename V::reg x = V::broadcast(Linear ? window + o + j : px[j] + o);
      a0[j] = V::fmadd(x, v0, a0[j]);
      a1[j] = V::fmadd(x, v1, a1[j]);
    }
  }
#pragma GCC unroll 12
  for (int j = 0; j < NP; ++j) V::store(acc0 + j * L, a0[j]), V::store(acc1 + j * L, a1[j]);
}

template <class V, int NP = 12>
void vector_block2_of(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K,
                      const float* w0, const float* w1, float* acc0, float* acc1, bool first) {
  if constexpr (NP > 0) {
    if (np == NP) {
      if (base == nullptr) return vector_block2<V, NP, true>(window, base, offset, K, w0, w1, acc0, acc1, first);
      return vector_block2<V, NP, false>(window, base, offset, K, w0, w1, acc0, acc1, first);
    }
    vector_block2_of<V, NP - 1>(np, window, base, offset, K, w0, w1, acc0, acc1, first);
  }
}

template <class V, int NP = 12>
void vector_block_of(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
                     float* acc, bool first) {
  if constexpr (NP > 0) {
    if (np == NP) {
      if (base == nullptr) return vector_block<V, NP, true>(window, base, offset, K, w, acc, first);
      return vector_block<V, NP, false>(window, base, offset, K, w, acc, first);
    }
    vector_block_of<V, NP - 1>(np, window, base, offset, K, w, acc, first);
  }
}

// M pixels per vector (2 or 4) for blocks of C = V::width / M output channels: lane c M + e holds
// channel c of pixel e of the vector's M, whose tap is then M consecutive window floats (the block
// is linear: pixel j's tap 0 at window + j), one load repeating them across the vector
// (broadcast_group); the weights' tap vector holds each channel's weight M times (lane c M + e:
// channel c). The sums go to and from acc_io in [pixel][C] order, a permutation per vector.
template <int W, int M>
struct Interleave {
  static constexpr int C = W / M;
  static constexpr std::array<int32_t, W> to_plain = [] {  // [e C + c] = c M + e
    std::array<int32_t, W> a{};
    for (int e = 0; e < M; ++e)
      for (int c = 0; c < C; ++c) a[e * C + c] = c * M + e;
    return a;
  }();
  static constexpr std::array<int32_t, W> from_plain = [] {  // [c M + e] = e C + c
    std::array<int32_t, W> a{};
    for (int e = 0; e < M; ++e)
      for (int c = 0; c < C; ++c) a[c * M + e] = e * C + c;
    return a;
  }();
};

// np pixels, (NB - 1) M < np <= NB M, in NB accumulators; acc_io holds np x C floats (the last
// vector's pixels past np are computed and not stored). The same multiply-adds in the same order
// as the other blocks: the same bits.
template <class V, int M, int NB>
void interleaved_block(int np, const float* window, const int64_t* offset, int64_t K, const float* w, float* acc_io,
                       bool first) {
  constexpr int W = V::width, C = W / M;
  using I = Interleave<W, M>;
  const int tail = (np - (NB - 1) * M) * C;  // floats of acc_io in the last vector
  typename V::reg acc[NB];
  if (first) {
#pragma GCC unroll 12
    for (int b = 0; b < NB; ++b) acc[b] = V::zero();
  } else {
#pragma GCC unroll 12
    for (int b = 0; b + 1 < NB; ++b) acc[b] = V::permute(V::load(acc_io + b * W), I::from_plain.data());
    alignas(64) float last[W] = {};
    __builtin_memcpy(last, acc_io + (NB - 1) * W, sizeof(float) * static_cast<size_t>(tail));
    acc[NB - 1] = V::permute(V::load(last), I::from_plain.data());
  }
  for (int64_t k = 0; k < K; ++k) {
    const typename V::reg wv = V::load(w + k * W);
    const float* x = window + offset[k];
#pragma GCC unroll 12
    for (int b = 0; b < NB; ++b) acc[b] = V::fmadd(V::template broadcast_group<M>(x + b * M), wv, acc[b]);
  }
#pragma GCC unroll 12
  for (int b = 0; b + 1 < NB; ++b) V::store(acc_io + b * W, V::permute(acc[b], I::to_plain.data()));
  alignas(64) float last[W];
  V::store(last, V::permute(acc[NB - 1], I::to_plain.data()));
  __builtin_memcpy(acc_io + (NB - 1) * W, last, sizeof(float) * static_cast<size_t>(tail));
}

template <class V, int M, int NB = 12>
void interleaved_block_of(int np, const float* window, const int64_t* offset, int64_t K, const float* w, float* acc,
                          bool first) {
  if constexpr (NB > 0) {
    if (np > (NB - 1) * M) return interleaved_block<V, M, NB>(np, window, offset, K, w, acc, first);
    interleaved_block_of<V, M, NB - 1>(np, window, offset, K, w, acc, first);
  }
}

}  // namespace
}  // namespace tinytorch::kernels

// ocblock.hpp's register block, written once for any vector type V of the simd headers. Included
// only by the ISA files ocblock/avx2.cpp and avx512.cpp; internal linkage throughout.
#pragma once

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

}  // namespace
}  // namespace tinytorch::kernels

// The blocked layout's kernels (blocked/kernel.hpp) for Avx2: blocks of 8 channels; and the same
// at 16 lanes, two registers a vector, so that an AVX2 machine's tests run AVX-512's layout.
// Compiled with avx2's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx2.hpp"

#include "kernels/blocked/kernel.hpp"
#include "kernels/blocked/table.hpp"

namespace tinytorch::kernels::avx2 {

const BlockedKernels& blocked_kernels() {
  static const BlockedKernels table{Avx2::width, &blocked_item<Avx2>};
  return table;
}

namespace {

// 16 lanes as two AVX2 registers: the blocked kernels' operations at AVX-512's width.
struct Avx2Pair {
  struct reg {
    __m256 lo, hi;
  };
  static constexpr int width = 16;
  static reg zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static reg broadcast(const float* p) { return {_mm256_broadcast_ss(p), _mm256_broadcast_ss(p)}; }
  static reg load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v.lo), _mm256_storeu_ps(p + 8, v.hi); }
  static reg set1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static reg add(reg a, reg b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static reg max(reg a, reg b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
  static reg min(reg a, reg b) { return {_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)}; }
  static reg fmadd(reg a, reg b, reg c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
  }
};

}  // namespace

const BlockedKernels& blocked_kernels_wide() {
  static const BlockedKernels table{Avx2Pair::width, &blocked_item<Avx2Pair>};
  return table;
}

}  // namespace tinytorch::kernels::avx2

// The FMA peak probe's chains, written once for any vector type V (simd/avx2.hpp, simd/avx512.hpp).
// Included only by the ISA files peak/avx2.cpp and avx512.cpp; internal linkage.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {
namespace {
template <class V>
float fma_chains(int64_t iterations) {
  typename V::reg acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = V::set1(static_cast<float>(i) * 1e-3f);
  const typename V::reg a = V::set1(0.999999f), b = V::set1(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = V::fmadd(acc[i], a, b);
  }
  typename V::reg s = acc[0];
  for (int i = 1; i < 12; ++i) s = V::add(s, acc[i]);
  alignas(64) float out[V::width];
  V::store(out, s);
  return out[0];
}
}  // namespace

}  // namespace tinytorch::kernels

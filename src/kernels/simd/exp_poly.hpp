// exp and the sigmoid as polynomials, written once for a float or a GCC vector of floats F, I its
// int32 counterpart (a float and int32_t, or vectors of as many lanes): the scalar epilogue
// (activation.cpp, which the compiler vectorizes) and the blocked kernels' fused stores
// (blocked/kernel.hpp, at their vector width) compute the same values with the same operations.
// Internal linkage and no std:: templates: ISA translation units include it (ARCHITECTURE.md,
// "ISA").
#pragma once

#include <cstdint>

#include "kernels/activation.hpp"

namespace tinytorch::kernels {
namespace {

// exp(x): x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts so that r is exact), exp(r) by
// a degree-6 minimax polynomial, times 2^n built in the exponent bits as 2^(n/2) * 2^(n - n/2),
// so that results down in the subnormals (x to -104, where exp rounds to 0) come out right too,
// and from 88.8 on the product overflows to inf as exp does. NaN stays NaN; x is first clamped to
// [-104, 100], beyond which the result is 0 or inf anyway.
template <class F, class I>
inline F exp_poly(F in) {
  const F lo = F{} - 104.0f, hi = F{} + 100.0f;
  F x = in < -104.0f ? lo : in;  // NaN passes through both
  x = x > 100.0f ? hi : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const F t = x * 1.44269504088896341f + shifter;
  const F n = t - shifter;
  F r = x - n * 0.693359375f;   // ln2, high part (exact in float)
  r = r - n * -2.12194440e-4f;  // ln2, low part
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // n as an integer from t's low mantissa bits (no float-to-int conversion, defined for any t).
  const I k = __builtin_bit_cast(I, t) - __builtin_bit_cast(int32_t, shifter);
  const I half = k >> 1;
  const F scale1 = __builtin_bit_cast(F, (half + 127) << 23);
  const F scale2 = __builtin_bit_cast(F, (k - half + 127) << 23);
  const F e = p * scale1 * scale2;
  return in != in ? in : e;
}

// 1 / (1 + exp(-x)) from e = exp(-|x|), which never overflows: s = 1 / (1 + e) for x >= 0, e * s
// below (so that sigmoid of a large negative x keeps its tiny value instead of becoming 1 / inf).
template <class F, class I>
inline F sigmoid_poly(F x) {
  const F e = exp_poly<F, I>(x < 0.0f ? x : -x);
  const F s = 1.0f / (1.0f + e);
  return x < 0.0f ? e * s : s;
}

// min(max(a * x + b, 0), 1), NaN kept.
template <class F>
inline F hard_sigmoid_of(F x, float a, float b) {
  const F y = a * x + b, zero = F{}, one = F{} + 1.0f;
  return y < 0.0f ? zero : (y > 1.0f ? one : y);
}

// The smooth activations (not a clamp) of activation.hpp on x, with the epilogue's a and b: one
// definition for the scalar epilogue and the blocked kernels' stores.
template <Activation A, class F, class I>
inline F smooth_activation_of(F x, float a, float b) {
  if constexpr (A == Activation::LeakyRelu) return x < 0.0f ? a * x : x;
  if constexpr (A == Activation::HardSigmoid) return hard_sigmoid_of(x, a, b);
  if constexpr (A == Activation::Sigmoid) return sigmoid_poly<F, I>(x);
  if constexpr (A == Activation::HardSwish) return x * hard_sigmoid_of(x, a, b);
  if constexpr (A == Activation::Swish) return x * sigmoid_poly<F, I>(x);
  return x;
}

}  // namespace
}  // namespace tinytorch::kernels

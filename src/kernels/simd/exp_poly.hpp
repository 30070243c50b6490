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

// exp(z) for z <= 0 (or NaN), as the sigmoid needs it: z = n ln2 + r with |r| <= ln2 / 2 (ln2
// split in two parts so that r is exact), exp(r) by a degree-6 minimax polynomial, times 2^n built
// in the exponent bits as 2^(n/2) * 2^(n - n/2), so that results down in the subnormals (z to
// -104, where exp rounds to 0) come out right too. z is first clamped to -104, below which the
// result is 0 anyway; a NaN fails the compare and goes through every step as NaN. Only a
// non-positive argument: no overflow to guard, no clamp above (each select is two instructions in
// a function that is the swish layers' whole epilogue).
template <class F, class I>
inline F exp_nonpositive(F z) {
  const F lo = F{} - 104.0f;
  const F x = z < -104.0f ? lo : z;
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
  return p * scale1 * scale2;
}

// The sigmoid as e / (1 + e) below 0 and 1 / (1 + e) above, from e = exp(-|x|), which never
// overflows (the sigmoid of a large negative x keeps its tiny value instead of becoming 1 / inf):
// one division, one rounding, with the numerator chosen by x's sign. The swish multiplies x into
// the numerator before the division (sigmoid_fraction's `times`).
template <class F, class I>
inline F sigmoid_fraction(F x, F times) {
  const F minus_abs = __builtin_bit_cast(F, __builtin_bit_cast(I, x) | (-2147483647 - 1));
  const F e = exp_nonpositive<F, I>(minus_abs);
  const F one = F{} + 1.0f;
  const F numerator = x < 0.0f ? e : one;
  return times * numerator / (one + e);
}

template <class F, class I>
inline F sigmoid_poly(F x) {
  return sigmoid_fraction<F, I>(x, F{} + 1.0f);
}

// x * sigmoid(x) as one fraction: x * numerator / (1 + e).
template <class F, class I>
inline F swish_poly(F x) {
  return sigmoid_fraction<F, I>(x, x);
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
  if constexpr (A == Activation::Swish) return swish_poly<F, I>(x);
  return x;
}

}  // namespace
}  // namespace tinytorch::kernels

// Dropout's kernels, with a plain reference beside them. The op (src/ops/normalization.cpp) draws
// one uniform in [0, 1) per element from the generator, in order, into the mask buffer; the
// kernels turn them into the mask and apply it. Pure functions: no allocation, no threads.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

// In place: mask[i] = 0 where the uniform mask[i] < p (dropped), else scale (kept: 1 / (1 - p)).
void dropout_mask(float* mask, int64_t n, double p, float scale);

// out[i] = in[i] * mask[i].
void dropout_apply(float* out, const float* in, const float* mask, int64_t n);

// The whole forward from the uniforms u, in double: out[i] = u[i] < p ? 0 : in[i] / (1 - p)
// (p = 1 drops everything).
void dropout_forward_reference(float* out, const float* in, const float* u, int64_t n, double p);

}  // namespace tinytorch::kernels

// Dropout's kernels (dropout.hpp): two flat loops the compiler vectorises.
#include "kernels/dropout.hpp"

namespace tinytorch::kernels {

void dropout_mask(float* mask, int64_t n, double p, float scale) {
  for (int64_t i = 0; i < n; ++i) mask[i] = static_cast<double>(mask[i]) < p ? 0.0f : scale;
}

void dropout_apply(float* out, const float* in, const float* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] * mask[i];
}

}  // namespace tinytorch::kernels

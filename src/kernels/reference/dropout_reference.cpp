// Dropout's reference (dropout.hpp): one element at a time, in double.
#include "kernels/dropout.hpp"

namespace tinytorch::kernels {

void dropout_forward_reference(float* out, const float* in, const float* u, int64_t n, double p) {
  for (int64_t i = 0; i < n; ++i) {
    const bool dropped = static_cast<double>(u[i]) < p;
    out[i] = dropped || p >= 1.0 ? 0.0f : static_cast<float>(static_cast<double>(in[i]) / (1.0 - p));
  }
}

}  // namespace tinytorch::kernels

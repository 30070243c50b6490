// linear_forward_reference: dot products with double accumulation; the oracle for the GEMM path.
#include "kernels/linear.hpp"

namespace tinytorch::kernels {

void linear_forward_reference(float* out, const float* in, const float* weight, const float* bias, int64_t N,
                              int64_t IN, int64_t OUT) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < OUT; ++o) {
      double sum = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < IN; ++i) sum += static_cast<double>(in[n * IN + i]) * weight[o * IN + i];
      out[n * OUT + o] = static_cast<float>(sum);
    }
  }
}

}  // namespace tinytorch::kernels

// Linear (fully connected) kernels: pure functions on raw pointers.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

// out [N, OUT] = in [N, IN] x weight[OUT, IN]^T + bias [OUT] (bias may be nullptr).
void linear_forward_reference(float* out, const float* in, const float* weight, const float* bias, int64_t N,
                              int64_t IN, int64_t OUT);

}  // namespace tinytorch::kernels

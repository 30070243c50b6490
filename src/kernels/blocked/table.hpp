// The blocked layout's kernels of one ISA (blocked.hpp): blocked/avx2.cpp and avx512.cpp each
// provide one from kernel.hpp; blocked.cpp picks one per process. Private to src/kernels/blocked.
#pragma once

#include <cstdint>

#include "kernels/blocked/blocked.hpp"

namespace tinytorch::kernels {

struct BlockedKernels {
  int64_t lanes;
  void (*item)(float* out, const float* in, const float* weight, const float* bias, const BlockedConv& g, int64_t n,
               int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1, float* scratch, const OutputStage& stage);
};

namespace avx2 {
const BlockedKernels& blocked_kernels();
const BlockedKernels& blocked_kernels_wide();  // 16 lanes in pairs of AVX2 registers (tests)
}  // namespace avx2
namespace avx512 {
const BlockedKernels& blocked_kernels();
}

}  // namespace tinytorch::kernels

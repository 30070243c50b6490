// The FMA peak probe (tinytorch::measure_fma_peak_gflops): 12 independent chains of vector
// multiply-adds, as many as the micro-kernel's accumulators, so the FMA units never wait on a result.
// peak/avx2.cpp and avx512.cpp instantiate it; fma_peak_kernels() is the one this process runs.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

struct PeakKernels {
  int lanes;  // floats per vector
  // 12 chains of `iterations` multiply-adds each; returns a value that depends on all of them.
  float (*fma_chains)(int64_t iterations);
};

const PeakKernels& fma_peak_kernels();

namespace avx2 {
const PeakKernels& peak_kernels();
}
namespace avx512 {
const PeakKernels& peak_kernels();
}

}  // namespace tinytorch::kernels

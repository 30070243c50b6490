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

// One run of `probe`'s 12 chains of `iterations` multiply-adds each on the calling thread, in FMA
// lanes per second.
double fma_lanes_per_second(const PeakKernels& probe, int64_t iterations);

// Whether this CPU's 512-bit FMAs do twice the work per second of its 256-bit ones (Intel's cores
// with two 512-bit FMA units), not the same (AMD's Zen 4, whose 512-bit operations run at the
// rate of its 256-bit units). Measured once per process, on the calling thread, the first time it
// is asked: wide_fma_rate_ratio() > 1.5; false when the kernels run AVX2. Rules that pick a
// kernel for its 16-lane vectors ask it (conv2d_select.cpp).
bool wide_fma_doubles_rate();
// The measurement behind it, made again at every call: the two probes in turn on the calling
// thread, about 2 ms in all; 1 when the kernels run AVX2.
double wide_fma_rate_ratio();

namespace avx2 {
const PeakKernels& peak_kernels();
}
namespace avx512 {
const PeakKernels& peak_kernels();
}

}  // namespace tinytorch::kernels

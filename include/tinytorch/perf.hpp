// Measuring this machine: the FP32 FMA peak that benchmarks report percentages of.
#pragma once

namespace tinytorch {

// Runs an AVX2 FMA loop (12 independent accumulators, enough to hide the FMA latency on both
// pipes) on `threads` threads for about `seconds`, and returns the GFLOP/s reached (an FMA counts
// 2 FLOP per lane).
double measure_fma_peak_gflops(int threads, double seconds = 0.2);

}  // namespace tinytorch

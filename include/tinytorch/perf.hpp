// Measuring this machine: the FP32 FMA peak that benchmarks report percentages of.
#pragma once

namespace tinytorch {

// The widest vector ISA this CPU runs tinytorch's kernels with: "avx512" or "avx2".
const char* peak_isa();

// Runs an FMA loop in that ISA (12 independent accumulators, enough to hide the FMA latency on both
// pipes) on `threads` threads for about `seconds`, and returns the GFLOP/s reached (an FMA counts
// 2 FLOP per lane). threads in [1, kMaxThreads], seconds in (0, 60]; ArgumentError otherwise.
double measure_fma_peak_gflops(int threads, double seconds = 0.2);

}  // namespace tinytorch

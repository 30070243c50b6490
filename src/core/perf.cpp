// measure_fma_peak_gflops: the machine's FP32 peak, measured rather than looked up.
#include "tinytorch/perf.hpp"

#include <omp.h>

#include <chrono>
#include <string>

#include "kernels/cpu.hpp"
#include "kernels/peak/peak.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch {

const char* peak_isa() { return kernels::isa_name(kernels::cpu_isa()); }

double measure_fma_peak_gflops(int threads, double seconds) {
  if (threads < 1 || threads > kMaxThreads) {
    throw ArgumentError("measure_fma_peak_gflops: expected threads in [1, " + std::to_string(kMaxThreads) + "], got " +
                        std::to_string(threads));
  }
  if (!(seconds > 0 && seconds <= 60)) {
    throw ArgumentError("measure_fma_peak_gflops: expected seconds in (0, 60], got " + std::to_string(seconds));
  }
  using clock = std::chrono::steady_clock;
  const int64_t chunk = 1 << 20;  // 12 * 8 * 2 * 2^20 = 201 MFLOP per chunk per thread
  const kernels::PeakKernels& probe = kernels::fma_peak_kernels();
  const double lanes = probe.lanes;
  double best = 0.0;
  volatile float sink = 0.0f;
  const auto deadline = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < deadline) {
    const auto t0 = clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + probe.fma_chains(chunk); }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 12.0 * lanes * 2 * static_cast<double>(chunk) * threads / dt / 1e9);
  }
  return best;
}

}  // namespace tinytorch

#include "kernels/peak/peak.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/verbose.hpp"
#include "kernels/cpu.hpp"

namespace tinytorch::kernels {

const PeakKernels& fma_peak_kernels() {
  static const PeakKernels& kernels = isa_table("fma peak probe", &avx2::peak_kernels, &avx512::peak_kernels);
  return kernels;
}

double fma_lanes_per_second(const PeakKernels& probe, int64_t iterations) {
  using clock = std::chrono::steady_clock;
  volatile float sink = 0.0f;
  const auto t0 = clock::now();
  sink = sink + probe.fma_chains(iterations);
  const double dt = std::chrono::duration<double>(clock::now() - t0).count();
  return 12.0 * probe.lanes * static_cast<double>(iterations) / std::max(dt, 1e-9);
}

double wide_fma_rate_ratio() {
  if (cpu_isa() != Isa::Avx512) return 1.0;
  // 4096 iterations of 12 chains: 0.8 MFLOP with 16 lanes, 30-60 us. First one run 4 times as long
  // unmeasured: a core whose 512-bit units were idle runs them at a reduced rate for a while after
  // the first wide instruction. Then alternating rounds, the best of each: a clock that is still
  // rising, or a neighbour's burst, cannot favour one.
  const int64_t iterations = 4096;
  fma_lanes_per_second(avx512::peak_kernels(), 4 * iterations);
  double wide = 0.0, narrow = 0.0;
  for (int round = 0; round < 16; ++round) {
    wide = std::max(wide, fma_lanes_per_second(avx512::peak_kernels(), iterations));
    narrow = std::max(narrow, fma_lanes_per_second(avx2::peak_kernels(), iterations));
  }
  return wide / narrow;
}

bool wide_fma_doubles_rate() {
  static const bool doubles = [] {
    if (cpu_isa() != Isa::Avx512) return false;
    const double ratio = wide_fma_rate_ratio();
    if (verbose_enabled()) {
      char text[64];
      std::snprintf(text, sizeof text, "%.2f", ratio);
      verbose_log(std::string("512-bit FMAs at ") + text + "x the 256-bit ones' rate (measured)");
    }
    return ratio > 1.5;  // the two kinds of CPU measure near 2 and near 1
  }();
  return doubles;
}

}  // namespace tinytorch::kernels

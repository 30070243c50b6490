// measure_fma_peak_gflops: the machine's FP32 peak, measured rather than looked up.
#include "tinytorch/perf.hpp"

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <string>

#include "kernels/cpu.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch {

namespace {

// 12 chains of FMAs, `iterations` long; returns a value that depends on all of them.
__attribute__((target("avx2,fma"))) float fma_chains(int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

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
  const bool wide = std::string(peak_isa()) == "avx512";
  const double lanes = wide ? 16 : 8;
  double best = 0.0;
  volatile float sink = 0.0f;
  const auto deadline = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < deadline) {
    const auto t0 = clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + (wide ? fma_chains_avx512(chunk) : fma_chains(chunk)); }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 12.0 * lanes * 2 * static_cast<double>(chunk) * threads / dt / 1e9);
  }
  return best;
}

}  // namespace tinytorch

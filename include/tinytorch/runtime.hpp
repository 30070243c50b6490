// Process-wide runtime settings: the number of threads tinytorch's kernels use.
#pragma once

#include <cstdint>

namespace tinytorch {

// The most threads set_num_threads and measure_fma_peak_gflops take: far beyond any CPU this
// library targets, and well below where OpenMP runtimes fail to start a team.
constexpr int kMaxThreads = 1024;

// Threads for tinytorch's kernels (default: the number of cores), in [1, kMaxThreads];
// ArgumentError otherwise.
void set_num_threads(int n);
int get_num_threads();

// Bytes held by tensor storage that tinytorch allocated (not memory borrowed from numpy): now, and
// the most at any point since the last reset. The blocks kept for reuse are not counted.
struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
};
MemoryStats memory_stats();
void reset_peak_memory();

}  // namespace tinytorch

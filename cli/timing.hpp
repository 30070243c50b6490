// Timing helper for the analysis commands: the median of repeated runs after one warm-up.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace tinytorch::cli {

// Runs fn once to warm up, then at least min_reps times and until min_seconds have passed
// (at most max_reps); returns the median time of one run in seconds.
template <class Fn>
double median_seconds(Fn&& fn, int min_reps = 5, double min_seconds = 0.05, int max_reps = 1000) {
  using clock = std::chrono::steady_clock;
  fn();
  std::vector<double> times;
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < max_reps &&
         (static_cast<int>(times.size()) < min_reps ||
          std::chrono::duration<double>(clock::now() - start).count() < min_seconds)) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace tinytorch::cli

// Runtime settings. The thread count is read by parallel_for (src/core/parallel.hpp).
#include "tinytorch/runtime.hpp"

#include <atomic>
#include <string>
#include <thread>

#include "tinytorch/errors.hpp"

namespace tinytorch {
namespace {

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int>& thread_setting() {
  static std::atomic<int> n{default_threads()};
  return n;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw ShapeError("set_num_threads: expected a positive thread count, got " + std::to_string(n));
  thread_setting().store(n);
}

int get_num_threads() { return thread_setting().load(); }

}  // namespace tinytorch

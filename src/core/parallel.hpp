// parallel_for: the one place tinytorch starts threads (OpenMP underneath).
//
// Work is split over independent output items with a static schedule, and each item is computed
// the same way whichever thread runs it, so results are bit-identical for any thread count.
// OpenBLAS is pinned to one thread (see blas.hpp): tinytorch threads, BLAS runs inside.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include "core/contract.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch {

int omp_thread_index();  // this thread's index inside a parallel region (0 outside)

// Below this much work (in FLOPs, or element operations) a parallel region costs more than it
// saves, which depends on libgomp's wait policy: spinning workers (ACTIVE) cost about a
// microsecond to start, sleeping ones (PASSIVE) tens, the default in between. The measurements:
// docs/PERFORMANCE.md, "Serial-work thresholds".
constexpr int64_t kSerialWorkActive = int64_t{1} << 20;
constexpr int64_t kSerialWork = int64_t{4} << 20;
constexpr int64_t kSerialWorkPassive = int64_t{8} << 20;
// The work of reading one float a loop does not reuse (from L3 or memory), in FLOPs: a core
// streams 2-4 floats a cycle where it multiplies and adds 32-64 FLOPs. Loops bound by their loads
// (a matrix-vector product) add it per float to their estimate.
constexpr int64_t kStreamedFloatWork = 16;
// By OMP_WAIT_POLICY: kSerialWorkActive, kSerialWork (unset), kSerialWorkPassive; or the FLOPs in
// TINYTORCH_SERIAL_WORK (a non-negative integer; 0 threads every loop, as the tests do).
// Inside a WarmTeam scope, unless the policy is PASSIVE or the variable is set: kSerialWorkActive.
int64_t serial_work();

// A run of parallel regions back to back on this thread (a graph's nodes, src/onnx/model.cpp):
// libgomp's workers spin for a while after each region before they sleep, so the next region
// finds them awake and costs what it costs under ACTIVE, and loops from kSerialWorkActive FLOPs
// on are worth threading (docs/PERFORMANCE.md, "Serial-work thresholds"). Nests.
class WarmTeam {
 public:
  WarmTeam();
  ~WarmTeam();
  WarmTeam(const WarmTeam&) = delete;
  WarmTeam& operator=(const WarmTeam&) = delete;
};

// A function the calling thread runs between the items it computes itself, at most every 50 us,
// while it is set on that thread: data parallelism keeps MPI's collectives moving during the
// backward pass's kernels with it (src/distributed/mpi.cpp). Thread-local; off costs one load.
struct ProgressHook {
  void (*fn)(void*) = nullptr;
  void* arg = nullptr;
  int64_t next_ns = 0;
};
extern thread_local ProgressHook progress_hook;
void run_progress_hook();  // when due
inline void progress_tick() {
  if (progress_hook.fn != nullptr) run_progress_hook();
}

// Calls fn(item, thread) for item in [0, n), over up to get_num_threads() threads; serially when
// `work` (an estimate of the whole loop's FLOPs) is below serial_work().
// `thread` indexes a per-thread workspace slice (0 <= thread < threads_for(n)).
// Schedule::Static hands each thread one contiguous run of items; Schedule::Dynamic hands items
// out in order as threads come free, for items of unequal size (large ones first).
enum class Schedule { Static, Dynamic };

template <class Fn>
void parallel_for(int64_t n, Fn&& fn, int64_t work = INT64_MAX, Schedule schedule = Schedule::Static) {
  TT_EXPECTS(n >= 0);
  const int threads = work < serial_work() ? 1 : static_cast<int>(n < get_num_threads() ? n : get_num_threads());
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) {
      fn(i, 0);
      progress_tick();
    }
    return;
  }
  // An exception (a workspace that cannot grow) must not escape a thread: keep the first one and
  // rethrow it on the calling thread once all have finished.
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto run = [&](int64_t i, int t) {
    if (failed.load(std::memory_order_relaxed)) return;
    try {
      fn(i, t);
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
#ifdef TINYTORCH_STD_THREADS
  // Plain threads for ThreadSanitizer builds: it cannot see libgomp's barriers and would report
  // every hand-over of data between threads as a race. (Both schedules: items taken in order.)
  (void)schedule;
  std::atomic<int64_t> next{0};
  auto worker = [&](int t) {
    for (int64_t i = next++; i < n; i = next++) {
      run(i, t);
      if (t == 0) progress_tick();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& th : pool) th.join();
#else
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_thread_index();
    if (schedule == Schedule::Dynamic) {
#pragma omp for schedule(dynamic)
      for (int64_t i = 0; i < n; ++i) {
        run(i, t);
        if (t == 0) progress_tick();  // the master thread is the calling thread
      }
    } else {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        run(i, t);
        if (t == 0) progress_tick();
      }
    }
  }
#endif
  if (error) std::rethrow_exception(error);
}

// Calls fn(begin, end) over [0, n) in chunks of `grain` elements: elementwise loops. Chunks
// depend on n only, so reductions inside a chunk are thread-count independent too. The work is
// a float read and one written per element (2 kStreamedFloatWork): counted as 4 FLOPs, an
// activation of 32 x 112 x 112 (400K floats, past one core's L2 with its output) ran on one
// thread, 0.10 ms, against 0.05 on two.
template <class Fn>
void parallel_chunks(int64_t n, Fn&& fn, int64_t grain = int64_t{1} << 15) {
  const int64_t chunks = (n + grain - 1) / grain;
  parallel_for(
      chunks, [&](int64_t c, int) { fn(c * grain, std::min(n, (c + 1) * grain)); }, n * 2 * kStreamedFloatWork);
}

// How many threads parallel_for(n, ...) uses: size per-thread workspaces with this.
inline int threads_for(int64_t n) { return static_cast<int>(n < get_num_threads() ? n : get_num_threads()); }

}  // namespace tinytorch

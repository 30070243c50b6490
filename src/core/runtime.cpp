// Runtime settings. The thread count is read by parallel_for (src/core/parallel.hpp).
#include "tinytorch/runtime.hpp"

#include <omp.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "core/env.hpp"
#include "core/parallel.hpp"
#include "core/workspace.hpp"
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
  if (n < 1 || n > kMaxThreads) {
    throw ArgumentError("set_num_threads: expected a thread count in [1, " + std::to_string(kMaxThreads) + "], got " +
                        std::to_string(n));
  }
  thread_setting().store(n);
}

int get_num_threads() { return thread_setting().load(); }

int omp_thread_index() { return omp_get_thread_num(); }

thread_local ProgressHook progress_hook;

void run_progress_hook() {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now < progress_hook.next_ns) return;
  progress_hook.next_ns = now + 50'000;
  progress_hook.fn(progress_hook.arg);
}

namespace {

thread_local int warm_team_depth = 0;

struct SerialWork {
  int64_t cold, warm;
};

// Read once, as libgomp reads its variables when it starts.
const SerialWork& serial_work_setting() {
  static const SerialWork work = [] {
    if (const auto flops = env_count("TINYTORCH_SERIAL_WORK")) return SerialWork{*flops, *flops};
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    std::string p = policy ? policy : "";
    for (char& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (p == "passive") return SerialWork{kSerialWorkPassive, kSerialWorkPassive};  // workers sleep at once
    return SerialWork{p == "active" ? kSerialWorkActive : kSerialWork, kSerialWorkActive};
  }();
  return work;
}

}  // namespace

int64_t serial_work() {
  const SerialWork& work = serial_work_setting();
  return warm_team_depth > 0 ? work.warm : work.cold;
}

WarmTeam::WarmTeam() { ++warm_team_depth; }
WarmTeam::~WarmTeam() { --warm_team_depth; }

namespace {

struct Workspace {
  std::unique_ptr<float, decltype(&std::free)> data{nullptr, &std::free};
  size_t bytes = 0;
};

Workspace& thread_workspace(WorkspaceSlot slot) {
  thread_local Workspace ws[2];
  return ws[slot == WorkspaceSlot::Shared ? 0 : 1];
}

}  // namespace

float* workspace(size_t bytes, WorkspaceSlot slot) {
  Workspace& ws = thread_workspace(slot);
  if (bytes > ws.bytes) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    ws.data.reset(static_cast<float*>(p));
    ws.bytes = rounded;
  }
  return ws.data.get();
}

size_t workspace_capacity(WorkspaceSlot slot) { return thread_workspace(slot).bytes; }

void release_workspace(WorkspaceSlot slot) {
  Workspace& ws = thread_workspace(slot);
  ws.data.reset();
  ws.bytes = 0;
}

}  // namespace tinytorch

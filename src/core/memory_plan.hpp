// A static memory plan for runs that repeat, as a graph's inference does. One run records the size
// and the lifetime of every tensor the calling thread allocates; the plan places them in one block
// by lifetime (tensors alive at the same time never share bytes, the others may); the runs after
// take their tensors, in the same order, from that block. A run then allocates nothing, and the
// memory held between runs is the plan's block, not every size the heap ever handed out. Plans
// are kept for the four most recently used keys (input shapes), so a model served at a few batch
// sizes replays each.
//
// Safe whatever a run does:
// - a tensor that outlives its recording run (a graph's output, anything kept) is left out of the
//   plan and comes from the heap;
// - a run whose allocations stop matching the recording (another size or order, or a tensor still
//   alive where the plan puts a new one) takes nothing more from the block from that point, and
//   the next run records again;
// - the block lives while any tensor in it does; a run finding tensors of an earlier run still
//   alive in it takes a new block.
// Only the thread that opened the run, outside parallel regions, follows the plan: its order is
// the program's; workers' allocations go to the heap as always.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

// Built with AddressSanitizer (GCC defines the first macro, clang answers the feature test): the
// allocator keeps every block on the heap, where ASan checks it, and the plan's block poisons the
// bytes no live tensor holds.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// Items with the events that create and last touch them (inclusive), placed greedily: largest
// first, each at the lowest offset where it overlaps no placed item whose lifetime meets its own.
struct Lifetime {
  int64_t bytes, first, last;
};
struct Placement {
  std::vector<int64_t> offsets;  // per item, in the order given
  int64_t total = 0;             // the block's size
};
Placement place_by_lifetime(const std::vector<Lifetime>& items);

// A heap block for the allocator to hand out: its data, and the owner that frees it.
struct HeapBlock {
  void* data = nullptr;
  std::shared_ptr<void> owner;
};
using HeapAllocator = HeapBlock (*)(size_t bytes, bool cache_on_free);

class MemoryPlan {
 public:
  MemoryPlan();
  ~MemoryPlan();
  MemoryPlan(const MemoryPlan&) = delete;
  MemoryPlan& operator=(const MemoryPlan&) = delete;

  // While a Run lives, tensors the constructing thread allocates follow the plan recorded for
  // `key` (a description of the run's inputs: their shapes), or are recorded to make one. A Run on
  // a plan another thread is using, or with TINYTORCH_MEMORY_PLAN=0, does nothing.
  class Run {
   public:
    Run(MemoryPlan& plan, std::vector<Shape> key);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

   private:
    MemoryPlan& plan_;
    std::unique_lock<std::mutex> lock_;
    void* previous_ = nullptr;  // the thread's enclosing run, restored at the end
  };

  // While an Outside lives, the calling thread's allocations bypass its run: from the heap, never
  // recorded. For work a run may or may not do (a node whose outputs a graph remembers), which
  // would otherwise make one run's allocations differ from the recording's.
  class Outside {
   public:
    Outside();
    ~Outside();
    Outside(const Outside&) = delete;
    Outside& operator=(const Outside&) = delete;

   private:
    void* previous_;
  };

  struct Stats {
    int64_t block_bytes = 0;      // the most recently used plan's block (0 before a plan exists)
    int64_t planned_tensors = 0;  // tensors placed in it
    int64_t heap_tensors = 0;     // recorded tensors left to the heap (they outlived the run)
    int64_t replays = 0;          // runs served by a block from start to end, over all keys
  };
  Stats stats() const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

namespace memory_plan_detail {
// The allocator's hook (tensor.cpp): a block of `bytes` (a multiple of 64) for the calling
// thread's run; `heap` when no run is active.
HeapBlock allocate(size_t bytes, HeapAllocator heap);
}  // namespace memory_plan_detail

}  // namespace tinytorch

// The static memory plan (memory_plan.hpp): recording a run's allocations, placing them by
// lifetime, and serving the next runs from one block.
#include "core/memory_plan.hpp"

#include <omp.h>
#include <sanitizer/asan_interface.h>  // no-op macros without AddressSanitizer
#include <sys/mman.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <exception>
#include <list>
#include <map>
#include <new>

#include "core/env.hpp"

namespace tinytorch {

Placement place_by_lifetime(const std::vector<Lifetime>& items) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].bytes > items[b].bytes; });
  Placement out;
  out.offsets.assign(items.size(), 0);
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of placed items alive with this one
  for (size_t i : order) {
    const Lifetime& t = items[i];
    busy.clear();
    for (size_t p : placed) {
      if (items[p].first <= t.last && t.first <= items[p].last) {
        busy.emplace_back(out.offsets[p], out.offsets[p] + items[p].bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + t.bytes <= begin) break;
      offset = std::max(offset, end);
    }
    out.offsets[i] = offset;
    out.total = std::max(out.total, offset + t.bytes);
    placed.push_back(i);
  }
  return out;
}

namespace {

// The recording run's tensors. Shared with the owners of the recorded blocks, whose frees may
// come from any thread and after the run.
struct Recorder {
  struct Item {
    int64_t bytes, first, last;  // last: -1 while alive
  };
  std::mutex mutex;
  bool open = true;
  int64_t clock = 0;  // one tick per allocation and per free
  std::vector<Item> items;

  size_t allocated(size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex);
    items.push_back({static_cast<int64_t>(bytes), clock++, -1});
    return items.size() - 1;
  }
  void freed(size_t i) {
    const std::lock_guard<std::mutex> lock(mutex);
    if (open) items[i].last = clock++;
  }
};

// The plan's block and which of its tensors are alive.
struct Arena {
  void* base = nullptr;
  size_t bytes = 0;
  std::unique_ptr<std::atomic<bool>[]> alive;
  std::atomic<int64_t> live{0};

  Arena(size_t size, size_t tensors) : bytes(size), alive(new std::atomic<bool>[tensors]) {
    for (size_t i = 0; i < tensors; ++i) alive[i].store(false, std::memory_order_relaxed);
    if (bytes == 0) return;
    base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(base, bytes, MADV_HUGEPAGE);  // advice only
#endif
    ASAN_POISON_MEMORY_REGION(base, bytes);  // unpoisoned tensor by tensor while they live
  }
  ~Arena() {
    if (!base) return;
    ASAN_UNPOISON_MEMORY_REGION(base, bytes);  // the next mapping of these pages starts clean
    munmap(base, bytes);
  }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
};

struct Entry {
  int64_t bytes = 0;
  int64_t offset = -1;         // -1: from the heap (it outlived the recording run)
  std::vector<int32_t> preds;  // earlier planned tensors last to hold any of its bytes
};

bool plan_enabled() {
  static const bool on = env_count("TINYTORCH_MEMORY_PLAN", 1).value_or(1) != 0;
  return on;
}

// The plan for one key: where each recorded tensor goes, and the block.
struct KeyPlan {
  std::vector<Shape> key;
  std::vector<Entry> entries;
  int64_t block_bytes = 0, planned_tensors = 0;
  std::shared_ptr<Arena> arena;
};

// Plans kept per model: a model served at a few batch sizes replays each (their blocks stay
// allocated); the least recently used goes beyond this.
constexpr size_t kPlans = 4;

KeyPlan build_plan(Recorder& rec, std::vector<Shape> key) {
  std::vector<Recorder::Item> items;
  {
    const std::lock_guard<std::mutex> lock(rec.mutex);
    rec.open = false;
    items = rec.items;
  }
  std::vector<Lifetime> lifetimes;
  std::vector<size_t> planned;  // item index of each lifetime
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].last >= 0) {
      lifetimes.push_back({items[i].bytes, items[i].first, items[i].last});
      planned.push_back(i);
    }
  }
  const Placement placement = place_by_lifetime(lifetimes);
  KeyPlan plan;
  plan.key = std::move(key);
  plan.entries.assign(items.size(), Entry{});
  for (size_t i = 0; i < items.size(); ++i) plan.entries[i].bytes = items[i].bytes;
  for (size_t j = 0; j < planned.size(); ++j) plan.entries[planned[j]].offset = placement.offsets[j];
  // Each tensor's predecessors: for every byte it covers, the last earlier tensor placed there.
  // A run checks they are dead before it hands the bytes on; earlier holders were checked dead
  // when their own successors came, so they need no check.
  std::map<int64_t, std::pair<int64_t, int32_t>> owner;  // begin -> (end, tensor)
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    Entry& e = plan.entries[i];
    if (e.offset < 0) continue;
    const int64_t begin = e.offset, end = e.offset + e.bytes;
    auto it = owner.upper_bound(begin);
    if (it != owner.begin() && std::prev(it)->second.first > begin) --it;
    std::vector<std::pair<int64_t, std::pair<int64_t, int32_t>>> keep;  // remainders outside [begin, end)
    while (it != owner.end() && it->first < end) {
      const int32_t who = it->second.second;
      if (std::find(e.preds.begin(), e.preds.end(), who) == e.preds.end()) e.preds.push_back(who);
      if (it->first < begin) keep.push_back({it->first, {begin, who}});
      if (it->second.first > end) keep.push_back({end, {it->second.first, who}});
      it = owner.erase(it);
    }
    for (const auto& k : keep) owner.insert(k);
    owner[begin] = {end, static_cast<int32_t>(i)};
  }
  plan.block_bytes = placement.total;
  plan.planned_tensors = static_cast<int64_t>(planned.size());
  return plan;
}

}  // namespace

struct MemoryPlan::State {
  std::mutex busy;           // held by the run using the plans
  std::list<KeyPlan> plans;  // most recently used first
  int64_t replays = 0;
  // The run in progress: replaying `current`, or recording for `recording_key`.
  KeyPlan* current = nullptr;
  std::shared_ptr<Recorder> recorder;
  std::vector<Shape> recording_key;
  size_t next = 0;
  bool diverged = false;
  int uncaught = 0;
};

namespace {
thread_local MemoryPlan::State* active_run = nullptr;
}

MemoryPlan::MemoryPlan() : s_(std::make_unique<State>()) {}
MemoryPlan::~MemoryPlan() = default;

MemoryPlan::Stats MemoryPlan::stats() const {
  const std::lock_guard<std::mutex> lock(s_->busy);
  Stats out;
  out.replays = s_->replays;
  if (!s_->plans.empty()) {
    const KeyPlan& p = s_->plans.front();
    out.block_bytes = p.block_bytes;
    out.planned_tensors = p.planned_tensors;
    out.heap_tensors = static_cast<int64_t>(p.entries.size()) - p.planned_tensors;
  }
  return out;
}

MemoryPlan::Run::Run(MemoryPlan& plan, std::vector<Shape> key) : plan_(plan) {
  if (!plan_enabled()) return;
  lock_ = std::unique_lock<std::mutex>(plan.s_->busy, std::try_to_lock);
  if (!lock_.owns_lock()) return;  // another thread runs this model: it keeps the plans
  State& s = *plan.s_;
  const auto found = std::find_if(s.plans.begin(), s.plans.end(), [&](const KeyPlan& p) { return p.key == key; });
  s.current = nullptr;
  if (found == s.plans.end()) {
    s.recorder = std::make_shared<Recorder>();
    s.recording_key = std::move(key);
  } else {
    s.plans.splice(s.plans.begin(), s.plans, found);  // most recently used first
    KeyPlan& p = s.plans.front();
    if (!p.arena || p.arena->live.load() != 0) {  // tensors of an earlier run still in it: a new block
      p.arena = std::make_shared<Arena>(static_cast<size_t>(p.block_bytes), p.entries.size());
    }
    s.current = &p;
    s.next = 0;
    s.diverged = false;
  }
  s.uncaught = std::uncaught_exceptions();
  previous_ = active_run;
  active_run = &s;
}

MemoryPlan::Outside::Outside() : previous_(active_run) { active_run = nullptr; }
MemoryPlan::Outside::~Outside() { active_run = static_cast<State*>(previous_); }

MemoryPlan::Run::~Run() {
  if (!lock_.owns_lock()) return;
  active_run = static_cast<State*>(previous_);
  State& s = *plan_.s_;
  const bool failed = std::uncaught_exceptions() > s.uncaught;
  if (s.recorder) {
    if (failed) {
      const std::lock_guard<std::mutex> lock(s.recorder->mutex);
      s.recorder->open = false;
    } else {
      try {
        s.plans.push_front(build_plan(*s.recorder, std::move(s.recording_key)));
        if (s.plans.size() > kPlans) s.plans.pop_back();  // its block goes with its last tensor
      } catch (const std::bad_alloc&) {                   // no plan then; the next run records again
      }
    }
    s.recorder.reset();
#ifdef __GLIBC__
    // The recording's tensors came from the heap and are free now; the runs after take the plan's
    // block. malloc keeps freed pages of its heap resident unless told (ShuffleNetV2 at batch 8:
    // 8 MiB that a long-lived small allocation above them pinned).
    malloc_trim(0);
#endif
  } else if (s.diverged || failed) {
    s.plans.pop_front();  // the current plan: recorded again on the next run with its key
  } else {
    ++s.replays;
  }
  s.current = nullptr;
}

namespace memory_plan_detail {

HeapBlock allocate(size_t bytes, HeapAllocator heap) {
  MemoryPlan::State* s = active_run;
  if (!s || omp_in_parallel()) return heap(bytes, true);
  if (s->recorder) {  // recording: from the heap, returned to it when freed (the plan replaces it)
    HeapBlock block = heap(bytes, false);
    std::shared_ptr<Recorder> rec = s->recorder;
    const size_t i = rec->allocated(bytes);
    block.owner = std::shared_ptr<void>(block.data, [inner = std::move(block.owner), rec, i](void*) mutable {
      rec->freed(i);
      inner.reset();
    });
    return block;
  }
  KeyPlan& plan = *s->current;
  if (s->diverged || s->next >= plan.entries.size() || plan.entries[s->next].bytes != static_cast<int64_t>(bytes)) {
    s->diverged = true;
    return heap(bytes, true);
  }
  const size_t k = s->next++;
  const Entry& e = plan.entries[k];
  if (e.offset < 0) return heap(bytes, true);
  Arena& arena = *plan.arena;
  for (int32_t p : e.preds) {
    if (arena.alive[static_cast<size_t>(p)].load(std::memory_order_acquire)) {
      s->diverged = true;  // a tensor the plan expected dead still holds these bytes
      return heap(bytes, true);
    }
  }
  arena.alive[k].store(true, std::memory_order_relaxed);
  arena.live.fetch_add(1, std::memory_order_relaxed);
  void* data = static_cast<char*>(arena.base) + e.offset;
  ASAN_UNPOISON_MEMORY_REGION(data, bytes);
  return {data, std::shared_ptr<void>(data, [keep = plan.arena, k, bytes](void* p) {
            ASAN_POISON_MEMORY_REGION(p, bytes);
            keep->alive[k].store(false, std::memory_order_release);
            keep->live.fetch_sub(1, std::memory_order_acq_rel);
          })};
}

}  // namespace memory_plan_detail

}  // namespace tinytorch

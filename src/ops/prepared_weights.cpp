// The prepared-weight cache: see prepared_weights.hpp.
#include "ops/prepared_weights.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <list>
#include <map>
#include <mutex>

#include "core/env.hpp"
#include "core/parallel.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch::ops {
namespace {

int64_t default_budget() { return env_count("TINYTORCH_WEIGHT_CACHE_MB", int64_t{1} << 40).value_or(256) << 20; }

// a[0 .. n) == b[0 .. n) bit for bit. Large weights come from memory, and one core's memcmp
// reads them and the copy at a fraction of the machine's bandwidth: a 512 -> 512 3x3 weight
// (9 MiB) took 1.5-2 ms of a 4 ms call at batch 1. So chunks of 256 KiB are compared across the
// threads, as a loop of streamed floats: such calls 1.05-1.2x faster (AVX2 Zen 3, 2 threads).
bool same_floats(const float* a, const float* b, int64_t n) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  std::atomic<bool> differ{false};
  parallel_for((n + kChunk - 1) / kChunk,
               [&](int64_t c, int) {
                 if (differ.load(std::memory_order_relaxed)) return;
                 const int64_t begin = c * kChunk, count = std::min(kChunk, n - begin);
                 if (std::memcmp(a + begin, b + begin, static_cast<size_t>(count) * sizeof(float)) != 0)
                   differ.store(true, std::memory_order_relaxed);
               },
               2 * n * kStreamedFloatWork);
  return !differ.load();
}

int64_t bytes_of(const PreparedWeight& e) {
  return static_cast<int64_t>((e.weight.capacity() + e.prepared.capacity()) * sizeof(float));
}

// The entries of frozen owners (loaded models) are theirs: they stay until their owner releases
// them, outside the budget, which bounds the compared entries of eager calls. Under the budget,
// two models whose prepared weights passed it together (two ResNet-50s) evicted each other's on
// every call and prepared every layer's weight again: 1.6x the time of a model run alone (AVX2
// Zen 3, 2 threads, the two called in turn).
struct Cache {
  using Entries = std::list<std::shared_ptr<PreparedWeight>>;
  std::mutex mutex;
  Entries entries;  // most recently used first
  int64_t bytes = 0, frozen_bytes = 0, budget = default_budget(), hits = 0, misses = 0, trusted = 0;

  int64_t& total_of(const PreparedWeight& e) { return e.owner != 0 ? frozen_bytes : bytes; }
  void add(const std::shared_ptr<PreparedWeight>& e) {
    entries.push_front(e);
    total_of(*e) += bytes_of(*e);
  }
  Entries::iterator erase(Entries::iterator it) {
    total_of(**it) -= bytes_of(**it);
    return entries.erase(it);
  }
  // Under the lock: drop least recently used compared entries until their total fits the budget.
  void trim() {
    for (auto it = entries.end(); bytes > budget && it != entries.begin();) {
      --it;
      if ((*it)->owner == 0) it = erase(it);
    }
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

uint64_t& frozen_owner() {
  thread_local uint64_t owner = 0;
  return owner;
}

struct Restorers {
  std::mutex mutex;
  std::map<uint64_t, std::function<void(const float*)>> by_owner;
};

Restorers& restorers() {
  static Restorers r;
  return r;
}

// The owner's restorer, if it set one, called with the weight about to be read.
void restore_for(uint64_t owner, const float* weight) {
  std::function<void(const float*)> restore;
  {
    Restorers& r = restorers();
    const std::lock_guard<std::mutex> lock(r.mutex);
    const auto it = r.by_owner.find(owner);
    if (it == r.by_owner.end()) return;
    restore = it->second;
  }
  restore(weight);
}

struct Known {
  const float* weight = nullptr;
  uint64_t version = 0;
};

Known& known() {
  thread_local Known k;
  return k;
}

bool& changing_weights() {
  thread_local bool changing = false;
  return changing;
}

std::shared_ptr<PreparedWeight>& spare() {
  thread_local std::shared_ptr<PreparedWeight> s;
  return s;
}

}  // namespace

namespace detail {

Lookup lookup_prepared(const PreparedTag& tag, const float* weight, int64_t weight_floats, int64_t prepared_floats) {
  Cache& c = cache();
  const auto n = static_cast<size_t>(weight_floats), m = static_cast<size_t>(prepared_floats);
  const uint64_t owner = frozen_owner();
  const bool changing = owner == 0 && changing_weights();  // no comparison, no copy
  // The storage's version, when a KnownWeight scope vouches for this weight (0: compare).
  const uint64_t version = owner == 0 && !changing && known().weight == weight ? known().version : 0;
  std::shared_ptr<PreparedWeight> found;
  {
    const std::lock_guard<std::mutex> lock(c.mutex);
    auto it = std::find_if(c.entries.begin(), c.entries.end(),
                           [&](const auto& e) { return e->address == weight && e->tag == tag && e->owner == owner; });
    if (it != c.entries.end()) {
      found = *it;
      c.entries.splice(c.entries.begin(), c.entries, it);
    }
  }
  // Published entries are never written, so comparing outside the lock is safe.
  const bool fits = !changing && found && found->prepared.size() == m;
  const bool vouched = fits && owner == 0 && version != 0 && found->version == version;
  const bool same = fits && (owner != 0 || vouched ||
                             (found->weight.size() == n && same_floats(found->weight.data(), weight, weight_floats)));
  if (same) {
    const std::lock_guard<std::mutex> lock(c.mutex);
    ++c.hits;
    if (vouched) ++c.trusted;
    return {std::move(found), true};
  }
  if (owner != 0) restore_for(owner, weight);  // before the caller's fill reads the weight
  std::shared_ptr<PreparedWeight> entry;
  {
    const std::lock_guard<std::mutex> lock(c.mutex);
    ++c.misses;
    if (found) {  // stale: take it out; refill it in place if no other caller holds it
      auto it = std::find(c.entries.begin(), c.entries.end(), found);
      if (it != c.entries.end()) c.erase(it);
      if (found.use_count() == 1) entry = std::move(found);
    }
  }
  // An entry the cache could not keep (off, or over the budget) waits here for the thread's next
  // miss, so that even then steady-state calls do not allocate.
  if (!entry && spare() && spare().use_count() == 1) entry = std::move(spare());
  if (!entry) entry = std::make_shared<PreparedWeight>();
  entry->tag = tag;
  entry->address = weight;
  entry->owner = owner;
  entry->version = version;
  entry->filled = Storage::next_version();
  if (owner != 0 || changing || version != 0) {
    std::vector<float>().swap(entry->weight);  // its memory too: a training step needs no copy
  } else {
    entry->weight.assign(weight, weight + n);
  }
  entry->prepared.resize(m);
  return {std::move(entry), false};
}

void publish_prepared(const std::shared_ptr<PreparedWeight>& entry) {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  if (entry->owner == 0 && bytes_of(*entry) > c.budget) {
    spare() = entry;
    return;
  }
  // Another call may have published the same key meanwhile: the newer entry replaces it.
  auto same = std::find_if(c.entries.begin(), c.entries.end(), [&](const auto& e) {
    return e->address == entry->address && e->tag == entry->tag && e->owner == entry->owner;
  });
  if (same != c.entries.end()) c.erase(same);
  c.add(entry);
  c.trim();
}

}  // namespace detail

PreparedWeightStats prepared_weight_stats() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  return {c.hits, c.misses, static_cast<int64_t>(c.entries.size()), c.bytes, c.budget, c.trusted, c.frozen_bytes};
}

void clear_prepared_weights() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  c.entries.clear();
  c.bytes = c.frozen_bytes = c.hits = c.misses = c.trusted = 0;
  spare().reset();  // (the calling thread's)
}

void drop_prepared_weights(const float* weight, std::initializer_list<int64_t> keep) {
  Cache& c = cache();
  const uint64_t owner = frozen_owner();
  const std::lock_guard<std::mutex> lock(c.mutex);
  for (auto it = c.entries.begin(); it != c.entries.end();) {
    const PreparedWeight& e = **it;
    if (e.address == weight && e.owner == owner && std::find(keep.begin(), keep.end(), e.tag[0]) == keep.end()) {
      it = c.erase(it);
    } else {
      ++it;
    }
  }
}

bool frozen_scope_active() { return frozen_owner() != 0; }

uint64_t new_frozen_owner() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

void set_frozen_restorer(uint64_t owner, std::function<void(const float* weight)> restorer) {
  Restorers& r = restorers();
  const std::lock_guard<std::mutex> lock(r.mutex);
  if (restorer) {
    r.by_owner[owner] = std::move(restorer);
  } else {
    r.by_owner.erase(owner);
  }
}

void release_frozen_weights(uint64_t owner) {
  {
    Restorers& r = restorers();
    const std::lock_guard<std::mutex> lock(r.mutex);
    r.by_owner.erase(owner);
  }
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  for (auto it = c.entries.begin(); it != c.entries.end();) {
    if ((*it)->owner == owner) {
      it = c.erase(it);
    } else {
      ++it;
    }
  }
}

bool changing_weights_active() { return changing_weights(); }

KnownWeight::KnownWeight(const float* weight, uint64_t version)
    : previous_weight_(known().weight), previous_version_(known().version) {
  known() = {weight, version};
}
KnownWeight::~KnownWeight() { known() = {previous_weight_, previous_version_}; }

ChangingWeights::ChangingWeights() : previous_(changing_weights()) { changing_weights() = true; }
ChangingWeights::~ChangingWeights() { changing_weights() = previous_; }

FrozenWeights::FrozenWeights(uint64_t owner) : previous_(frozen_owner()) { frozen_owner() = owner; }
FrozenWeights::~FrozenWeights() { frozen_owner() = previous_; }

void set_prepared_weight_budget(int64_t bytes) {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  c.budget = std::max<int64_t>(0, bytes);
  c.trim();
}

}  // namespace tinytorch::ops

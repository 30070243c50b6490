// Prepared weights kept between calls. Some algorithms turn the weight into another form before
// they use it (Winograd's transformed matrices U: 4x the weight's floats at stride 1), and
// inference calls a layer with the same weight again and again. This cache keeps the prepared
// form next to a copy of the weight it came from and reuses it when a call brings the same bytes
// again: compared in full (memcmp, in chunks across the threads for large weights), so a weight
// changed in place - by an optimizer step, by numpy through a view, through Tensor::data() - is
// always seen, whatever its address. A weight whose storage tinytorch alone has written (no
// pointer to it handed out: tensor.hpp, Storage) is not compared: an unchanged version of its
// storage vouches for it (KnownWeight, below), and no copy of it is kept.
//
// Entries are keyed by the weight's address and a tag (what was prepared, for which shape and
// micro-kernel). Least recently used entries go when the total passes a budget (256 MiB, or
// TINYTORCH_WEIGHT_CACHE_MB; 0 turns the cache off); a frozen owner's (a loaded model's, below)
// stay until the owner releases them, outside the budget. Thread-safe: entries are immutable once
// published and shared by pointer, so a caller keeps using its entry while another call replaces
// it. A miss on a known key refills that entry's buffers when no one else holds it: a training
// loop, whose weights change every step, prepares them as before without allocating.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <vector>

namespace tinytorch::ops {

// What was prepared (a PreparedKind) and for which shape and micro-kernel (numbers the caller
// chooses); a fixed array, so that looking it up allocates nothing.
using PreparedTag = std::array<int64_t, 5>;
enum PreparedKind : int64_t {
  kWinogradF43 = 1,
  kWinogradStride2 = 2,
  kDirectPacked = 3,
  kOcBlockPacked = 4,
  kBlockedPacked = 5,
  kCroppedTaps = 6  // the taps of a window that read the input (ops/conv2d.cpp, conv2d_cropped)
};

// Storage on 64-byte boundaries, a cache line: the kernels load the prepared forms a vector of 16
// floats at a time, and a vector that straddles two lines costs two loads. operator new's 16-byte
// alignment left every one of them straddling (a large block is a page plus malloc's 16-byte
// header): the blocked tiles ran 14% slower on weights 16 bytes off the line than on aligned ones.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  explicit CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  bool operator==(const CacheLineAllocator&) const { return true; }
};

struct PreparedWeight {
  PreparedTag tag{};
  const float* address = nullptr;  // the weight it was prepared from (a key, never read)
  uint64_t owner = 0;              // a frozen owner's id (below); 0 for the compared entries
  uint64_t version = 0;            // its storage's version then, when known (KnownWeight, below); else 0
  uint64_t filled = 0;             // names these prepared values: a fresh storage version at each fill
  std::vector<float> weight;       // the weight's values then (empty for a frozen owner's and a versioned one)
  std::vector<float, CacheLineAllocator<float>> prepared;  // what `fill` wrote
};

namespace detail {
struct Lookup {
  std::shared_ptr<PreparedWeight> entry;
  bool hit;  // false: entry holds the weight's copy and a prepared buffer of the size asked, to fill
};
Lookup lookup_prepared(const PreparedTag& tag, const float* weight, int64_t weight_floats, int64_t prepared_floats);
void publish_prepared(const std::shared_ptr<PreparedWeight>& entry);
}  // namespace detail

// The prepared form of weight[0 .. weight_floats) under `tag`: a cached one when its copy equals
// the weight, else fill(float* buffer of prepared_floats) is called (it may run threads) and the
// result kept. The returned entry stays valid while the caller holds it.
template <class Fill>
std::shared_ptr<const PreparedWeight> prepared_weight(const PreparedTag& tag, const float* weight,
                                                      int64_t weight_floats, int64_t prepared_floats, Fill&& fill) {
  detail::Lookup found = detail::lookup_prepared(tag, weight, weight_floats, prepared_floats);
  if (!found.hit) {
    fill(found.entry->prepared.data());
    detail::publish_prepared(found.entry);
  }
  return found.entry;
}

// Weights their owner promises never to change: a loaded ONNX model's, which no one can reach to
// write. While a FrozenWeights scope is active on the calling thread, an entry with the weight's
// address, tag and the scope's owner is used without comparing, and none keeps a copy of the
// weight: inference with a large model then neither reads its weights twice per call nor holds
// them twice. An owner takes a fresh id (new_frozen_owner) and drops its entries when it goes
// (release_frozen_weights), so a later owner's weights at the same addresses are never confused
// with its.
// Drops the entries prepared from the weight at `weight` under the calling thread's owner (a
// FrozenWeights scope's, or none) whose kind is not one of `keep`: what autotuning prepared for
// the algorithms that lost (conv2d_select.cpp).
void drop_prepared_weights(const float* weight, std::initializer_list<int64_t> keep);

uint64_t new_frozen_owner();
void release_frozen_weights(uint64_t owner);
// An owner may give its weights' memory back once they are prepared (the graph runtime does:
// onnx/model.cpp, "released weights"); a miss must then bring a weight back before `fill` reads
// it. The owner's restorer is called on each of its misses, with the weight's address, before the
// lookup returns (outside the cache's lock). release_frozen_weights forgets it.
void set_frozen_restorer(uint64_t owner, std::function<void(const float* weight)> restorer);

// Whether a FrozenWeights scope is active on the calling thread (its weights may have been given
// back: read them only through prepared_weight).
bool frozen_scope_active();

class FrozenWeights {
 public:
  explicit FrozenWeights(uint64_t owner);
  ~FrozenWeights();
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;

 private:
  uint64_t previous_;
};

// Weights that change before their next use: a training step's (the weight requires grad under
// grad mode, and the optimizer writes it after backward), or a temporary's (the input gradient's
// flipped weight). While a ChangingWeights scope is active on the calling thread, a lookup neither
// compares the weight with a kept copy nor keeps one: it always prepares, into the entry's
// buffers when no one else holds them (no allocation in steady state). An entry prepared so holds
// no copy, so a later lookup outside the scope misses and prepares again.
class ChangingWeights {
 public:
  ChangingWeights();
  ~ChangingWeights();
  ChangingWeights(const ChangingWeights&) = delete;
  ChangingWeights& operator=(const ChangingWeights&) = delete;

 private:
  bool previous_;
};

bool changing_weights_active();  // a ChangingWeights scope on the calling thread

// A weight whose storage's version is known (tensor.hpp, Storage): while a KnownWeight scope for
// it is active on the calling thread, a lookup of that weight (the same first float) trusts an
// entry prepared at the same version without comparing, and keeps no copy of the weight when it
// prepares. Nothing changes for a version of 0 (an exposed storage: compared as always). The
// caller passes the version of the tensor the kernels read, as the call begins.
class KnownWeight {
 public:
  KnownWeight(const float* weight, uint64_t version);
  ~KnownWeight();
  KnownWeight(const KnownWeight&) = delete;
  KnownWeight& operator=(const KnownWeight&) = delete;

 private:
  const float* previous_weight_;
  uint64_t previous_version_;
};

struct PreparedWeightStats {
  int64_t hits, misses, entries, bytes, budget_bytes;
  int64_t trusted;       // of the hits, those taken on a known version, without comparing
  int64_t frozen_bytes;  // frozen owners' entries (loaded models'), kept outside the budget
};
PreparedWeightStats prepared_weight_stats();
void clear_prepared_weights();                   // all entries, the counts, and the calling thread's spare entry
void set_prepared_weight_budget(int64_t bytes);  // evicts down to it; 0: off (every eager call prepares)

}  // namespace tinytorch::ops

// The data-parallel context of the ops (data_parallel.hpp).
#include "core/data_parallel.hpp"

#include <atomic>

namespace tinytorch::data_parallel {
namespace {
thread_local BatchShard shard;
std::atomic<SumAcrossProcesses> sum_fn{nullptr};
}  // namespace

const BatchShard& batch_shard() { return shard; }
void set_batch_shard(const BatchShard& s) { shard = s; }

SumAcrossProcesses batch_norm_sum() { return sum_fn.load(); }
void set_batch_norm_sum(SumAcrossProcesses sum) { sum_fn.store(sum); }

}  // namespace tinytorch::data_parallel

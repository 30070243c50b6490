// What the ops need to know when a batch is split across processes (tinytorch::distributed):
//
// - the rows of the global batch before and after this process's shard, so that dropout draws
//   the random numbers the whole batch would have drawn and keeps its own rows' (every process's
//   generator stays where one process's would be, and N processes follow one process's path);
// - with synchronized batch norm, a function summing per-channel statistics over the processes.
//
// Both are off unless distributed training sets them; the ops then behave as in one process.
#pragma once

#include <cstdint>

namespace tinytorch::data_parallel {

struct BatchShard {
  int64_t rows_before = 0, rows_after = 0;  // of the global batch, around this process's rows
};

// The shard of the batch this thread's forward pass computes (both 0 outside data parallelism).
const BatchShard& batch_shard();
void set_batch_shard(const BatchShard& shard);

// Sums `n` doubles element-wise over every process, in place (MPI_Allreduce); null: no sync.
using SumAcrossProcesses = void (*)(double* values, int64_t n);
SumAcrossProcesses batch_norm_sum();
void set_batch_norm_sum(SumAcrossProcesses sum);

}  // namespace tinytorch::data_parallel

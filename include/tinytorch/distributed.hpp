// Data-parallel training across processes and machines, on MPI (Open MPI from Debian; whatever
// mpirun or Slurm's srun launched). Each process holds the whole model and a shard of every
// global batch; after backward, the gradients are averaged over the processes with an allreduce,
// in buckets started while backward still runs, so every process takes the same optimizer step.
//
//   distributed::init();                                   // under mpirun -np N
//   distributed::DataParallel ddp(model.parameters());     // rank 0's weights to everyone
//   for (...) {
//     auto [begin, end] = distributed::shard_rows(batch, distributed::rank(), distributed::world_size());
//     distributed::ShardScope shard(begin, end, batch);    // dropout draws as one process would
//     ddp.prepare();
//     Tensor loss = cross_entropy(model(x.slice(0, begin, end)), ...);
//     loss.backward();
//     ddp.finish();                                        // .grad: averaged over the processes
//     opt.step();
//   }
//
// Built when CMake finds MPI (TINYTORCH_MPI); otherwise available() is false and init() throws an
// ArgumentError that says so. Everything but init() works in one process without MPI: rank 0 of 1.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch::distributed {

bool available();  // built with MPI
// Whether an MPI launcher (mpirun, mpiexec, srun) started this process, from its environment.
bool launched();
// Joins the job (MPI_Init_thread, once; only the calling thread makes MPI calls). Errors from
// then on are DistributedErrors. ArgumentError in a build without MPI.
void init();
bool initialized();
int rank();        // 0 when not initialized
int world_size();  // 1 when not initialized
int local_size();  // processes on this machine (1 when not initialized)
// After an error in this process: ends every process of the job (MPI_Abort with `code`), so the
// others, waiting in a collective for this one, stop instead of hanging. The caller prints the
// error first. Nothing when not initialized or alone.
void abort_job(int code);

enum class ReduceOp { Sum, Average, Max, Min };
// In place, over every process: float32 or int64 tensors (contiguous).
void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
void broadcast(Tensor& tensor, int root = 0);
void barrier();
// Sums doubles over every process in place (statistics: loss sums, counts).
void all_reduce_sum(double* values, int64_t count);

// Rows [begin, end) of a global batch of `batch` rows that process `rank` of `world` computes:
// contiguous and as even as possible (the first batch % world ranks get one more).
std::pair<int64_t, int64_t> shard_rows(int64_t batch, int rank, int world);

// While it lives, this thread's forward pass is rows [begin, end) of a batch of `batch` rows:
// dropout draws the random numbers of the rows around them too, so each process's generator
// stays where one process's would be.
class ShardScope {
 public:
  ShardScope(int64_t begin, int64_t end, int64_t batch);
  ~ShardScope();
  ShardScope(const ShardScope&) = delete;
  ShardScope& operator=(const ShardScope&) = delete;
};

// Batch norm in training mode normalizes with the statistics of the whole global batch (summed
// over the processes), as torch.nn.SyncBatchNorm; off: each process's own (DDP's default).
void set_sync_batch_norm(bool on);

struct DataParallelOptions {
  int64_t bucket_bytes = 512 << 10;  // gradients per allreduce (the last layers' first)
  // Each bucket gathered from every process and summed in rank order: bit-identical results from
  // run to run whatever MPI's reduction algorithm (costs world_size times the memory traffic).
  bool deterministic = false;
  // finish() runs by itself once every parameter has its gradient (from the backward pass's last
  // delivery), as PyTorch's DistributedDataParallel does; prepare() is still called before each
  // forward. A parameter without a gradient then leaves the step unfinished: call finish().
  bool finish_when_complete = false;
};

struct CommunicationStats {
  int64_t steps = 0, buckets = 0, bytes = 0;
  double total_seconds = 0;    // from each bucket's start to its completion, summed
  double exposed_seconds = 0;  // time finish() waited: communication not hidden behind backward
};

// Averages the parameters' gradients over the processes, in buckets (in reverse order of the
// parameters, which is roughly the order backward produces them), each started as soon as its
// last gradient is in. Works in one process too (then it only counts steps).
class DataParallel {
 public:
  explicit DataParallel(std::vector<Tensor> parameters, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Rank 0's values to every process (parameters at the start; buffers such as batch-norm
  // statistics too when passed).
  void broadcast_parameters(const std::vector<Tensor>& extra = {});
  // Before backward: watches the gradients arrive (on this thread).
  void prepare();
  // After backward: starts what is left, waits for every bucket, and leaves the averaged
  // gradients in each parameter's .grad. A parameter that got no gradient counts as zeros.
  void finish();
  const CommunicationStats& stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tinytorch::distributed

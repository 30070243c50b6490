// tinytorch::distributed in a build without MPI (CMake's TINYTORCH_MPI off or MPI not found):
// one process, rank 0 of 1; init() says how to get the rest.
#include "tinytorch/distributed.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch::distributed {

bool available() { return false; }

void init() {
  throw ArgumentError(
      "distributed: this tinytorch was built without MPI; install openmpi-bin and libopenmpi-dev and rebuild "
      "(CMake option TINYTORCH_MPI)");
}

bool initialized() { return false; }
int rank() { return 0; }
int world_size() { return 1; }
int local_size() { return 1; }
void abort_job(int) {}
void all_reduce(Tensor& tensor, ReduceOp op) {
  if (op == ReduceOp::Average && tensor.dtype() != DType::Float32) {
    throw DTypeError("distributed: all_reduce averages float32 tensors only");
  }
}
void broadcast(Tensor&, int root) {
  if (root != 0) throw ArgumentError("distributed: broadcast from rank " + std::to_string(root) + " of 1");
}
void barrier() {}
void all_reduce_sum(double*, int64_t) {}
void set_sync_batch_norm(bool) {}

struct DataParallel::State {
  CommunicationStats stats;
};
// NOLINTNEXTLINE(performance-unnecessary-value-param): the MPI build's signature, which keeps them
DataParallel::DataParallel(std::vector<Tensor>, DataParallelOptions) : state_(std::make_unique<State>()) {}
DataParallel::~DataParallel() = default;
void DataParallel::broadcast_parameters(const std::vector<Tensor>&) {}
void DataParallel::prepare() {}
void DataParallel::finish() { ++state_->stats.steps; }
const CommunicationStats& DataParallel::stats() const { return state_->stats; }

}  // namespace tinytorch::distributed

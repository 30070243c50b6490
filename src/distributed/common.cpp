// The parts of tinytorch::distributed that do not talk to MPI: how a batch is split, the shard
// scope dropout reads, and what the environment says about the launch.
#include <cstdlib>
#include <string>

#include "core/data_parallel.hpp"
#include "tinytorch/distributed.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch::distributed {

bool launched() {
  // Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx launchers (srun --mpi=pmix, prterun) set
  // PMIX_RANK; MPICH's Hydra sets PMI_RANK.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

std::pair<int64_t, int64_t> shard_rows(int64_t batch, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world || batch < 0) {
    throw ArgumentError("shard_rows: rank " + std::to_string(rank) + " of " + std::to_string(world) +
                        " processes, batch " + std::to_string(batch));
  }
  const int64_t base = batch / world, extra = batch % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

ShardScope::ShardScope(int64_t begin, int64_t end, int64_t batch) {
  if (begin < 0 || end < begin || end > batch) {
    throw ArgumentError("ShardScope: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                        ") are not a part of a batch of " + std::to_string(batch));
  }
  data_parallel::set_batch_shard({begin, batch - end});
}

ShardScope::~ShardScope() { data_parallel::set_batch_shard({}); }

}  // namespace tinytorch::distributed

// tinytorch::distributed on MPI: the collectives, synchronized batch norm's sums, and the
// gradient buckets of DataParallel.
//
// Progress: Open MPI advances a non-blocking collective only inside MPI calls (no progress
// thread of its own over TCP). While buckets are in flight, the training thread tests them
// between the items of every parallel_for it runs, at most every 50 us (core/parallel.hpp's
// progress hook), and whenever backward delivers a gradient; finish() waits for the rest. Testing
// only at the deliveries left a bucket stalled through a whole layer's backward kernel; a progress
// thread of our own cost more than it hid on cores the compute threads fill (ARCHITECTURE.md).
// Only the thread that called init() makes MPI calls (MPI_THREAD_FUNNELED): the hook is
// thread-local, and parallel_for runs it on the calling thread only.
#include <mpi.h>

#include <chrono>
#include <cstring>
#include <unordered_map>

#include "core/autograd_internal.hpp"
#include "core/data_parallel.hpp"
#include "core/parallel.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/distributed.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch::distributed {
namespace {

bool joined = false;
int my_rank = 0, my_size = 1, my_local_size = 1;

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw DistributedError(std::string("distributed: ") + what + " failed on rank " + std::to_string(my_rank) + ": " +
                         std::string(text, static_cast<size_t>(length)) +
                         " (a process of the job died or the network between them failed)");
}

void require_init(const char* what) {
  if (!joined) throw ArgumentError(std::string("distributed: ") + what + " before distributed::init()");
}

MPI_Datatype mpi_type(const Tensor& t, const char* what) {
  if (!t.is_contiguous()) throw ArgumentError(std::string("distributed: ") + what + " needs a contiguous tensor");
  if (t.dtype() == DType::Float32) return MPI_FLOAT;
  if (t.dtype() == DType::Int64) return MPI_INT64_T;
  throw DTypeError(std::string("distributed: ") + what + " takes float32 or int64 tensors, got " +
                   dtype_name(t.dtype()));
}

void sum_doubles(double* values, int64_t count) {
  check(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
        "allreduce of batch-norm statistics");
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

bool available() { return true; }

void init() {
  if (joined) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw DistributedError("distributed: MPI_Init_thread failed");
    }
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &my_size);
  MPI_Comm local;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, my_rank, MPI_INFO_NULL, &local),
        "splitting the processes by machine");
  MPI_Comm_size(local, &my_local_size);
  MPI_Comm_free(&local);
  joined = true;
}

bool initialized() { return joined; }
int rank() { return my_rank; }
int world_size() { return my_size; }
int local_size() { return my_local_size; }

void abort_job(int code) {
  if (!joined || my_size == 1) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

void all_reduce(Tensor& tensor, ReduceOp op) {
  require_init("all_reduce");
  const MPI_Datatype type = mpi_type(tensor, "all_reduce");
  const MPI_Op mpi_op = op == ReduceOp::Max ? MPI_MAX : op == ReduceOp::Min ? MPI_MIN : MPI_SUM;
  check(MPI_Allreduce(MPI_IN_PLACE, tensor.raw_data_to_write(), static_cast<int>(tensor.numel()), type, mpi_op,
                      MPI_COMM_WORLD),
        "all_reduce");
  if (op == ReduceOp::Average) {
    if (tensor.dtype() != DType::Float32) throw DTypeError("distributed: all_reduce averages float32 tensors only");
    float* p = tensor.data_to_write();
    for (int64_t i = 0; i < tensor.numel(); ++i) p[i] /= static_cast<float>(my_size);
  }
}

void broadcast(Tensor& tensor, int root) {
  require_init("broadcast");
  if (root < 0 || root >= my_size) {
    throw ArgumentError("distributed: broadcast from rank " + std::to_string(root) + " of " + std::to_string(my_size));
  }
  const MPI_Datatype type = mpi_type(tensor, "broadcast");
  check(MPI_Bcast(tensor.raw_data_to_write(), static_cast<int>(tensor.numel()), type, root, MPI_COMM_WORLD),
        "broadcast");
}

void barrier() {
  require_init("barrier");
  check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void all_reduce_sum(double* values, int64_t count) {
  if (!joined || my_size == 1) return;
  sum_doubles(values, count);
}

void set_sync_batch_norm(bool on) {
  data_parallel::set_batch_norm_sum(on && joined && my_size > 1 ? &sum_doubles : nullptr);
}

// --- DataParallel ---------------------------------------------------------------------------------

struct DataParallel::State {
  struct Bucket {
    std::vector<size_t> members;  // parameter indices
    std::vector<float> buffer;    // their gradients, one after another
    std::vector<float> gathered;  // deterministic mode: every process's buffer
    int64_t waiting = 0;          // gradients not yet in this step
    bool started = false, stale = false;
    MPI_Request request = MPI_REQUEST_NULL;
    double started_at = 0;
  };
  std::vector<Tensor> params;
  DataParallelOptions options;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;  // per parameter
  std::vector<bool> arrived;      // per parameter, this step
  std::unordered_map<const void*, size_t> index;
  CommunicationStats stats;
  bool active = false;
  size_t buckets_started = 0;  // this step, by arrive()
  bool in_hook = false;        // finish() called from the leaf hook: the hook stays (inert) until prepare()

  void start(Bucket& b) {
    size_t at = 0;
    for (size_t i : b.members) {
      const Tensor g = params[i].grad();
      const size_t n = static_cast<size_t>(params[i].numel());
      if (g.defined()) {
        std::memcpy(b.buffer.data() + at, g.contiguous().read_ptr<float>(), n * sizeof(float));
      } else {
        std::fill_n(b.buffer.data() + at, n, 0.0f);
      }
      at += n;
    }
    b.started = true;
    b.started_at = now();
    const int n = static_cast<int>(b.buffer.size());
    if (options.deterministic) {
      b.gathered.resize(b.buffer.size() * static_cast<size_t>(my_size));
      check(MPI_Iallgather(b.buffer.data(), n, MPI_FLOAT, b.gathered.data(), n, MPI_FLOAT, MPI_COMM_WORLD, &b.request),
            "gradient allgather");
    } else {
      check(MPI_Iallreduce(MPI_IN_PLACE, b.buffer.data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &b.request),
            "gradient allreduce");
    }
    ++stats.buckets;
    stats.bytes += static_cast<int64_t>(b.buffer.size() * sizeof(float));
    progress_hook.fn = [](void* self) { static_cast<State*>(self)->poke(); };
    progress_hook.arg = this;
  }

  // Lets the collectives in flight move on (MPI progresses them only inside MPI calls).
  void poke() {
    for (Bucket& b : buckets) {
      if (b.request == MPI_REQUEST_NULL) continue;
      int done = 0;
      check(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "gradient allreduce");
      if (done) stats.total_seconds += now() - b.started_at;
    }
  }

  void arrive(const Tensor& leaf) {
    auto it = index.find(leaf.identity());
    if (it == index.end()) return;
    const size_t i = it->second;
    Bucket& b = buckets[bucket_of[i]];
    if (b.started) {
      b.stale = true;  // a parameter used twice got another gradient: reduced again at finish()
      return;
    }
    if (!arrived[i]) {
      arrived[i] = true;
      if (--b.waiting == 0) {
        start(b);
        ++buckets_started;
      }
    }
    poke();
  }

  void finish_bucket(Bucket& b) {
    const float scale = 1.0f / static_cast<float>(my_size);
    if (options.deterministic) {  // every process's gradients, added in rank order
      const size_t n = b.buffer.size();
      for (size_t k = 0; k < n; ++k) {
        float sum = 0.0f;
        for (int r = 0; r < my_size; ++r) sum += b.gathered[static_cast<size_t>(r) * n + k];
        b.buffer[k] = sum;
      }
    }
    size_t at = 0;
    for (size_t i : b.members) {
      Tensor g = Tensor::empty(params[i].shape());
      float* out = g.data_to_write();
      for (int64_t k = 0; k < g.numel(); ++k) out[k] = b.buffer[at + static_cast<size_t>(k)] * scale;
      at += static_cast<size_t>(g.numel());
      params[i].set_grad(g);
    }
  }
};

DataParallel::DataParallel(std::vector<Tensor> parameters, DataParallelOptions options)
    : state_(std::make_unique<State>()) {
  if (options.bucket_bytes < 1) throw ArgumentError("DataParallel: bucket_bytes must be positive");
  State& s = *state_;
  s.params = std::move(parameters);
  s.options = options;
  s.bucket_of.resize(s.params.size());
  // Reverse order: backward reaches the last layers first.
  int64_t filled = 0;
  for (size_t k = s.params.size(); k-- > 0;) {
    const Tensor& p = s.params[k];
    if (!p.defined() || p.dtype() != DType::Float32) {
      throw ArgumentError("DataParallel: parameter " + std::to_string(k) + " is not a float32 tensor");
    }
    if (!s.index.emplace(p.identity(), k).second) {
      throw ArgumentError("DataParallel: parameter " + std::to_string(k) + " is given twice");
    }
    const int64_t bytes = p.numel() * static_cast<int64_t>(sizeof(float));
    if (s.buckets.empty() || filled + bytes > options.bucket_bytes) {
      s.buckets.emplace_back();
      filled = 0;
    }
    s.buckets.back().members.push_back(k);
    s.bucket_of[k] = s.buckets.size() - 1;
    filled += bytes;
  }
  for (auto& b : s.buckets) {
    size_t n = 0;
    for (size_t i : b.members) n += static_cast<size_t>(s.params[i].numel());
    b.buffer.resize(n);
  }
}

DataParallel::~DataParallel() {
  if (state_ && progress_hook.arg == state_.get()) progress_hook = {};
  if (state_ && state_->active) autograd::set_leaf_hook({});
  if (!state_) return;
  for (auto& b : state_->buckets) {  // a step abandoned by an exception: its requests end here
    if (b.request != MPI_REQUEST_NULL) MPI_Wait(&b.request, MPI_STATUS_IGNORE);
  }
}

void DataParallel::broadcast_parameters(const std::vector<Tensor>& extra) {
  if (!joined || my_size == 1) return;
  std::vector<Tensor> all = state_->params;
  all.insert(all.end(), extra.begin(), extra.end());
  for (Tensor& t : all) {
    if (!t.defined()) continue;
    Tensor c = t.contiguous();
    broadcast(c, 0);
    if (!c.is_same(t)) t.copy_(c);
  }
}

void DataParallel::prepare() {
  State& s = *state_;
  s.arrived.assign(s.params.size(), false);
  for (auto& b : s.buckets) {
    b.waiting = static_cast<int64_t>(b.members.size());
    b.started = b.stale = false;
  }
  if (!joined || my_size == 1) return;
  s.active = true;
  s.buckets_started = 0;
  autograd::set_leaf_hook([this, &s](const Tensor& leaf) {
    if (!s.active) return;
    s.arrive(leaf);
    if (s.options.finish_when_complete && s.buckets_started == s.buckets.size()) {
      s.in_hook = true;
      finish();
      s.in_hook = false;
    }
  });
}

void DataParallel::finish() {
  State& s = *state_;
  if (!s.active) return;
  ++s.stats.steps;
  if (!s.in_hook) autograd::set_leaf_hook({});  // (a function may not destroy itself while it runs)
  s.active = false;
  const double wait_start = now();
  for (auto& b : s.buckets) {
    if (!b.started) s.start(b);  // parameters without a gradient this step count as zeros
  }
  for (auto& b : s.buckets) {
    if (b.request != MPI_REQUEST_NULL) {
      check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "gradient allreduce");
      s.stats.total_seconds += now() - b.started_at;
    }
    if (b.stale) {  // reduce again with every gradient in
      s.start(b);
      check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "gradient allreduce");
    }
    s.finish_bucket(b);
  }
  progress_hook = {};
  s.stats.exposed_seconds += now() - wait_start;
}

const CommunicationStats& DataParallel::stats() const { return state_->stats; }

}  // namespace tinytorch::distributed

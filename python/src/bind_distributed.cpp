// tinytorch.distributed: MPI's collectives and the gradient reducer (include/tinytorch/distributed.hpp).
// The Python module tinytorch/distributed.py builds DistributedDataParallel and the sampler on these.
#include "bindings.hpp"
#include "tinytorch/distributed.hpp"

namespace tinytorch::python {

namespace {

namespace td = tt::distributed;

td::ReduceOp reduce_op(const std::string& op) {
  if (op == "sum") return td::ReduceOp::Sum;
  if (op == "avg" || op == "average" || op == "mean") return td::ReduceOp::Average;
  if (op == "max") return td::ReduceOp::Max;
  if (op == "min") return td::ReduceOp::Min;
  throw py::value_error("all_reduce: op must be 'sum', 'avg', 'max' or 'min', got '" + op + "'");
}

// A shard of a global batch for the duration of a `with` block (ShardScope).
struct ShardContext {
  int64_t begin, end, batch;
  std::unique_ptr<td::ShardScope> scope;
};

}  // namespace

void bind_distributed(py::module_& m) {
  py::register_exception<tt::DistributedError>(m, "DistributedError", PyExc_RuntimeError);
  m.def("distributed_available", &td::available, "Whether this build has MPI.");
  m.def("distributed_launched", &td::launched, "Whether mpirun/srun started this process.");
  m.def("distributed_init", &td::init, "Joins the MPI job (once).");
  m.def("distributed_initialized", &td::initialized);
  m.def("distributed_rank", &td::rank);
  m.def("distributed_world_size", &td::world_size);
  m.def("distributed_local_size", &td::local_size);
  m.def("distributed_abort", &td::abort_job, "code"_a,
        "Ends every process of the job (MPI_Abort) after an error in this one; nothing when alone.");
  m.def(
      "distributed_all_reduce", [](tt::Tensor& t, const std::string& op) { td::all_reduce(t, reduce_op(op)); },
      "tensor"_a, "op"_a = "sum", "In place over every process: a contiguous float32 or int64 Tensor.");
  m.def(
      "distributed_broadcast", [](tt::Tensor& t, int src) { td::broadcast(t, src); }, "tensor"_a, "src"_a = 0,
      "In place: rank src's values to every process.");
  m.def("distributed_barrier", &td::barrier);
  m.def("distributed_set_sync_batch_norm", &td::set_sync_batch_norm, "on"_a);
  m.def("distributed_shard_rows", &td::shard_rows, "batch"_a, "rank"_a, "world"_a);
  py::class_<ShardContext>(m, "ShardScope", "with ShardScope(begin, end, batch): this process's rows of a batch.")
      .def(py::init([](int64_t begin, int64_t end, int64_t batch) {
             return ShardContext{begin, end, batch, nullptr};
           }),
           "begin"_a, "end"_a, "batch"_a)
      .def("__enter__",
           [](ShardContext& c) -> ShardContext& {
             c.scope = std::make_unique<td::ShardScope>(c.begin, c.end, c.batch);
             return c;
           })
      .def("__exit__", [](ShardContext& c, const py::args&) { c.scope.reset(); });
  py::class_<td::DataParallel>(m, "DataParallelReducer", R"doc(
Averages the parameters' gradients over the processes in buckets started during backward
(tinytorch::distributed::DataParallel): prepare() before each forward; finish() after backward, or
by itself once every parameter has its gradient with finish_when_complete.)doc")
      .def(py::init([](std::vector<tt::Tensor> params, int64_t bucket_bytes, bool deterministic, bool auto_finish) {
             td::DataParallelOptions o;
             o.bucket_bytes = bucket_bytes;
             o.deterministic = deterministic;
             o.finish_when_complete = auto_finish;
             return std::make_unique<td::DataParallel>(std::move(params), o);
           }),
           "params"_a, "bucket_bytes"_a = 512 << 10, "deterministic"_a = false, "finish_when_complete"_a = false)
      .def("broadcast_parameters", &td::DataParallel::broadcast_parameters, "extra"_a = std::vector<tt::Tensor>{})
      .def("prepare", &td::DataParallel::prepare)
      .def("finish", &td::DataParallel::finish)
      .def_property_readonly("stats", [](const td::DataParallel& d) {
        const td::CommunicationStats& s = d.stats();
        return py::dict("steps"_a = s.steps, "buckets"_a = s.buckets, "bytes"_a = s.bytes,
                        "total_seconds"_a = s.total_seconds, "exposed_seconds"_a = s.exposed_seconds);
      });
}

}  // namespace tinytorch::python

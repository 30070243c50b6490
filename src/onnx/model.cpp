// Running an imported graph (onnx.hpp): a slot per value, filled with the constants and the inputs,
// then each node in order; a tensor is dropped after the last node that reads it. A node computed
// from shapes alone runs once per distinct input values (ShapeMemo), and a run with input shapes
// seen before skips the Shape nodes and those nodes altogether (ShapeMemo::Run). A frozen Conv's
// weight goes back to the system once prepared, and is read back from the file before a run that
// could read it (ReleasedWeights).
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <optional>

#include "core/parallel.hpp"
#include "onnx/graph.hpp"
#include "ops/conv2d_select.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/onnx.hpp"

namespace tinytorch::onnx {

namespace detail {

std::string Node::where() const { return op + " node '" + name + "' (opset " + std::to_string(opset) + ")"; }

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::Int)
    throw DataError("onnx: " + where() + ": attribute '" + key + "' is not an int");
  return it->second.i;
}

float Node::attr_float(const std::string& key, float fallback) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::Float)
    throw DataError("onnx: " + where() + ": attribute '" + key + "' is not a float");
  return it->second.f;
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::String)
    throw DataError("onnx: " + where() + ": attribute '" + key + "' is not a string");
  return it->second.s;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (it->second.kind != Attribute::Kind::Ints)
    throw DataError("onnx: " + where() + ": attribute '" + key + "' is not a list of ints");
  return it->second.ints;
}

}  // namespace detail

namespace {

// ShapeMemo keeps tensors of at most this many elements (a shape has a handful), and this many
// distinct inputs per node.
constexpr int64_t kMemoElements = 64;
constexpr size_t kMemoEntries = 4;

bool memo_sized(const std::vector<Tensor>& ts) {
  return std::all_of(ts.begin(), ts.end(), [](const Tensor& t) { return !t.defined() || t.numel() <= kMemoElements; });
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.read_raw_data(), cb.read_raw_data(),
                     static_cast<size_t>(a.numel()) * element_size(a.dtype())) == 0;
}

// A shape-only node's outputs from the memo when a recent run gave it the same input values; else
// it runs, and what it computed is kept for the runs after. Nothing for other nodes.
class ShapeOnly {
 public:
  ShapeOnly(const detail::Graph& g, size_t node, const std::vector<Tensor>& args)
      : memo_(*g.shape_memo), node_(node), args_(args), kept_(g.nodes[node].shape_only && memo_sized(args)) {}

  bool kept() const { return kept_; }

  bool find(std::vector<Tensor>& outs) const {
    if (!kept_) return false;
    const std::lock_guard<std::mutex> lock(memo_.mutex);
    for (const auto& e : memo_.nodes[node_]) {
      bool same = e.inputs.size() == args_.size();
      for (size_t k = 0; same && k < args_.size(); ++k) same = same_values(e.inputs[k], args_[k]);
      if (same) {
        outs = e.outputs;
        return true;
      }
    }
    return false;
  }

  void keep(const std::vector<Tensor>& outs) const {
    if (!kept_ || !memo_sized(outs)) return;
    detail::ShapeMemo::Entry e;
    for (const Tensor& t : args_) e.inputs.push_back(t.defined() ? t.clone() : Tensor());
    for (const Tensor& t : outs) e.outputs.push_back(t.defined() ? t.clone() : Tensor());
    const std::lock_guard<std::mutex> lock(memo_.mutex);
    auto& entries = memo_.nodes[node_];
    if (entries.size() == kMemoEntries) entries.erase(entries.begin());
    entries.push_back(std::move(e));
  }

 private:
  detail::ShapeMemo& memo_;
  size_t node_;
  const std::vector<Tensor>& args_;
  bool kept_;
};

// A run's shape-only outputs (ShapeMemo::Run): the entry recorded for the run's input shapes, or
// nullptr; and a finished recording kept, the least recently kept dropped beyond kMemoEntries.
std::shared_ptr<const detail::ShapeMemo::Run> shape_run(detail::ShapeMemo& memo, const std::vector<Shape>& key) {
  const std::lock_guard<std::mutex> lock(memo.mutex);
  for (const auto& r : memo.runs) {
    if (r->key == key) return r;
  }
  return nullptr;
}

void keep_shape_run(detail::ShapeMemo& memo, std::shared_ptr<const detail::ShapeMemo::Run> run) {
  const std::lock_guard<std::mutex> lock(memo.mutex);
  for (const auto& r : memo.runs) {
    if (r->key == run->key) return;  // another thread's run kept it first
  }
  if (memo.runs.size() == kMemoEntries) memo.runs.erase(memo.runs.begin());
  memo.runs.push_back(std::move(run));
}

// --- released weights (graph.hpp, ReleasedWeights) ---

// The algorithms that read a frozen weight only to make its prepared form (ops/prepared_weights.hpp),
// as conv_algorithm names them.
bool reads_prepared_only(const std::string& algorithm) {
  const std::string a = algorithm.rfind("pad + ", 0) == 0 ? algorithm.substr(6) : algorithm;
  for (const char* kind : {"winograd", "blocked", "direct", "ocblock"}) {
    if (a.rfind(kind, 0) == 0) return true;
  }
  return false;
}

int64_t mtime_ns(const struct stat& st) { return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec; }

// ReleasedWeights::Entry::key for a node's inputs now: the settings, then each input's rank and
// sizes. Given `compare`, says whether it equals that key instead (without allocating: every run
// checks every released node).
bool release_key(const std::vector<Tensor>& args, std::vector<int64_t>* out, const std::vector<int64_t>* compare) {
  size_t at = 0;
  bool same = true;
  auto put = [&](int64_t v) {
    if (out) out->push_back(v);
    if (compare) same = same && at < compare->size() && (*compare)[at] == v;
    ++at;
  };
  put(get_num_threads());
  put(static_cast<int64_t>(ops::forced_conv2d_algorithm().load()));
  put(ops::conv2d_autotune_enabled().load() ? 1 : 0);
  put(ops::conv2d_tuning_generation());
  for (const Tensor& t : args) {
    put(t.defined() ? t.dim() : -1);
    if (t.defined()) {
      for (int64_t d : t.shape()) put(d);
    }
  }
  return same && (!compare || at == compare->size());
}

// Every released weight read back from the file, under r.mutex; the model keeps them from then on.
void read_back(detail::ReleasedWeights& r) {
  if (r.kept) return;
  r.kept = true;
  if (r.entries.empty()) return;
  struct stat st {};
  if (::stat(r.path.c_str(), &st) != 0 || st.st_size != r.file_size || mtime_ns(st) != r.file_mtime_ns) {
    throw DataError("onnx: '" + r.path +
                    "' changed or went since the model was loaded; a new input shape needs weights the model gave "
                    "back (load with keep_weights to hold them)");
  }
  const std::shared_ptr<const detail::Graph> again = detail::load_graph(r.path);
  for (const detail::ReleasedWeights::Entry& e : r.entries) {
    const Tensor* w = nullptr;
    if (e.node < again->nodes.size() && again->nodes[e.node].inputs.size() > 1) {
      const int v = again->nodes[e.node].inputs[1];
      if (v >= 0) w = &again->values[static_cast<size_t>(v)].constant;
    }
    if (!w || !w->defined() || w->numel() != e.floats || !w->is_contiguous() || w->dtype() != DType::Float32) {
      throw DataError("onnx: '" + r.path + "' no longer holds the weights the model was loaded with");
    }
    std::memcpy(e.data, w->data(), static_cast<size_t>(e.floats) * sizeof(float));
  }
  r.entries.clear();
}

// Before node i runs: a released weight it may read again (other shapes, another thread count or
// conv setting, the tuning forgotten) is read back first, with all the others.
void before_node(detail::ReleasedWeights& r, size_t i, const std::vector<Tensor>& args) {
  const std::lock_guard<std::mutex> lock(r.mutex);
  if (r.kept) return;
  const auto e = std::find_if(r.entries.begin(), r.entries.end(), [&](const auto& x) { return x.node == i; });
  if (e == r.entries.end()) return;
  if (!release_key(args, nullptr, &e->key)) read_back(r);
}

// After node i ran alone (no other run of the model under way): its weight's pages go back to the
// system when only this node reads it and its algorithm reads it only to prepare it.
void after_node(detail::ReleasedWeights& r, size_t i, const detail::Node& node, const std::vector<Tensor>& args) {
  const std::lock_guard<std::mutex> lock(r.mutex);
  if (r.kept || r.active_runs != 1 || node.inputs.size() < 2 || node.inputs[1] < 0) return;
  if (!r.releasable[static_cast<size_t>(node.inputs[1])]) return;
  if (std::any_of(r.entries.begin(), r.entries.end(), [&](const auto& x) { return x.node == i; })) return;
  const std::string algorithm = detail::conv_algorithm(node, args);
  if (!reads_prepared_only(algorithm)) return;
  const Tensor& w = args[1];
  float* data = Tensor(w).data_to_write();  // its pages read as zeros until restored: a change
  // The whole pages inside the weight (a small one may share its first and last with others).
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  char* begin = reinterpret_cast<char*>(data);
  const uintptr_t misaligned = reinterpret_cast<uintptr_t>(begin) % page;
  if (misaligned != 0) begin += page - misaligned;
  char* end = reinterpret_cast<char*>(data + w.numel());
  end -= reinterpret_cast<uintptr_t>(end) % page;
  if (end <= begin) return;
  if (::madvise(begin, static_cast<size_t>(end - begin), MADV_DONTNEED) != 0) return;
  std::vector<int64_t> key;
  release_key(args, &key, nullptr);
  r.entries.push_back({i, data, w.numel(), std::move(key)});
}

// Counts the runs under way, for after_node.
class ActiveRun {
 public:
  explicit ActiveRun(detail::ReleasedWeights& r) : r_(r.path.empty() ? nullptr : &r) {
    if (!r_) return;
    const std::lock_guard<std::mutex> lock(r_->mutex);
    ++r_->active_runs;
  }
  ~ActiveRun() {
    if (!r_) return;
    const std::lock_guard<std::mutex> lock(r_->mutex);
    --r_->active_runs;
  }
  ActiveRun(const ActiveRun&) = delete;
  ActiveRun& operator=(const ActiveRun&) = delete;

 private:
  detail::ReleasedWeights* r_;
};

void check_input(const ValueInfo& info, const Tensor& t) {
  if (info.dims.empty()) return;
  bool ok = static_cast<int64_t>(info.dims.size()) == t.dim();
  for (size_t d = 0; ok && d < info.dims.size(); ++d) ok = info.dims[d] < 0 || info.dims[d] == t.shape()[d];
  if (!ok) {
    std::string want = "(";
    for (size_t d = 0; d < info.dims.size(); ++d) {
      want += (d ? ", " : "") + (info.dims[d] < 0 ? std::string("N") : std::to_string(info.dims[d]));
    }
    throw ShapeError("onnx: input '" + info.name + "' expects shape " + want + "), got " + shape_to_string(t.shape()));
  }
}

}  // namespace

namespace detail {

void release_weights_from(Graph& g, const std::string& path) {
  ReleasedWeights& r = *g.released;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  // A value is releasable when a frozen Conv reads it as its weight and nothing else reads it or
  // shares its storage.
  std::vector<int> reads(g.values.size()), weight_reads(g.values.size());
  for (const Node& n : g.nodes) {
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k] < 0) continue;
      ++reads[static_cast<size_t>(n.inputs[k])];
      if (k == 1 && n.op == "Conv" && n.frozen_weight) ++weight_reads[static_cast<size_t>(n.inputs[k])];
    }
  }
  for (int o : g.outputs) ++reads[static_cast<size_t>(o)];
  std::map<const void*, int> storages;
  for (const Value& v : g.values) {
    if (v.constant.defined()) ++storages[v.constant.storage_id()];
  }
  r.releasable.assign(g.values.size(), 0);
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Tensor& t = g.values[v].constant;
    r.releasable[v] = t.defined() && reads[v] == 1 && weight_reads[v] == 1 && t.dtype() == DType::Float32 &&
                      t.is_contiguous() && storages[t.storage_id()] == 1;
  }
  r.path = path;
  r.file_size = st.st_size;
  r.file_mtime_ns = mtime_ns(st);
  // A prepared form missed later (evicted from the cache, or a new kind) reads its weight: back first.
  ops::set_frozen_restorer(g.weights.id(), [weak = std::weak_ptr<ReleasedWeights>(g.released)](const float* w) {
    const std::shared_ptr<ReleasedWeights> released = weak.lock();
    if (!released) return;
    const std::lock_guard<std::mutex> lock(released->mutex);
    if (std::any_of(released->entries.begin(), released->entries.end(), [&](const auto& e) { return e.data == w; })) {
      read_back(*released);
    }
  });
}

}  // namespace detail

Model::Model(std::shared_ptr<const detail::Graph> graph) : graph_(std::move(graph)) {}

std::map<std::string, Tensor> Model::run(const std::map<std::string, Tensor>& inputs) const {
  return execute(inputs, nullptr);
}

std::map<std::string, Tensor> Model::execute(const std::map<std::string, Tensor>& inputs, Observer* observer) const {
  const detail::Graph& g = *graph_;
  std::vector<Shape> key;
  key.reserve(inputs.size());
  for (const auto& [name, t] : inputs) key.push_back(t.shape());
  // What the shape-only nodes gave on a run with these input shapes, or the recording of it.
  const std::shared_ptr<const detail::ShapeMemo::Run> skip = shape_run(*g.shape_memo, key);
  std::shared_ptr<detail::ShapeMemo::Run> record;
  if (!skip) {
    record = std::make_shared<detail::ShapeMemo::Run>();
    record->key = key;
    record->outputs.resize(g.nodes.size());
    record->read.resize(g.nodes.size());
  }
  bool skipping = skip != nullptr;  // until a Shape node reads a shape other than the recorded one
  // Declared first, so it ends last: every intermediate tensor is freed inside the run.
  const tinytorch::MemoryPlan::Run planned(*g.memory, std::move(key));
  std::vector<Tensor> slot(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) slot[v] = g.values[v].constant;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const ValueInfo& info = g.input_info[i];
    const auto it = inputs.find(info.name);
    if (it == inputs.end()) throw ShapeError("onnx: the model's input '" + info.name + "' was not given");
    check_input(info, it->second);
    slot[static_cast<size_t>(g.inputs[i])] = it->second;
  }
  if (inputs.size() != g.inputs.size()) {
    for (const auto& given : inputs) {
      const std::string& name = given.first;
      if (std::none_of(g.input_info.begin(), g.input_info.end(), [&](const ValueInfo& v) { return v.name == name; })) {
        throw ShapeError("onnx: the model has no input named '" + name + "'");
      }
    }
  }
  std::vector<Tensor> args;
  detail::ReleasedWeights& released = *g.released;
  const ActiveRun active(released);
  const WarmTeam warm;                  // the nodes' parallel regions follow each other
  const ops::Conv2dTuningScope tuning;  // a model runs its shapes many times: time the candidates once
  // Frees what no later node reads once node i has run.
  auto free_inputs = [&](size_t i) {
    for (int in : g.nodes[i].inputs) {
      if (in >= 0 && g.last_use[static_cast<size_t>(in)] == static_cast<int>(i) &&
          !g.values[static_cast<size_t>(in)].constant.defined()) {
        slot[static_cast<size_t>(in)] = Tensor();
      }
    }
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const detail::Node& node = g.nodes[i];
    if (skipping && node.op == "Shape") {
      // Every Shape node checks that the tensor it reads has the shape it read then (else this node
      // and all after it run), one that runs (its output the caller's) too: the nodes skipped after
      // it may read what it gives.
      const std::optional<Shape>& read = skip->read[i];
      skipping = read && !node.inputs.empty() && node.inputs[0] >= 0 &&
                 slot[static_cast<size_t>(node.inputs[0])].shape() == *read;
    }
    if (skipping && !skip->outputs[i].empty()) {  // recorded for these input shapes: the outputs as they were
      const std::vector<Tensor>& outs = skip->outputs[i];
      if (observer) {
        args.clear();
        for (int in : node.inputs) args.push_back(in >= 0 ? slot[static_cast<size_t>(in)] : Tensor());
        observer->node(i, args, outs, 0.0);
      }
      for (size_t o = 0; o < node.outputs.size() && o < outs.size(); ++o) {
        if (node.outputs[o] >= 0) slot[static_cast<size_t>(node.outputs[o])] = outs[o];
      }
      free_inputs(i);
      continue;
    }
    args.clear();
    for (int in : node.inputs) args.push_back(in >= 0 ? slot[static_cast<size_t>(in)] : Tensor());
    std::optional<ops::FrozenWeights> frozen;
    if (node.frozen_weight) frozen.emplace(g.weights.id());
    if (node.frozen_weight && !released.path.empty()) before_node(released, i, args);
    const auto start = observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    std::vector<Tensor> outs;
    const ShapeOnly shapes(g, i, args);
    if (!shapes.find(outs)) {
      // A node the memo serves runs outside the memory plan: the runs it is skipped in must
      // allocate what the recording did.
      std::optional<tinytorch::MemoryPlan::Outside> outside;
      if (shapes.kept() || node.op == "Shape") outside.emplace();
      try {
        outs = node.run(node, args);
      } catch (const std::bad_alloc&) {  // shapes a file computes (Expand, ConstantOfShape) can be absurd
        throw DataError("onnx: " + node.where() +
                        ": out of memory for its output (the shapes it computes are too large)");
      }
      shapes.keep(outs);
      if (node.frozen_weight && !released.path.empty()) after_node(released, i, node, args);
    }
    // Recorded for the runs with these input shapes: a Shape node's outputs and a memo-sized
    // shape-only node's, both computed outside the memory plan (so that skipping them leaves its
    // order as recorded). Not a Shape node that gives a graph output, which the caller owns and
    // may change (shape-only nodes never do: plan_lifetimes).
    const bool read_shape = node.op == "Shape" && !args.empty() && args[0].defined();
    if (record && read_shape) record->read[i] = args[0].shape();
    const bool recordable_shape =
        read_shape && std::none_of(node.outputs.begin(), node.outputs.end(), [&](int out) {
          return out >= 0 && g.last_use[static_cast<size_t>(out)] == std::numeric_limits<int>::max();
        });
    if (record && (shapes.kept() || recordable_shape) && memo_sized(outs) && !outs.empty()) {
      const tinytorch::MemoryPlan::Outside kept;  // copies that outlive the run, allocated as no run repeats
      for (const Tensor& t : outs) record->outputs[i].push_back(t.defined() ? t.clone() : Tensor());
    }
    if (observer) {
      observer->node(i, args, outs, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    for (size_t o = 0; o < node.outputs.size() && o < outs.size(); ++o) {
      if (node.outputs[o] >= 0) slot[static_cast<size_t>(node.outputs[o])] = std::move(outs[o]);
    }
    free_inputs(i);
  }
  if (record) keep_shape_run(*g.shape_memo, std::move(record));
  std::map<std::string, Tensor> out;
  for (int o : g.outputs) out[g.values[static_cast<size_t>(o)].name] = slot[static_cast<size_t>(o)];
  return out;
}

std::vector<Tensor> Model::forward(const Tensor& input) const {
  if (graph_->inputs.size() != 1) {
    throw ShapeError("onnx: the model has " + std::to_string(graph_->inputs.size()) +
                     " inputs; give them by name with run({name: tensor})");
  }
  const auto outs = run({{graph_->input_info[0].name, input}});
  std::vector<Tensor> result;
  for (const ValueInfo& o : graph_->output_info) result.push_back(outs.at(o.name));
  return result;
}

Tensor Model::operator()(const Tensor& input) const {
  if (graph_->outputs.size() != 1) {
    throw ShapeError("onnx: the model has " + std::to_string(graph_->outputs.size()) +
                     " outputs; forward() returns them all");
  }
  return forward(input)[0];
}

const std::vector<ValueInfo>& Model::inputs() const { return graph_->input_info; }
const std::vector<ValueInfo>& Model::outputs() const { return graph_->output_info; }
int64_t Model::opset() const { return graph_->opset; }
std::string Model::producer() const { return graph_->producer; }
int64_t Model::num_nodes() const { return static_cast<int64_t>(graph_->nodes.size()); }

int64_t Model::released_weight_bytes() const {
  detail::ReleasedWeights& r = *graph_->released;
  const std::lock_guard<std::mutex> lock(r.mutex);
  int64_t floats = 0;
  for (const auto& e : r.entries) floats += e.floats;
  return floats * static_cast<int64_t>(sizeof(float));
}

std::vector<std::string> Model::op_types() const {
  std::vector<std::string> ops;
  for (const auto& n : graph_->nodes) ops.push_back(n.op);
  return ops;
}

std::vector<std::string> Model::describe_nodes() const {
  std::vector<std::string> lines;
  for (const auto& n : graph_->nodes) {
    std::string line = n.op + " '" + n.name + "'";
    const size_t residual = n.pointwise_first ? 5 : 3;  // the Conv's input
    if (n.op == "Conv" && n.inputs.size() > residual && n.inputs[residual] >= 0) line += " + residual";
    if (n.epilogue.activation != kernels::Activation::None) line += " + " + kernels::to_string(n.epilogue);
    if (!n.fused.empty()) {
      line += "  (took in";
      for (size_t i = 0; i < n.fused.size(); ++i) line += (i ? ", " : " ") + n.fused[i];
      line += ")";
    }
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> supported_operators() {
  std::vector<std::string> names = detail::op_names();
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tinytorch::onnx

// Running an imported graph (onnx.hpp): a slot per value, filled with the constants and the inputs,
// then each node in order; a tensor is dropped after the last node that reads it. A node computed
// from shapes alone runs once per distinct input values (ShapeMemo).
#include <algorithm>
#include <chrono>
#include <cstring>
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
  return std::memcmp(ca.raw_data(), cb.raw_data(), static_cast<size_t>(a.numel()) * element_size(a.dtype())) == 0;
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

Model::Model(std::shared_ptr<const detail::Graph> graph) : graph_(std::move(graph)) {}

std::map<std::string, Tensor> Model::run(const std::map<std::string, Tensor>& inputs) const {
  return execute(inputs, nullptr);
}

std::map<std::string, Tensor> Model::execute(const std::map<std::string, Tensor>& inputs, Observer* observer) const {
  const detail::Graph& g = *graph_;
  std::vector<Shape> key;
  key.reserve(inputs.size());
  for (const auto& [name, t] : inputs) key.push_back(t.shape());
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
  const WarmTeam warm;                  // the nodes' parallel regions follow each other
  const ops::Conv2dTuningScope tuning;  // a model runs its shapes many times: time the candidates once
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const detail::Node& node = g.nodes[i];
    args.clear();
    for (int in : node.inputs) args.push_back(in >= 0 ? slot[static_cast<size_t>(in)] : Tensor());
    std::optional<ops::FrozenWeights> frozen;
    if (node.frozen_weight) frozen.emplace(g.weights.id());
    const auto start = observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    std::vector<Tensor> outs;
    const ShapeOnly shapes(g, i, args);
    if (!shapes.find(outs)) {
      // A node the memo serves runs outside the memory plan: the runs it is skipped in must
      // allocate what the recording did.
      std::optional<tinytorch::MemoryPlan::Outside> outside;
      if (shapes.kept()) outside.emplace();
      try {
        outs = node.run(node, args);
      } catch (const std::bad_alloc&) {  // shapes a file computes (Expand, ConstantOfShape) can be absurd
        throw DataError("onnx: " + node.where() +
                        ": out of memory for its output (the shapes it computes are too large)");
      }
      shapes.keep(outs);
    }
    if (observer) {
      observer->node(i, args, outs, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    for (size_t o = 0; o < node.outputs.size() && o < outs.size(); ++o) {
      if (node.outputs[o] >= 0) slot[static_cast<size_t>(node.outputs[o])] = std::move(outs[o]);
    }
    for (int in : node.inputs) {  // free what no later node reads
      if (in >= 0 && g.last_use[static_cast<size_t>(in)] == static_cast<int>(i) &&
          !g.values[static_cast<size_t>(in)].constant.defined()) {
        slot[static_cast<size_t>(in)] = Tensor();
      }
    }
  }
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

std::vector<std::string> Model::op_types() const {
  std::vector<std::string> ops;
  for (const auto& n : graph_->nodes) ops.push_back(n.op);
  return ops;
}

std::vector<std::string> Model::describe_nodes() const {
  std::vector<std::string> lines;
  for (const auto& n : graph_->nodes) {
    std::string line = n.op + " '" + n.name + "'";
    if (n.op == "Conv" && n.inputs.size() > 3 && n.inputs[3] >= 0) line += " + residual";
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

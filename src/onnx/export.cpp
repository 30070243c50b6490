// ONNX export (onnx.hpp): the model runs once under a trace::Recorder (core/trace.hpp) that turns
// each op call into ONNX nodes of opset 13, written with the ONNX project's generated protobuf
// classes. What ONNX spells differently from the op is translated here: the shape a Reshape
// keeps, 3-D images around Conv and the pools, a 1-D Linear, ReduceSum's axes input, operands of
// another dtype. The result is pruned to what the outputs need, checked, imported back and run.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/trace.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/file_io.hpp"
#include "tinytorch/onnx.hpp"
#include "tinytorch/random.hpp"
#include "tinytorch/version.hpp"

namespace tinytorch::onnx {
namespace {

constexpr int64_t kOpset = 13;
constexpr const char* kBatch = "batch";

::onnx::TensorProto_DataType onnx_type(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return ::onnx::TensorProto_DataType_FLOAT;
    case DType::Int64:
      return ::onnx::TensorProto_DataType_INT64;
    case DType::Bool:
      return ::onnx::TensorProto_DataType_BOOL;
  }
  return ::onnx::TensorProto_DataType_UNDEFINED;
}

// The dtype ONNX wants input i of `call` in, where ours promote mixed operands: the output's for
// arithmetic, the operands' common one for comparisons; nullopt where the input's own is right.
std::optional<DType> operand_type(const trace::Call& call, size_t i) {
  static const std::set<std::string> kArithmetic{"Add", "Sub",     "Mul",    "Div",  "Pow",   "Max",
                                                 "Min", "Clip",    "Exp",    "Log",  "Sqrt",  "Tanh",
                                                 "Erf", "Sigmoid", "MatMul", "Gemm", "Concat"};
  static const std::set<std::string> kCompare{"Equal", "NotEqual", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
  if (kArithmetic.count(call.op)) return call.output.dtype();
  if (kCompare.count(call.op)) return promote_types(call.inputs[0].dtype(), call.inputs[1].dtype());
  if (call.op == "Where" && i > 0) return call.output.dtype();
  return std::nullopt;
}

void set_type(::onnx::ValueInfoProto* info, const Tensor& t, bool symbolic_batch) {
  auto* type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx_type(t.dtype()));
  auto* shape = type->mutable_shape();
  for (int64_t d = 0; d < t.dim(); ++d) {
    auto* dim = shape->add_dim();
    if (d == 0 && symbolic_batch) {
      dim->set_dim_param(kBatch);
    } else {
      dim->set_dim_value(t.size(d));
    }
  }
}

class Tracer final : public trace::Recorder {
 public:
  Tracer(::onnx::GraphProto* graph, const ExportOptions& options) : graph_(graph), options_(options) {
    for (const auto& [name, t] : options.named_tensors) {
      if (t.defined()) param_names_.emplace(t.identity(), name);
    }
  }

  void add_input(const Tensor& t, const std::string& name) {
    if (t.dim() > 0) batch_ = t.size(0);
    set_type(graph_->add_input(), t, options_.dynamic_batch && t.dim() > 0);
    graph_->mutable_input(graph_->input_size() - 1)->set_name(name);
    bind(t, name);
  }

  void record(trace::Call call) override {
    std::vector<std::string> inputs;
    for (size_t i = 0; i < call.inputs.size(); ++i) {
      const Tensor& t = call.inputs[i];
      const std::optional<DType> want = t.defined() ? operand_type(call, i) : std::nullopt;
      if (!t.defined()) {
        inputs.emplace_back();  // an absent optional input
      } else if (want && *want != t.dtype()) {
        inputs.push_back(cast(t, *want));
      } else {
        inputs.push_back(value_of(t));
      }
    }
    const std::string out = fresh(call.op);
    const int64_t rank = call.inputs.empty() ? 0 : call.inputs[0].dim();
    if (call.op == "Reshape") {
      inputs.push_back(constant(Tensor::int64({call.output.dim()}, kept_shape(call.inputs[0], call.output))));
    } else if (call.op == "Expand") {
      inputs[1] = constant(Tensor::int64({call.output.dim()}, kept_shape(call.inputs[0], call.output, 1)));
    } else if (call.op == "NotEqual") {
      bind(call.output, emit("Not", {emit("Equal", inputs, fresh("Equal"))}, out));
      return;
    } else if (call.op == "ReduceSum") {
      for (auto& attr : call.attrs) {
        if (attr.name != "axes") continue;
        const auto& axes = std::get<std::vector<int64_t>>(attr.value);
        inputs.push_back(constant(Tensor::int64({static_cast<int64_t>(axes.size())}, axes)));
      }
      std::erase_if(call.attrs, [](const trace::Attr& a) { return a.name == "axes"; });
    }
    // Conv and the pools take a batch; Gemm a matrix: one is added around them and taken off after.
    const bool needs_batch = (call.op == "Conv" || call.op == "MaxPool" || call.op == "AveragePool") && rank == 3;
    const bool needs_row = call.op == "Gemm" && rank == 1;
    if (needs_batch || needs_row) {
      const std::string axes = constant(Tensor::int64({1}, {0}));
      inputs[0] = emit("Unsqueeze", {inputs[0], axes}, fresh("Unsqueeze"));
      const std::string inner = emit(call.op, inputs, fresh(call.op), call.attrs);
      bind(call.output, emit("Squeeze", {inner, axes}, out));
      return;
    }
    bind(call.output, emit(call.op, inputs, out, call.attrs));
  }

  // Names the graph outputs: a value a node made is renamed where it is made; an input, a constant
  // or a value already named passes through an Identity.
  void add_outputs(const std::vector<Tensor>& outputs, const std::vector<std::string>& names) {
    std::set<std::string> inputs;
    for (const auto& in : graph_->input()) inputs.insert(in.name());
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string value = value_of(outputs[i]);
      auto made = producer_.find(value);
      if (made != producer_.end() && !inputs.count(value) && !renamed_.count(value)) {
        rename(value, names[i]);
        renamed_.insert(names[i]);
      } else {
        emit("Identity", {value}, names[i]);
      }
      set_type(graph_->add_output(), outputs[i],
               options_.dynamic_batch && outputs[i].dim() > 0 && outputs[i].size(0) == batch_);
      graph_->mutable_output(graph_->output_size() - 1)->set_name(names[i]);
    }
    prune();
  }

 private:
  void bind(const Tensor& t, const std::string& name) {
    values_[t.identity()] = name;
    used_.insert(name);
    alive_.push_back(t);  // an identity must not be reused by a later tensor while tracing
  }

  std::string fresh(const std::string& stem) {
    for (;;) {
      std::string name = "/" + stem + "_" + std::to_string(counter_++);
      if (!used_.count(name)) {
        used_.insert(name);
        return name;
      }
    }
  }

  // The value `t` is: a graph input, a node's output, or (read but never made by a recorded op) a
  // constant. A tensor with an autograd node was computed by an op the tracer does not record.
  std::string value_of(const Tensor& t) {
    auto it = values_.find(t.identity());
    if (it != values_.end()) return it->second;
    if (t.grad_fn()) {
      throw DataError(std::string("onnx export: the model computes a tensor with an operation the exporter does not "
                                  "record (its autograd node is ") +
                      t.grad_fn()->name() +
                      "); rewrite that step with conv2d, the pools, linear, the elementwise math, reshape, "
                      "cat or matmul, or leave it outside the exported model");
    }
    return constant(t);
  }

  std::string constant(const Tensor& t_arg) {
    auto named = param_names_.find(t_arg.identity());
    std::string name = named != param_names_.end() && !used_.count(named->second) ? named->second : fresh("Constant");
    const Tensor t = t_arg.detach().contiguous();
    auto* proto = graph_->add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx_type(t.dtype()));
    for (int64_t d : t.shape()) proto->add_dims(d);
    proto->set_raw_data(std::string(static_cast<const char*>(t.read_raw_data()), t.numel() * element_size(t.dtype())));
    bind(t_arg, name);
    return name;
  }

  // An operand in the output's dtype: a constant converted here, a value through a Cast node.
  std::string cast(const Tensor& t, DType to) {
    auto it = values_.find(t.identity());
    if (it == values_.end() && !t.grad_fn()) {
      const Tensor converted = t.detach().to(to);
      alive_.push_back(t);
      return constant(converted);
    }
    return emit("Cast", {value_of(t)}, fresh("Cast"), {{"to", int64_t{onnx_type(to)}}});
  }

  // The output's shape as a Reshape (fill = 0) or Expand (fill = 1) constant: dim 0 copied from
  // the input (0 for Reshape, 1 for Expand) where it is unchanged, so the batch size stays free.
  Shape kept_shape(const Tensor& in, const Tensor& out, int64_t fill = 0) const {
    Shape shape = out.shape();
    if (fill == 0) {
      if (options_.dynamic_batch && in.dim() > 0 && out.dim() > 0 && in.size(0) == out.size(0)) shape[0] = 0;
      return shape;
    }
    const int64_t lead = out.dim() - in.dim();
    for (int64_t d = std::max<int64_t>(lead, 0); d < out.dim(); ++d) {
      if (in.size(d - lead) == out.size(d)) shape[static_cast<size_t>(d)] = 1;
    }
    return shape;
  }

  std::string emit(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
                   const std::vector<trace::Attr>& attrs = {}) {
    auto* node = graph_->add_node();
    node->set_op_type(op);
    node->set_name(output.rfind('/', 0) == 0 ? output : "/" + output);
    for (const auto& in : inputs) node->add_input(in);
    node->add_output(output);
    for (const auto& attr : attrs) {
      auto* a = node->add_attribute();
      a->set_name(attr.name);
      if (const auto* i = std::get_if<int64_t>(&attr.value)) {
        a->set_type(::onnx::AttributeProto_AttributeType_INT);
        a->set_i(*i);
      } else if (const auto* f = std::get_if<double>(&attr.value)) {
        a->set_type(::onnx::AttributeProto_AttributeType_FLOAT);
        a->set_f(static_cast<float>(*f));
      } else {
        a->set_type(::onnx::AttributeProto_AttributeType_INTS);
        for (int64_t v : std::get<std::vector<int64_t>>(attr.value)) a->add_ints(v);
      }
    }
    producer_[output] = graph_->node_size() - 1;
    return output;
  }

  void rename(const std::string& from, const std::string& to) {
    for (auto& node : *graph_->mutable_node()) {
      for (auto& in : *node.mutable_input()) {
        if (in == from) in = to;
      }
      for (auto& out : *node.mutable_output()) {
        if (out == from) out = to;
      }
    }
    producer_[to] = producer_[from];
    producer_.erase(from);
    for (auto& [id, name] : values_) {
      if (name == from) name = to;
    }
  }

  // Drops nodes and initializers no output needs (a value the model computed and never used).
  void prune() {
    std::set<std::string> needed;
    for (const auto& out : graph_->output()) needed.insert(out.name());
    std::vector<bool> keep(static_cast<size_t>(graph_->node_size()), false);
    for (int i = graph_->node_size() - 1; i >= 0; --i) {
      const auto& node = graph_->node(i);
      if (!needed.count(node.output(0))) continue;
      keep[static_cast<size_t>(i)] = true;
      for (const auto& in : node.input()) needed.insert(in);
    }
    ::onnx::GraphProto kept;
    for (int i = 0; i < graph_->node_size(); ++i) {
      if (keep[static_cast<size_t>(i)]) *kept.add_node() = graph_->node(i);
    }
    for (const auto& init : graph_->initializer()) {
      if (needed.count(init.name())) *kept.add_initializer() = init;
    }
    graph_->mutable_node()->Swap(kept.mutable_node());
    graph_->mutable_initializer()->Swap(kept.mutable_initializer());
  }

  ::onnx::GraphProto* graph_;
  const ExportOptions& options_;
  std::unordered_map<const void*, std::string> values_, param_names_;
  std::unordered_map<std::string, int> producer_;
  std::set<std::string> used_, renamed_;
  std::vector<Tensor> alive_;
  int64_t counter_ = 0;
  int64_t batch_ = -1;
};

std::vector<std::string> names_or_default(const std::vector<std::string>& given, size_t n, const std::string& stem,
                                          const char* what) {
  if (!given.empty()) {
    if (given.size() != n) {
      throw ArgumentError("onnx export: " + std::to_string(given.size()) + " " + what + " names given for " +
                          std::to_string(n) + " " + what + "s");
    }
    std::set<std::string> unique(given.begin(), given.end());
    if (unique.size() != given.size() || unique.count("")) {
      throw ArgumentError(std::string("onnx export: the ") + what + " names must be distinct and non-empty");
    }
    return given;
  }
  if (n == 1) return {stem};
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(stem + std::to_string(i));
  return names;
}

// The exported model against the function on fresh random inputs (one more in the batch when
// it is dynamic): the outputs must agree within 1e-4 of their largest magnitude.
void verify(const std::string& bytes, const TracedFunction& function, const std::vector<Tensor>& examples,
            const std::vector<std::string>& input_names, const std::vector<std::string>& output_names,
            bool dynamic_batch) {
  const Model model = load_from_bytes(bytes);
  Generator gen(0x0eff0e);
  std::vector<Tensor> inputs;
  std::map<std::string, Tensor> named;
  for (size_t i = 0; i < examples.size(); ++i) {
    Shape shape = examples[i].shape();
    if (dynamic_batch && !shape.empty()) ++shape[0];
    Tensor x = examples[i].dtype() == DType::Float32 ? Tensor::randn(shape, gen) : examples[i].detach().clone();
    if (x.shape() != shape) x = examples[i].detach().clone();
    inputs.push_back(x);
    named.emplace(input_names[i], x);
  }
  std::vector<Tensor> expected;
  {
    NoGradGuard no_grad;
    try {
      expected = function(inputs);
    } catch (const ArgumentError& e) {
      throw DataError(std::string("onnx export: the model fails on a second input of batch size ") +
                      std::to_string(inputs[0].dim() > 0 ? inputs[0].size(0) : 1) + " (" + e.what() +
                      "); if it only runs at the traced batch size, export with a fixed batch (dynamic_batch off)");
    }
  }
  std::map<std::string, Tensor> got;
  try {
    got = model.run(named);
  } catch (const ArgumentError& e) {
    throw DataError(std::string("onnx export: the exported graph fails on a second input (") + e.what() +
                    "): a shape in the model was fixed to the example's (zeros_like, a size read from the input); "
                    "export with a fixed batch (dynamic_batch off) if the batch size is the cause");
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const Tensor want = expected[i].detach().contiguous().to(DType::Float32);
    const Tensor have = got.at(output_names[i]).contiguous().to(DType::Float32);
    std::string problem;
    if (want.shape() != have.shape()) {
      problem = "shape " + shape_to_string(have.shape()) + " where the model gives " + shape_to_string(want.shape());
    } else {
      double largest = 0.0, diff = 0.0;
      for (int64_t k = 0; k < want.numel(); ++k) {
        const double a = want.data()[k], b = have.data()[k];
        largest = std::max(largest, std::fabs(a));
        diff = std::isnan(a) != std::isnan(b) ? INFINITY : std::max(diff, std::fabs(a - b));
      }
      if (diff > 1e-4 * std::max(largest, 1e-2)) {
        problem = "values off by " + std::to_string(diff) + " (largest " + std::to_string(largest) + ")";
      }
    }
    if (!problem.empty()) {
      throw DataError("onnx export: on a second input the exported graph's output '" + output_names[i] + "' has " +
                      problem +
                      ": the model computes something the trace did not see (a step in numpy, an in-place "
                      "update, a number read with .item(), a shape fixed to the example's batch size); export "
                      "with a fixed batch (dynamic_batch off) if the batch size is the cause");
    }
  }
}

}  // namespace

std::string export_to_bytes(const TracedFunction& function, const std::vector<Tensor>& example_inputs,
                            const ExportOptions& options) {
  if (!function) throw ArgumentError("onnx export: no function to trace");
  if (example_inputs.empty()) throw ArgumentError("onnx export: give at least one example input");
  for (const Tensor& t : example_inputs) {
    if (!t.defined()) throw ArgumentError("onnx export: an example input is undefined");
  }
  const auto input_names = names_or_default(options.input_names, example_inputs.size(), "input", "input");

  ::onnx::ModelProto proto;
  proto.set_ir_version(7);  // what opset 13 came with (ONNX 1.8)
  proto.set_producer_name(options.producer);
  proto.set_producer_version(kVersion);
  proto.add_opset_import()->set_version(kOpset);
  auto* graph = proto.mutable_graph();
  graph->set_name("tinytorch");

  Tracer tracer(graph, options);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < example_inputs.size(); ++i) {
    // A traced input that requires grad marks everything computed from it with an autograd node,
    // so a value made by an op the tracer misses is caught instead of frozen into a constant.
    Tensor x = example_inputs[i].detach().clone();
    if (x.dtype() == DType::Float32) x.set_requires_grad(true);
    tracer.add_input(x, input_names[i]);
    inputs.push_back(x);
  }
  std::vector<Tensor> outputs;
  {
    EnableGradGuard grad;
    trace::RecorderGuard recording(&tracer);
    outputs = function(inputs);
  }
  if (outputs.empty()) throw ArgumentError("onnx export: the model returned no tensors");
  for (const Tensor& t : outputs) {
    if (!t.defined()) throw ArgumentError("onnx export: the model returned an undefined tensor");
  }
  const auto output_names = names_or_default(options.output_names, outputs.size(), "output", "output");
  for (const auto& name : output_names) {
    if (std::find(input_names.begin(), input_names.end(), name) != input_names.end()) {
      throw ArgumentError("onnx export: '" + name + "' names both an input and an output");
    }
  }
  tracer.add_outputs(outputs, output_names);
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw DataError("onnx export: the model does not serialize (over 2 GiB?)");
  if (options.verify) verify(bytes, function, example_inputs, input_names, output_names, options.dynamic_batch);
  return bytes;
}

void export_to_file(const TracedFunction& function, const std::vector<Tensor>& example_inputs, const std::string& path,
                    const ExportOptions& options) {
  check_path(path, "onnx export path");
  write_file_atomic(path, export_to_bytes(function, example_inputs, options));
}

void export_module(Module& model, const Shape& input_shape, const std::string& path, ExportOptions options) {
  for (int64_t d : input_shape) {
    if (d < 1) throw ShapeError("onnx export: the input shape " + shape_to_string(input_shape) + " has a dim below 1");
  }
  if (options.named_tensors.empty()) {
    options.named_tensors = model.named_parameters();
    for (auto& b : model.named_buffers()) options.named_tensors.push_back(std::move(b));
  }
  const bool was_training = model.is_training();
  model.eval();
  Generator gen(0x0e4a);
  const Tensor example = Tensor::randn(input_shape, gen);
  try {
    export_to_file([&](const std::vector<Tensor>& x) { return std::vector<Tensor>{model(x[0])}; }, {example}, path,
                   options);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
}

}  // namespace tinytorch::onnx

// ONNX import: a model exported by another framework (torch.onnx.export, say), run on tinytorch's
// kernels. The file is parsed with the ONNX project's own protobuf definitions and checked with
// its checker (Debian's libonnx-dev); the graph then runs node by node in topological order, each
// tensor freed after its last use. Built when CMake finds libonnx-dev (TINYTORCH_ONNX); otherwise
// load() throws an ArgumentError that says so.
//
//   auto model = tinytorch::onnx::load("resnet18.onnx");
//   Tensor y = model(x);                              // one input, one output
//   auto outs = model.run({{"input", x}});            // by name, as ONNX Runtime's session.run
//
// Errors: a file that cannot be opened, is not a regular file, does not parse, fails the checker or
// describes an impossible graph (a cycle, a name nothing produces) is a DataError; an operator
// tinytorch does not run is a DataError naming the operator, its node and the opset; inputs of the
// wrong shape or number are ShapeErrors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tinytorch/module.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch::onnx {

namespace detail {
struct Graph;
std::shared_ptr<const Graph> load_graph(const std::string& path);
}  // namespace detail

// A graph input or output: its name, and its dims as the file declares them (-1 where a dim is
// symbolic, such as a free batch size; empty when the file gives no shape).
struct ValueInfo {
  std::string name;
  Shape dims;
};

// One node of an inspected run (Model::inspect), as the runtime ran it after the graph passes.
struct NodeReport {
  std::string op, name;
  std::string fused;                 // what the passes fused into it: "+ residual + relu (took in ...)"
  std::vector<Shape> output_shapes;  // of this run
  int64_t flops = 0;                 // Conv, Gemm, MatMul: multiply-adds x 2 (fused epilogues not counted)
  int64_t params = 0;                // elements of its constant float inputs (weights, biases)
  std::string algorithm;             // Conv: the convolution algorithm conv2d chose for this shape
  int64_t output_bytes = 0;
  double milliseconds = 0.0;  // median over the timed runs (0 without them)
};

// Where the intermediate tensors of one run live. intermediate_bytes: every node output, as if
// none were ever freed. peak_live_bytes: the most alive at once as the runner frees each after its
// last reader. arena_bytes: one static arena holding them all, each tensor at an offset chosen
// greedily (largest first, lowest offset not overlapping a tensor alive at the same time).
// runtime_block_bytes: the block the runtime serves its runs from, planned the same way from a
// recorded run over every tensor it allocates (the nodes' outputs and the operators' own
// temporaries); runtime_tensors of them are placed in it.
struct MemoryPlan {
  int64_t intermediate_bytes = 0, peak_live_bytes = 0, arena_bytes = 0;
  int64_t runtime_block_bytes = 0, runtime_tensors = 0;
};

struct Report {
  Shape input;
  std::vector<NodeReport> nodes;
  MemoryPlan memory;
  int64_t flops = 0, params = 0;
  int timed_runs = 0;
};

class Model {
 public:
  // The outputs for one input tensor (a model with exactly one input); one tensor per output.
  std::vector<Tensor> forward(const Tensor& input) const;
  // The single output for one input (a model with one input and one output).
  Tensor operator()(const Tensor& input) const;
  // Every output, by name, for inputs given by name (every graph input must be given).
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs) const;

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  int64_t opset() const;                      // the default domain's opset the file imports
  std::string producer() const;               // producer_name and version, as the file states them
  int64_t num_nodes() const;                  // after import (constants folded) and the graph passes
  std::vector<std::string> op_types() const;  // each node's operator, in execution order
  // Each node as the runtime runs it: "Conv 'name' + residual + relu  (took in ...)".
  std::vector<std::string> describe_nodes() const;
  // Bytes of Conv weights given back to the system once prepared (LoadOptions::keep_weights); 0
  // before the first run and after they were read back from the file.
  int64_t released_weight_bytes() const;
  // Runs the model on `input` once and reports each node (shapes, FLOPs, parameters, algorithm)
  // and the memory plan; with timed_runs > 0, also each node's median time over that many more runs.
  Report inspect(const Tensor& input, int timed_runs = 0) const;

  explicit Model(std::shared_ptr<const detail::Graph> graph);

 private:
  friend std::shared_ptr<const detail::Graph> detail::load_graph(const std::string& path);
  struct Observer;
  std::map<std::string, Tensor> execute(const std::map<std::string, Tensor>& inputs, Observer* observer) const;
  std::shared_ptr<const detail::Graph> graph_;
};

// Whether this build has ONNX support (libonnx-dev found at configure time).
bool available();

struct LoadOptions {
  // The graph passes: BatchNormalization folded into the Conv before it; Identity and inference
  // Dropout removed; a residual Add and an activation (Relu, Clip, LeakyRelu, HardSigmoid,
  // HardSwish, x * Sigmoid(x), x * HardSigmoid(x)) fused into the Conv's output store; constant
  // weights prepared once. false runs the graph as written (what the passes are tested against).
  bool optimize = true;
  // load() from a file: false gives a Conv weight's memory back to the system once its prepared
  // form is made (the model then holds its weights once), reading it back from the file should a
  // later run need it again (new input shapes, another algorithm); true keeps every weight resident.
  bool keep_weights = false;
};

// Parses, checks and imports a model file (.onnx; weights inside the file).
Model load(const std::string& path, const LoadOptions& options = {});
// The same from the file's bytes in memory (what load() reads).
Model load_from_bytes(const std::string& bytes, const LoadOptions& options = {});

// The operators import accepts, sorted.
std::vector<std::string> supported_operators();

// --- Export ---------------------------------------------------------------------------------------
//
// A model becomes an ONNX file by tracing, as torch.onnx.export does: the function runs once on the
// example inputs while every op it calls (conv2d, the pools, linear, batch_norm in eval mode, the
// elementwise and reduction math, reshape and the other views, cat, matmul, softmax) is recorded
// as ONNX nodes (opset 13). Tensors it reads that no recorded op made (parameters, buffers,
// constants) become initializers, named after the model's parameters where known. The file is
// then checked with ONNX's checker, imported back and, by default, run on a second random input
// (another batch size when the batch is dynamic) against the function itself.
//
// Errors: an op that has no ONNX form (batch_norm or dropout in training mode, floor division), a
// value computed by an op the tracer does not record (named after its autograd node), or a file
// whose outputs differ from the function's are DataErrors that say which; the output file is
// written atomically, only once everything passed.

struct ExportOptions {
  std::vector<std::string> input_names;   // default: "input" (or "input0", "input1", ...)
  std::vector<std::string> output_names;  // default: "output" (or "output0", ...)
  bool dynamic_batch = true;              // dim 0 of inputs and outputs is the symbolic "batch"
  bool verify = true;                     // re-import and compare on a second input
  // Names for initializers: a model's named parameters and buffers ("conv1.weight").
  std::vector<std::pair<std::string, Tensor>> named_tensors;
  std::string producer = "tinytorch";
};

using TracedFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// The serialized ModelProto of `function` traced on `example_inputs`.
std::string export_to_bytes(const TracedFunction& function, const std::vector<Tensor>& example_inputs,
                            const ExportOptions& options = {});
// The same, written atomically to `path`.
void export_to_file(const TracedFunction& function, const std::vector<Tensor>& example_inputs, const std::string& path,
                    const ExportOptions& options = {});
// A module in eval mode (its mode is restored afterwards) on a random input of `input_shape`,
// its parameters and buffers naming the initializers.
void export_module(Module& model, const Shape& input_shape, const std::string& path, ExportOptions options = {});

}  // namespace tinytorch::onnx

// The imported graph (onnx.hpp): values (graph inputs, initializers, node outputs) numbered once,
// nodes in execution order with their attributes decoded, and what each node's operator runs.
// Built by import.cpp from the protobuf, run by model.cpp. No protobuf type appears here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/memory_plan.hpp"
#include "kernels/activation.hpp"
#include "tinytorch/onnx.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch::onnx::detail {

struct Attribute {
  enum class Kind { Int, Float, String, Tensor, Ints, Floats, Strings, Other };
  Kind kind = Kind::Other;
  int64_t i = 0;
  float f = 0.0f;
  std::string s;
  Tensor t;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
};

struct Node;
// An operator's run: the node's input tensors (undefined where an optional input is absent) ->
// its outputs. Throws ShapeError / DataError naming the node on what it cannot run.
using OpFn = std::vector<Tensor> (*)(const Node& node, const std::vector<Tensor>& inputs);

struct Node {
  std::string op, name;
  std::vector<int> inputs;   // value ids; -1 for an absent optional input
  std::vector<int> outputs;  // value ids; -1 for an output nobody names
  std::map<std::string, Attribute> attrs;
  OpFn run = nullptr;
  int64_t opset = 0;
  // Set by the graph passes (optimize.cpp) on a Conv node. Its output store also applies
  // `epilogue`, after adding input 3 (the residual) when it is given; `fused` names the nodes it
  // took in. frozen_weight: its weight is a constant of the graph, prepared once and never compared.
  kernels::Epilogue epilogue;
  std::vector<std::string> fused;
  bool frozen_weight = false;
  // Set by the blocked-layout pass: the node reads and writes the channel-blocked layout
  // (ops/conv2d_blocked.hpp) and `run` is its blocked_op.
  bool blocked = false;
  // Set by the pointwise-depthwise pass (optimize.cpp) on a blocked depthwise Conv that took in the
  // pointwise Conv whose output only it read: its inputs are [x, pointwise weight, pointwise bias,
  // weight, bias, residual] and `pointwise_epilogue` is the pointwise Conv's output stage.
  bool pointwise_first = false;
  kernels::Epilogue pointwise_epilogue;
  // Set by plan_lifetimes: computed from shapes alone (every input a constant, or the output of a
  // Shape node or of another such node; no output a graph output), as an exporter's dynamic
  // reshapes are: Shape -> Gather -> Unsqueeze -> Concat -> Reshape. Such a node's outputs are a
  // function of its inputs' values, so a run takes them from ShapeMemo when the values match.
  bool shape_only = false;

  // The node as error messages name it: "Conv node 'conv1' (opset 13)".
  std::string where() const;
  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
};

struct Value {
  std::string name;
  Tensor constant;  // defined for initializers and Constant outputs
};

// The id under which a graph's constant weights are prepared (ops/prepared_weights.hpp); the
// prepared forms go with the graph.
class WeightsOwner {
 public:
  WeightsOwner();
  WeightsOwner(WeightsOwner&& other) noexcept : id_(other.id_) { other.id_ = 0; }
  WeightsOwner& operator=(WeightsOwner&&) = delete;
  WeightsOwner(const WeightsOwner&) = delete;
  ~WeightsOwner();
  uint64_t id() const { return id_; }

 private:
  uint64_t id_;
};

// The outputs of the shape-only nodes on recent runs, with the input values they came from: per
// node, the last few distinct inputs (a model served at a few batch sizes keeps each). Small
// tensors only; filled and read under the mutex.
// And per run: for the last few distinct input shapes, what every Shape node and every small
// shape-only node gave (`Run`), so that a run with those input shapes skips them all, a Shape
// node only after checking that the tensor it reads has the shape it read then (the nodes after it
// are functions of such shapes and of constants). A skipped node costs no lookup of its own: a
// dynamic reshape's chain (Shape -> Gather -> Unsqueeze -> Concat) is a few hundred such nodes in
// ShuffleNet's export, each a lock and a comparison of its inputs in the per-node memo.
struct ShapeMemo {
  struct Entry {
    std::vector<Tensor> inputs, outputs;  // copies, owned here
  };
  struct Run {
    std::vector<Shape> key;                    // the run's input shapes
    std::vector<std::vector<Tensor>> outputs;  // per node: its outputs, copies; empty: the node runs
    std::vector<std::optional<Shape>> read;    // per Shape node: the shape of the tensor it read
  };
  std::mutex mutex;
  std::vector<std::vector<Entry>> nodes;         // by node index
  std::vector<std::shared_ptr<const Run>> runs;  // the most recent last
};

// Conv weights given back to the system once prepared (model.cpp). A frozen Conv's weight is read
// only to make its prepared form (packed panels, Winograd's transformed matrices); once its node
// has run, the pages of a weight that only that node reads are returned (madvise), so a loaded
// model holds its weights once, prepared, as ONNX Runtime does after prepacking (ResNet-50 at
// batch 8: 351 -> 262 MiB). A node whose next run could read its weight again (other input
// shapes, another algorithm, a prepared form evicted from the cache) first has every released
// weight read back from the model file, and from then on the model keeps them.
struct ReleasedWeights {
  struct Entry {
    size_t node;
    float* data;
    int64_t floats;
    // What decided the node's algorithm when it was released: its inputs' shapes, the thread
    // count, the conv settings (a forced algorithm, autotuning everywhere) and
    // ops::conv2d_tuning_generation(). The same again: the same algorithm, the same prepared form.
    std::vector<int64_t> key;
  };
  std::mutex mutex;
  std::string path;  // the file to read them back from; empty: never released
  int64_t file_size = 0, file_mtime_ns = 0;
  std::vector<char> releasable;  // per value: a constant that only a frozen Conv reads, as its weight
  std::vector<Entry> entries;
  int active_runs = 0;
  bool kept = false;  // read back once: the model keeps its weights from then on
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs, outputs;  // value ids of the graph's (non-initializer) inputs and outputs
  std::vector<ValueInfo> input_info, output_info;
  std::vector<int> last_use;  // per value: the last node that reads it (-1: none; outputs are kept)
  int64_t opset = 0;
  std::string producer;
  WeightsOwner weights;
  // Where a run's tensors go: recorded on one run, then one block for the runs after
  // (core/memory_plan.hpp). Shared by the copies of a Model.
  std::shared_ptr<tinytorch::MemoryPlan> memory = std::make_shared<tinytorch::MemoryPlan>();
  std::shared_ptr<ShapeMemo> shape_memo = std::make_shared<ShapeMemo>();
  std::shared_ptr<ReleasedWeights> released = std::make_shared<ReleasedWeights>();
};

// The graph load() makes of the file at `path` (import.cpp): what released weights are read back from.
std::shared_ptr<const Graph> load_graph(const std::string& path);
// Sets up `g` to release its weights, to be read back from `path` (model.cpp).
void release_weights_from(Graph& g, const std::string& path);

// The graph passes (optimize.cpp), in place; then plan_lifetimes, which every graph needs.
void optimize(Graph& g);
void plan_lifetimes(Graph& g);

// Called by Model::execute after each node (inspect.cpp watches a run through it).
struct ObserverBase {
  virtual ~ObserverBase() = default;
  virtual void node(size_t index, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                    double seconds) = 0;
};

// The convolution algorithm a Conv node runs on these inputs (ops.cpp), as to_string names it.
std::string conv_algorithm(const Node& node, const std::vector<Tensor>& inputs);

// The operator table (ops.cpp): nullptr for an operator tinytorch does not run.
OpFn find_op(const std::string& op);
// The blocked layout's forms (ops.cpp): Conv, GlobalAveragePool, Mul (a gate's broadcast), and the
// layout changes ToBlocked and FromBlocked (attribute "channels"); nullptr for any other.
OpFn blocked_op(const std::string& op);
// The fused pointwise and depthwise Conv's run (Node::pointwise_first).
OpFn pointwise_depthwise_op();
// The channel shuffle's run (optimize.cpp, fuse_channel_shuffles; op "ChannelShuffle").
OpFn channel_shuffle_op();
std::vector<std::string> op_names();

}  // namespace tinytorch::onnx::detail

namespace tinytorch::onnx {
struct Model::Observer : detail::ObserverBase {};
}  // namespace tinytorch::onnx

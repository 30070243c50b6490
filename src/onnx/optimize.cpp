// The graph passes between import and running (graph.hpp), each a rewrite that keeps what the
// graph computes:
//   1. Identity, inference-mode Dropout and a Pad of zeros: their readers read the input instead.
//   2. BatchNormalization after a Conv whose output nothing else reads: folded into the Conv's
//      weight and bias (computed in double, in new constants: a weight two Convs share stays).
//   3. A residual Add after a Conv: the Conv adds the other operand in its output store, when that
//      operand is computed before the Conv (in ResNets the branch computed last takes the Add).
//   4. An activation after a Conv: Relu, Clip with constant bounds, LeakyRelu, HardSigmoid,
//      HardSwish, Sigmoid, and the pairs x * Sigmoid(x) (SiLU) and x * HardSigmoid(x).
//   5. A channel shuffle (Reshape, Transpose, Reshape) and the Concat before it: one node
//      (fuse_channel_shuffles) that writes each output channel once.
//   6. Every Conv with a constant weight is marked frozen: its prepared weight is made once.
//   7. The blocked layout (BlockedLayout below): convolutions that gain from it, and the nodes
//      between them that can, read and write channel-blocked tensors (ops/conv2d_blocked.hpp);
//      FromBlocked nodes give the plain form to every other reader and to the graph's outputs.
//   8. A blocked pointwise Conv whose output only a blocked depthwise Conv reads: one node
//      (ops::conv2d_blocked_pointwise_depthwise) that computes the middle tensor a band of rows
//      at a time, in cache, where it is large (an inverted residual block's expansion).
// A pass fuses only what no one else reads (a value with one reader that is not a graph output),
// so no intermediate it removes is observable. Each is tested against the unoptimized graph on
// small graphs (tests/python/test_onnx.py).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/env.hpp"
#include "onnx/graph.hpp"
#include "ops/conv2d_blocked.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::onnx::detail {

WeightsOwner::WeightsOwner() : id_(ops::new_frozen_owner()) {}
WeightsOwner::~WeightsOwner() {
  if (id_ != 0) ops::release_frozen_weights(id_);
}

void plan_lifetimes(Graph& g) {
  g.last_use.assign(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int in : g.nodes[i].inputs) {
      if (in >= 0) g.last_use[static_cast<size_t>(in)] = static_cast<int>(i);
    }
  }
  for (int out : g.outputs) g.last_use[static_cast<size_t>(out)] = std::numeric_limits<int>::max();
  std::vector<char> from_shapes(g.values.size(), 0);  // a constant, or computed from shapes alone
  for (size_t v = 0; v < g.values.size(); ++v) from_shapes[v] = g.values[v].constant.defined() ? 1 : 0;
  for (Node& n : g.nodes) {
    n.shape_only = n.op != "Shape" && !n.outputs.empty();
    for (int in : n.inputs) n.shape_only = n.shape_only && (in < 0 || from_shapes[static_cast<size_t>(in)] != 0);
    for (int out : n.outputs) {
      n.shape_only =
          n.shape_only && (out < 0 || g.last_use[static_cast<size_t>(out)] != std::numeric_limits<int>::max());
    }
    if (n.op != "Shape" && !n.shape_only) continue;
    for (int out : n.outputs) {
      if (out >= 0) from_shapes[static_cast<size_t>(out)] = 1;
    }
  }
  g.shape_memo = std::make_shared<ShapeMemo>();
  g.shape_memo->nodes.resize(g.nodes.size());
}

namespace {

using kernels::Activation;

// A constant-mode Pad whose pads are all zero (an exporter's no-op before a pool).
bool zero_pad(const Graph& g, const Node& n) {
  if (n.op != "Pad" || n.inputs.empty() || n.outputs.size() != 1 || n.attr_string("mode", "constant") != "constant") {
    return false;
  }
  std::vector<int64_t> pads = n.attr_ints("pads");
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    const Tensor& p = g.values[static_cast<size_t>(n.inputs[1])].constant;
    if (!p.defined() || p.dtype() != DType::Int64) return false;
    const Tensor c = p.contiguous();
    pads.assign(c.read_ptr<int64_t>(), c.read_ptr<int64_t>() + c.numel());
  }
  return std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; });
}

class Optimizer {
 public:
  explicit Optimizer(Graph& g) : g_(g) {}

  void run() {
    drop_pass_through();
    fold_batch_norms();
    fuse_residuals();
    fuse_activations();
    if (env_count("TINYTORCH_FUSE_CHANNEL_SHUFFLE", 1).value_or(1) != 0) fuse_channel_shuffles();
    for (Node& n : g_.nodes) {
      if (n.op == "Conv" && n.inputs.size() > 1 && constant(n.inputs[1]).defined()) n.frozen_weight = true;
    }
  }

 private:
  // Who reads each value and who writes it, over the live nodes; recounted after every rewrite.
  void count() {
    readers_.assign(g_.values.size(), {});
    producer_.assign(g_.values.size(), -1);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (dead_[i]) continue;
      for (int in : g_.nodes[i].inputs) {
        if (in >= 0) readers_[static_cast<size_t>(in)].push_back(static_cast<int>(i));
      }
      for (int out : g_.nodes[i].outputs) {
        if (out >= 0) producer_[static_cast<size_t>(out)] = static_cast<int>(i);
      }
    }
    is_output_.assign(g_.values.size(), false);
    for (int o : g_.outputs) is_output_[static_cast<size_t>(o)] = true;
  }

  void compact() {
    std::vector<Node> live;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (!dead_[i]) live.push_back(std::move(g_.nodes[i]));
    }
    g_.nodes = std::move(live);
    dead_.assign(g_.nodes.size(), false);
  }

  const Tensor& constant(int v) const {
    static const Tensor none;
    return v >= 0 ? g_.values[static_cast<size_t>(v)].constant : none;
  }

  // A value read by exactly one node and not a graph output: the one reader, else -1.
  int sole_reader(int v) const {
    if (v < 0 || is_output_[static_cast<size_t>(v)] || readers_[static_cast<size_t>(v)].size() != 1) return -1;
    return readers_[static_cast<size_t>(v)][0];
  }

  // The single used output of a node, else -1 (a node with a second output someone reads).
  static int only_output(const Node& n) {
    for (size_t o = 1; o < n.outputs.size(); ++o) {
      if (n.outputs[o] >= 0) return -1;
    }
    return n.outputs.empty() ? -1 : n.outputs[0];
  }

  int new_constant(const std::string& name, Tensor t) {
    g_.values.push_back(Value{name, std::move(t)});
    return static_cast<int>(g_.values.size()) - 1;
  }

  // The conv node `c` takes over node `n`'s output; n goes.
  void absorb(size_t c, size_t n) {
    Node& conv = g_.nodes[c];
    conv.outputs[0] = only_output(g_.nodes[n]);
    conv.fused.push_back(g_.nodes[n].op + " '" + g_.nodes[n].name + "'");
    dead_[n] = true;
  }

  void drop_pass_through() {
    dead_.assign(g_.nodes.size(), false);
    count();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Node& n = g_.nodes[i];
      const bool dropout = n.op == "Dropout" && n.attr_int("training_mode", 0) == 0 && n.inputs.size() < 3;
      if ((n.op != "Identity" && !dropout && !zero_pad(g_, n)) || n.inputs.empty() || n.inputs[0] < 0) continue;
      const int out = only_output(n);
      if (out < 0 || is_output_[static_cast<size_t>(out)]) continue;
      for (int r : readers_[static_cast<size_t>(out)]) {
        for (int& in : g_.nodes[static_cast<size_t>(r)].inputs) {
          if (in == out) in = n.inputs[0];
        }
      }
      dead_[i] = true;
    }
    compact();
  }

  void fold_batch_norms() {
    count();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node& bn = g_.nodes[i];
      if (bn.op != "BatchNormalization" || bn.inputs.size() != 5 || bn.attr_int("training_mode", 0) != 0 ||
          only_output(bn) < 0) {
        continue;
      }
      const int p = producer_[static_cast<size_t>(bn.inputs[0])];
      if (p < 0 || g_.nodes[static_cast<size_t>(p)].op != "Conv" || sole_reader(bn.inputs[0]) != static_cast<int>(i)) {
        continue;
      }
      Node& conv = g_.nodes[static_cast<size_t>(p)];
      if (conv.inputs.size() < 2 || !conv.fused.empty()) continue;
      const Tensor& w = constant(conv.inputs[1]);
      const Tensor bias = conv.inputs.size() > 2 ? constant(conv.inputs[2]) : Tensor();
      const bool has_bias = conv.inputs.size() > 2 && conv.inputs[2] >= 0;
      const Tensor &scale = constant(bn.inputs[1]), &shift = constant(bn.inputs[2]), &mean = constant(bn.inputs[3]),
                   &var = constant(bn.inputs[4]);
      if (!w.defined() || w.dim() != 4 || w.dtype() != DType::Float32 || (has_bias && !bias.defined())) continue;
      const int64_t oc = w.shape()[0];
      bool ok = true;
      for (const Tensor* t : {&scale, &shift, &mean, &var, has_bias ? &bias : &scale}) {
        ok = ok && t->defined() && t->dtype() == DType::Float32 && t->numel() == oc;
      }
      if (!ok) continue;
      const double eps = bn.attr_float("epsilon", 1e-5f);
      const Tensor wc = w.contiguous(), sc = scale.contiguous(), sh = shift.contiguous(), mc = mean.contiguous(),
                   vc = var.contiguous(), bc = has_bias ? bias.contiguous() : Tensor();
      Tensor w2 = Tensor::empty(w.shape()), b2 = Tensor::empty({oc});
      const int64_t per = w.numel() / oc;
      for (int64_t o = 0; o < oc; ++o) {
        const double s = static_cast<double>(sc.data()[o]) / std::sqrt(static_cast<double>(vc.data()[o]) + eps);
        for (int64_t k = 0; k < per; ++k) {
          w2.data()[o * per + k] = static_cast<float>(static_cast<double>(wc.data()[o * per + k]) * s);
        }
        const double b = has_bias ? static_cast<double>(bc.data()[o]) : 0.0;
        b2.data()[o] =
            static_cast<float>((b - static_cast<double>(mc.data()[o])) * s + static_cast<double>(sh.data()[o]));
      }
      conv.inputs.resize(3);
      conv.inputs[1] = new_constant(conv.name + ".folded_weight", std::move(w2));
      conv.inputs[2] = new_constant(conv.name + ".folded_bias", std::move(b2));
      conv.outputs[0] = only_output(bn);
      conv.fused.push_back("BatchNormalization '" + bn.name + "'");
      dead_[i] = true;
    }
    compact();
  }

  // A Conv whose output only `reader` reads, with nothing fused after it yet (a BatchNormalization
  // folded into its weights is fine): its index, else -1.
  int fusable_conv(int value, size_t reader) const {
    if (value < 0 || sole_reader(value) != static_cast<int>(reader)) return -1;
    const int p = producer_[static_cast<size_t>(value)];
    if (p < 0) return -1;
    const Node& c = g_.nodes[static_cast<size_t>(p)];
    if (c.op != "Conv" || c.epilogue.activation != Activation::None || c.inputs.size() > 3) return -1;
    return p;
  }

  void fuse_residuals() {
    count();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node& add = g_.nodes[i];
      if (add.op != "Add" || add.inputs.size() != 2 || only_output(add) < 0) continue;
      int best = -1, other = -1;
      for (int side = 0; side < 2; ++side) {
        const int c = fusable_conv(add.inputs[static_cast<size_t>(side)], i);
        const int o = add.inputs[static_cast<size_t>(1 - side)];
        // The other operand must exist when the Conv runs: written by an earlier node, or a
        // graph input or constant.
        if (c < 0 || o < 0 || o == add.inputs[static_cast<size_t>(side)] || producer_[static_cast<size_t>(o)] >= c) {
          continue;
        }
        if (c > best) best = c, other = o;
      }
      if (best < 0) continue;
      Node& conv = g_.nodes[static_cast<size_t>(best)];
      conv.inputs.resize(4, -1);
      conv.inputs[3] = other;
      absorb(static_cast<size_t>(best), i);
      count();
    }
    compact();
  }

  // The node writing v when only node `reader` reads it (and it is not a graph output): its index,
  // else -1.
  int sole_producer(int v, size_t reader) const {
    return sole_reader(v) == static_cast<int>(reader) ? producer_[static_cast<size_t>(v)] : -1;
  }

  // The Concat writing v, when node `reader` reads v and every other reader is a Shape node (the
  // exporter's size() calls), v not a graph output and every input of the Concat given: its
  // index, else -1.
  int concat_read_for_shape(int v, size_t reader) const {
    const int c = producer_[static_cast<size_t>(v)];
    if (c < 0 || is_output_[static_cast<size_t>(v)]) return -1;
    const Node& concat = g_.nodes[static_cast<size_t>(c)];
    if (concat.op != "Concat" || only_output(concat) != v || concat.inputs.empty() ||
        std::count(concat.inputs.begin(), concat.inputs.end(), -1) > 0) {
      return -1;
    }
    int readers = 0;
    for (int r : readers_[static_cast<size_t>(v)]) {
      const Node& n = g_.nodes[static_cast<size_t>(r)];
      if (r == static_cast<int>(reader)) {
        ++readers;
      } else if (n.op != "Shape" || n.inputs.size() != 1 || n.has("concat_axis")) {
        return -1;
      }
    }
    return readers == 1 ? c : -1;
  }

  // A channel shuffle as exporters write it (ShuffleNet's): Reshape [N, C, H, W] -> [N, g, C/g, H,
  // W], Transpose perm [0, 2, 1, 3, 4], Reshape back to [N, C, H, W], and the Concat before it
  // along the channels when only the shuffle reads it, or Shape nodes too (these then take the
  // concatenation's shape from its inputs, attribute "concat_axis": ops.cpp, shape_op). One node (ops.cpp,
  // channel_shuffle) copies each output channel's plane from its input's: the concatenation and the transposed tensor
  // are never written. The Reshapes' targets are computed from shapes as the graph runs, so the node checks them then,
  // and runs the operators as written where they are not that.
  void fuse_channel_shuffles() {
    count();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node& back = g_.nodes[i];
      if (dead_[i] || back.op != "Reshape" || back.inputs.size() != 2 || only_output(back) < 0) continue;
      const int t = sole_producer(back.inputs[0], i);
      if (t < 0) continue;
      const Node& transpose = g_.nodes[static_cast<size_t>(t)];
      if (transpose.op != "Transpose" || transpose.inputs.size() != 1 || only_output(transpose) < 0 ||
          transpose.attr_ints("perm") != std::vector<int64_t>{0, 2, 1, 3, 4}) {
        continue;
      }
      const int s = sole_producer(transpose.inputs[0], static_cast<size_t>(t));
      if (s < 0) continue;
      const Node& split = g_.nodes[static_cast<size_t>(s)];
      if (split.op != "Reshape" || split.inputs.size() != 2 || only_output(split) < 0 || split.inputs[0] < 0) continue;
      Node shuffle;
      shuffle.op = "ChannelShuffle";
      shuffle.name = back.name;
      shuffle.opset = back.opset;
      shuffle.outputs = back.outputs;
      shuffle.inputs = {split.inputs[0]};
      const int c = concat_read_for_shape(split.inputs[0], static_cast<size_t>(s));
      if (c >= 0) {  // its Shape readers take the shape of the concatenation of its inputs
        const Node& concat = g_.nodes[static_cast<size_t>(c)];
        Attribute axis;
        axis.kind = Attribute::Kind::Int, axis.i = concat.attr_int("axis", 0);
        for (int r : readers_[static_cast<size_t>(split.inputs[0])]) {
          Node& shape = g_.nodes[static_cast<size_t>(r)];
          if (r == s) continue;
          shape.inputs = concat.inputs;
          shape.attrs["concat_axis"] = axis;
        }
        shuffle.inputs = concat.inputs;
        shuffle.attrs["axis"] = axis;
        shuffle.fused.push_back("Concat '" + concat.name + "'");
        dead_[static_cast<size_t>(c)] = true;
      }
      Attribute a;
      a.kind = Attribute::Kind::Int, a.i = static_cast<int64_t>(shuffle.inputs.size());
      shuffle.attrs["inputs"] = a;
      a.kind = Attribute::Kind::Ints, a.ints = {split.attr_int("allowzero", 0), back.attr_int("allowzero", 0)};
      shuffle.attrs["allowzero"] = a;
      shuffle.inputs.push_back(split.inputs[1]);
      shuffle.inputs.push_back(back.inputs[1]);
      shuffle.fused.push_back("Reshape '" + split.name + "'");
      shuffle.fused.push_back("Transpose '" + transpose.name + "'");
      shuffle.run = channel_shuffle_op();
      dead_[static_cast<size_t>(s)] = dead_[static_cast<size_t>(t)] = true;
      g_.nodes[i] = std::move(shuffle);
      count();
    }
    compact();
  }

  // The scalar a Clip bound input holds, if it is a constant.
  bool constant_scalar(const Node& n, size_t i, float* out) const {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return true;  // absent: the default stays
    const Tensor& t = constant(n.inputs[i]);
    if (!t.defined() || t.numel() != 1 || t.dtype() != DType::Float32) return false;
    *out = t.contiguous().read_ptr<float>()[0];
    return true;
  }

  // The epilogue node `n` is on its input, or None if it is not one.
  kernels::Epilogue as_activation(const Node& n) const {
    kernels::Epilogue e;
    if (n.op == "Relu") {
      e.activation = Activation::Relu;
    } else if (n.op == "Clip") {
      e.a = n.has("min") ? n.attr_float("min", 0) : -std::numeric_limits<float>::infinity();
      e.b = n.has("max") ? n.attr_float("max", 0) : std::numeric_limits<float>::infinity();
      if (constant_scalar(n, 1, &e.a) && constant_scalar(n, 2, &e.b)) e.activation = Activation::Clip;
    } else if (n.op == "LeakyRelu") {
      e.activation = Activation::LeakyRelu, e.a = n.attr_float("alpha", 0.01f);
    } else if (n.op == "HardSigmoid") {
      e.activation = Activation::HardSigmoid, e.a = n.attr_float("alpha", 0.2f), e.b = n.attr_float("beta", 0.5f);
    } else if (n.op == "HardSwish") {
      e.activation = Activation::HardSwish, e.a = 1.0f / 6.0f, e.b = 0.5f;
    } else if (n.op == "Sigmoid") {
      e.activation = Activation::Sigmoid;
    }
    return e;
  }

  void fuse_activations() {
    count();
    for (size_t c = 0; c < g_.nodes.size(); ++c) {
      Node& conv = g_.nodes[c];
      if (dead_[c] || conv.op != "Conv" || conv.outputs.empty() || conv.outputs[0] < 0) continue;
      const int y = conv.outputs[0];
      if (is_output_[static_cast<size_t>(y)]) continue;
      const auto& readers = readers_[static_cast<size_t>(y)];
      if (readers.size() == 1) {
        const auto r = static_cast<size_t>(readers[0]);
        const kernels::Epilogue e = as_activation(g_.nodes[r]);
        if (e.activation == Activation::None || only_output(g_.nodes[r]) < 0) continue;
        conv.epilogue = e;
        absorb(c, r);
      } else if (readers.size() == 2) {  // x * Sigmoid(x) or x * HardSigmoid(x), either order
        auto gate = static_cast<size_t>(readers[0]), mul = static_cast<size_t>(readers[1]);
        if (g_.nodes[gate].op == "Mul") std::swap(gate, mul);
        const Node &gn = g_.nodes[gate], &mn = g_.nodes[mul];
        if (mn.op != "Mul" || mn.inputs.size() != 2 || only_output(gn) < 0 || only_output(mn) < 0) continue;
        const int s = only_output(gn);
        const bool pair = (mn.inputs[0] == y && mn.inputs[1] == s) || (mn.inputs[1] == y && mn.inputs[0] == s);
        if (!pair || sole_reader(s) != static_cast<int>(mul)) continue;
        kernels::Epilogue e = as_activation(gn);
        if (e.activation == Activation::Sigmoid) {
          e.activation = Activation::Swish;
        } else if (e.activation == Activation::HardSigmoid) {
          e.activation = Activation::HardSwish;
        } else {
          continue;
        }
        conv.epilogue = e;
        conv.fused.push_back(gn.op + " '" + gn.name + "'");
        dead_[gate] = true;
        absorb(c, mul);
      } else {
        continue;
      }
      count();
    }
    compact();
  }

  Graph& g_;
  std::vector<bool> dead_;
  std::vector<std::vector<int>> readers_;
  std::vector<int> producer_;
  std::vector<bool> is_output_;
};

// The blocked layout. In the plain layout a depthwise layer transposes its input into channel
// vectors and back, and a pointwise layer's register tile reads its pixels from as many planes as
// it has channels; in the blocked layout both read whole vectors of B channels, and a dense layer's
// tile reads one vector per pixel and tap. The activations stay blocked from layer to layer, as
// ONNX Runtime's NCHWc keeps them. Rules, per node in order:
//   - a Conv goes blocked when it is depthwise or dense (group 1) on a blocked input, or reads a
//     plain input of at most 4 channels into at least a block of outputs (a network's first layer,
//     which the kernel interleaves as it reads) that feeds a layer gaining from the layout
//     (feeds_blocked: not only 3x3 stride-1 layers, which the plain layout's Winograd serves: VGG
//     and ResNet-18 stay plain). A dense layer whose shape the plain selection gives to Winograd
//     runs it between layout changes (ops.cpp, plain_winograd). A residual the Conv adds is made
//     blocked (ToBlocked) when it is not. Grouped layers keep the plain layout;
//   - GlobalAveragePool, MaxPool and AveragePool of a blocked input, BatchNormalization (with the
//     Relu that alone reads it folded in), a Pad of zeros, and a Concat along the channels of
//     blocked inputs all but the last of which fill their blocks, stay blocked;
//   - elementwise nodes that map finite values to finite ones (the padding lanes stay harmless)
//     whose every non-constant input is blocked with the same channel count, and whose constant
//     inputs are scalars, stay blocked;
//   - every other reader of a blocked value, and the graph's outputs, get its plain form from one
//     FromBlocked node per value.
// TINYTORCH_BLOCKED_LAYOUT=0 turns the pass off.
class BlockedLayout {
 public:
  explicit BlockedLayout(Graph& g) : g_(g), lanes_(ops::blocked_lanes()) {}

  void run() {
    channels_.assign(g_.values.size(), 0);
    plain_of_.assign(g_.values.size(), -1);
    std::vector<Node> nodes = std::move(g_.nodes);
    g_.nodes.clear();
    readers_of_ = &nodes;
    for (Node& n : nodes) {
      if (n.op.empty()) continue;  // a Relu folded into the BatchNormalization before it
      const int64_t c = blocked_conv_channels(n);
      if (c > 0) {
        if (n.inputs.size() > 3 && n.inputs[3] >= 0) n.inputs[3] = blocked(n.inputs[3], c);
        mark(n, "Conv", c);
      } else if (n.op == "GlobalAveragePool" && n.inputs.size() == 1 && channels(n.inputs[0]) > 0) {
        mark(n, "GlobalAveragePool", channels(n.inputs[0]));
      } else if (const int64_t b = batch_norm_channels(n); b > 0) {
        Attribute a;
        a.kind = Attribute::Kind::Int, a.i = b;
        n.attrs["channels"] = a;
        a.i = fold_relu(n) ? 1 : 0;
        n.attrs["relu"] = a;
        absorb_concat(n);
        mark(n, "BatchNormalization", b);
      } else if (zero_pad(g_, n) && channels(n.inputs[0]) > 0) {
        mark(n, "Pad", channels(n.inputs[0]));
      } else if (const int64_t p = pool_or_concat_channels(n); p > 0) {
        Attribute a;  // the input's channels (a pool), or each input's (Concat)
        a.kind = n.op == "Concat" ? Attribute::Kind::Ints : Attribute::Kind::Int, a.i = p;
        for (int in : n.inputs) a.ints.push_back(channels(in));
        n.attrs["channels"] = a;
        mark(n, n.op.c_str(), p);
      } else if (const int64_t e = elementwise_channels(n); e > 0) {
        if (n.op == "Mul") n.run = blocked_op("Mul");  // the gate's broadcast in one pass
        channels_[static_cast<size_t>(n.outputs[0])] = e;
      } else {
        for (int& in : n.inputs) in = plain(in);
      }
      g_.nodes.push_back(std::move(n));
    }
    for (int& out : g_.outputs) {  // a blocked output: its producer writes a new value, converted back
      if (channels(out) == 0) continue;
      const int b = new_value(g_.values[static_cast<size_t>(out)].name + " (blocked)", channels(out));
      for (Node& n : g_.nodes) {
        for (int& v : n.inputs) v = v == out ? b : v;
        for (int& v : n.outputs) v = v == out ? b : v;
      }
      g_.nodes.push_back(layout_node("FromBlocked", b, out, channels(b)));
      channels_[static_cast<size_t>(out)] = 0;
    }
  }

 private:
  int64_t channels(int v) const { return v >= 0 ? channels_[static_cast<size_t>(v)] : 0; }
  const Tensor& constant(int v) const {
    static const Tensor none;
    return v >= 0 ? g_.values[static_cast<size_t>(v)].constant : none;
  }

  // The Conv's output channels when it goes blocked (the rules above), else 0.
  int64_t blocked_conv_channels(const Node& n) const {
    if (n.op != "Conv" || n.inputs.size() < 2 || n.outputs.empty() || n.outputs[0] < 0) return 0;
    const Tensor& w = constant(n.inputs[1]);
    if (!w.defined() || w.dim() != 4 || w.dtype() != DType::Float32) return 0;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !constant(n.inputs[2]).defined()) return 0;
    const int64_t OC = w.shape()[0], per_group = w.shape()[1], group = n.attr_int("group", 1);
    const int64_t in = channels(n.inputs[0]);
    if (group != 1) return per_group == 1 && group == OC && in == OC ? OC : 0;  // depthwise
    if (in > 0) return in == per_group ? OC : 0;
    return per_group <= 4 && OC >= lanes_ && !constant(n.inputs[0]).defined() && feeds_blocked(n.outputs[0], OC, 4) ? OC
                                                                                                                    : 0;
  }

  // Whether v (c channels) has a reader that would go blocked and gain from it: a pointwise,
  // depthwise or other dense Conv that is not Winograd's kind (3x3, stride 1, more than 16
  // channels in and 16 or more out: the plain layout runs those, ops.cpp's plain_winograd), or,
  // up to `depth` nodes deep, a pool, Concat, BatchNormalization or Relu whose output has one
  // (DenseNet's stem reaches its first 1x1 layer through a pool, a Concat of one input, a
  // BatchNormalization and a Relu).
  // A first layer that feeds none of them (VGG's, ResNet-18's through its pool) keeps the plain
  // layout rather than be converted back at once.
  bool feeds_blocked(int v, int64_t c, int depth) const {
    for (const Node& r : *readers_of_) {  // the nodes not placed yet: v's readers follow it
      if (r.inputs.empty() || r.inputs[0] != v || r.outputs.empty()) continue;
      const bool passes = r.op == "MaxPool" || r.op == "AveragePool" || r.op == "Relu" || r.op == "Concat" ||
                          r.op == "BatchNormalization";
      if (passes && depth > 0 && feeds_blocked(r.outputs[0], c, depth - 1)) {
        return true;
      }
      if (r.op != "Conv" || r.inputs.size() < 2) continue;
      const Tensor& w = constant(r.inputs[1]);
      if (!w.defined() || w.dim() != 4) continue;
      const int64_t group = r.attr_int("group", 1);
      const bool depthwise = group == c && w.shape()[0] == c && w.shape()[1] == 1;
      const auto s = r.attr_ints("strides", {1, 1});
      const auto d = r.attr_ints("dilations", {1, 1});
      const bool winograd = w.shape()[2] == 3 && w.shape()[3] == 3 && s == std::vector<int64_t>{1, 1} &&
                            d == std::vector<int64_t>{1, 1} && c > 16 && w.shape()[0] >= 16;
      if (depthwise || (group == 1 && w.shape()[1] == c && !winograd)) return true;
    }
    return false;
  }

  // The channels of an inference BatchNormalization of a blocked input with constant parameters,
  // else 0.
  int64_t batch_norm_channels(const Node& n) const {
    if (n.op != "BatchNormalization" || n.inputs.size() != 5 || n.outputs.empty() || n.outputs[0] < 0) return 0;
    for (size_t i = 1; i < n.outputs.size(); ++i) {
      if (n.outputs[i] >= 0) return 0;  // training mode's running statistics
    }
    for (size_t i = 1; i < 5; ++i) {
      if (!constant(n.inputs[i]).defined()) return 0;
    }
    return channels(n.inputs[0]);
  }

  // Folds a Relu that is the only reader of n's output into n: n writes the Relu's output, and the
  // Relu is left out (its op emptied). Not when n's output is a graph output.
  bool fold_relu(Node& n) {
    const int v = n.outputs[0];
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) != g_.outputs.end()) return false;
    Node* only = nullptr;
    for (Node& r : *readers_of_) {
      if (std::count(r.inputs.begin(), r.inputs.end(), v) == 0) continue;
      if (only != nullptr) return false;
      only = &r;
    }
    if (only == nullptr || only->op != "Relu" || only->inputs.size() != 1 || only->outputs.size() != 1) return false;
    n.outputs[0] = only->outputs[0];
    only->op.clear();
    return true;
  }

  // Takes into a blocked BatchNormalization n the blocked Concat whose output only n reads (not a
  // graph output): n then reads the Concat's inputs (attribute "concat": each one's channels) and
  // its parameters after them, and writes the affine of the concatenation in one pass, which is
  // never written (DenseNet's Concat -> BatchNormalization -> Relu before every layer).
  void absorb_concat(Node& n) {
    const int v = n.inputs[0];
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) != g_.outputs.end()) return;
    auto reads_v = [&](const Node& r) { return &r != &n && std::count(r.inputs.begin(), r.inputs.end(), v) > 0; };
    if (std::any_of(readers_of_->begin(), readers_of_->end(), reads_v)) return;
    auto concat = std::find_if(g_.nodes.begin(), g_.nodes.end(), [&](const Node& c) {
      return c.op == "Concat" && c.blocked && c.outputs.size() == 1 && c.outputs[0] == v;
    });
    if (concat == g_.nodes.end() || std::any_of(concat + 1, g_.nodes.end(), reads_v)) return;
    Attribute a;
    a.kind = Attribute::Kind::Ints, a.ints = concat->attr_ints("channels");
    n.attrs["concat"] = a;
    std::vector<int> inputs = concat->inputs;
    inputs.insert(inputs.end(), n.inputs.begin() + 1, n.inputs.end());
    n.inputs = inputs;
    n.fused.push_back("Concat '" + concat->name + "'");
    g_.nodes.erase(concat);
  }

  // The channels of a pool or Concat that stays blocked (its input's, or the sum of its inputs'),
  // else 0. Concat: along the channels, every input blocked, all but the last filling their blocks.
  int64_t pool_or_concat_channels(const Node& n) const {
    if (n.outputs.size() != 1 || n.outputs[0] < 0 || n.inputs.empty()) return 0;
    if (n.op == "MaxPool" || n.op == "AveragePool") return n.inputs.size() == 1 ? channels(n.inputs[0]) : 0;
    if (n.op != "Concat" || (n.attr_int("axis", 0) != 1 && n.attr_int("axis", 0) != -3)) return 0;
    int64_t sum = 0;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const int64_t c = channels(n.inputs[i]);
      if (c == 0 || (i + 1 < n.inputs.size() && c % lanes_ != 0)) return 0;
      sum += c;
    }
    return sum;
  }

  // The channels of an elementwise node that can stay blocked, else 0.
  int64_t elementwise_channels(const Node& n) const {
    static const char* const kOps[] = {"Relu",      "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
                                       "LeakyRelu", "Tanh", "Neg",     "Abs",         "Add",
                                       "Sub",       "Mul",  "Max",     "Min",         "Sum"};
    if (std::find_if(std::begin(kOps), std::end(kOps), [&](const char* op) { return n.op == op; }) == std::end(kOps)) {
      return 0;
    }
    if (n.outputs.size() != 1 || n.outputs[0] < 0) return 0;
    int64_t c = 0;
    for (int in : n.inputs) {
      if (in < 0) continue;
      const Tensor& k = constant(in);
      if (k.defined()) {
        if (k.numel() != 1) return 0;
      } else if (channels(in) == 0 || (c != 0 && channels(in) != c)) {
        return 0;
      } else {
        c = channels(in);
      }
    }
    return c;
  }

  void mark(Node& n, const char* op, int64_t c) {
    n.blocked = true;
    n.run = blocked_op(op);
    channels_[static_cast<size_t>(n.outputs[0])] = c;
  }

  int new_value(const std::string& name, int64_t c) {
    g_.values.push_back(Value{name, Tensor()});
    channels_.push_back(c);
    plain_of_.push_back(-1);
    return static_cast<int>(g_.values.size()) - 1;
  }

  Node layout_node(const char* op, int from, int to, int64_t c) const {
    Node n;
    n.op = op;
    n.name = g_.values[static_cast<size_t>(to)].name;
    n.inputs = {from};
    n.outputs = {to};
    n.run = blocked_op(op);
    n.opset = g_.opset;
    Attribute a;
    a.kind = Attribute::Kind::Int, a.i = c;
    n.attrs["channels"] = a;
    return n;
  }

  // v's plain form: v itself, or the output of the one FromBlocked node reading it.
  int plain(int v) {
    if (channels(v) == 0) return v;
    const auto at = static_cast<size_t>(v);
    if (plain_of_[at] < 0) {
      const int p = new_value(g_.values[at].name + " (plain)", 0);
      g_.nodes.push_back(layout_node("FromBlocked", v, p, channels(v)));
      plain_of_[at] = p;
    }
    return plain_of_[at];
  }

  // v blocked with c channels (a Conv's residual).
  int blocked(int v, int64_t c) {
    if (channels(v) == c) return v;
    const int p = plain(v);
    const int b = new_value(g_.values[static_cast<size_t>(p)].name + " (blocked)", c);
    g_.nodes.push_back(layout_node("ToBlocked", p, b, c));
    return b;
  }

  Graph& g_;
  const int64_t lanes_;
  std::vector<Node>* readers_of_ = nullptr;  // the graph's nodes as the pass found them
  std::vector<int64_t> channels_;            // per value: its channels when it is blocked, else 0
  std::vector<int> plain_of_;                // per blocked value: its FromBlocked output, once made
};

}  // namespace

namespace {

// Whether n is a Conv of stride 1 without padding (a pointwise one, given a 1x1 weight).
bool unit_window(const Node& n) {
  const auto s = n.attr_ints("strides", {1, 1}), p = n.attr_ints("pads", {0, 0, 0, 0});
  return std::all_of(s.begin(), s.end(), [](int64_t v) { return v == 1; }) &&
         std::all_of(p.begin(), p.end(), [](int64_t v) { return v == 0; });
}

// Pass 8: a blocked depthwise Conv takes in the blocked pointwise Conv (group 1, 1x1 weight, stride
// 1, no padding, no residual) whose output only it reads; both weights constant.
void fuse_pointwise_depthwise(Graph& g) {
  std::vector<int> readers(g.values.size(), 0), producer(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int in : g.nodes[i].inputs) {
      if (in >= 0) ++readers[static_cast<size_t>(in)];
    }
    for (int out : g.nodes[i].outputs) {
      if (out >= 0) producer[static_cast<size_t>(out)] = static_cast<int>(i);
    }
  }
  for (int out : g.outputs) ++readers[static_cast<size_t>(out)];
  auto constant4 = [&](const Node& n, size_t k) {
    return n.inputs.size() > k && n.inputs[k] >= 0 && g.values[static_cast<size_t>(n.inputs[k])].constant.dim() == 4;
  };
  std::vector<char> dead(g.nodes.size(), 0);
  for (Node& d : g.nodes) {
    if (d.op != "Conv" || !d.blocked || d.pointwise_first || d.attr_int("group", 1) <= 1 || !constant4(d, 1)) continue;
    const int v = d.inputs[0];
    if (v < 0 || readers[static_cast<size_t>(v)] != 1 || producer[static_cast<size_t>(v)] < 0) continue;
    const auto p = static_cast<size_t>(producer[static_cast<size_t>(v)]);
    const Node& a = g.nodes[p];
    if (a.op != "Conv" || !a.blocked || a.pointwise_first || a.attr_int("group", 1) != 1 || a.outputs.size() != 1 ||
        !constant4(a, 1) || (a.inputs.size() > 3 && a.inputs[3] >= 0) || !unit_window(a)) {
      continue;
    }
    const Shape& w = g.values[static_cast<size_t>(a.inputs[1])].constant.shape();
    if (w[2] != 1 || w[3] != 1) continue;
    auto input = [](const Node& n, size_t k) { return k < n.inputs.size() ? n.inputs[k] : -1; };
    d.inputs = {a.inputs[0], a.inputs[1], input(a, 2), d.inputs[1], input(d, 2), input(d, 3)};
    d.pointwise_first = true;
    d.pointwise_epilogue = a.epilogue;
    std::vector<std::string> fused{
        "Conv '" + a.name + "' (pointwise" +
        (a.epilogue.activation != Activation::None ? ", + " + kernels::to_string(a.epilogue) : std::string()) + ")"};
    fused.insert(fused.end(), a.fused.begin(), a.fused.end());
    fused.insert(fused.end(), d.fused.begin(), d.fused.end());
    d.fused = std::move(fused);
    d.frozen_weight = a.frozen_weight && d.frozen_weight;
    d.run = pointwise_depthwise_op();
    dead[p] = 1;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
}

}  // namespace

void optimize(Graph& g) {
  Optimizer(g).run();
  if (env_count("TINYTORCH_BLOCKED_LAYOUT", 1).value_or(1) != 0) {
    BlockedLayout(g).run();
    if (env_count("TINYTORCH_FUSE_POINTWISE_DEPTHWISE", 1).value_or(1) != 0) fuse_pointwise_depthwise(g);
  }
}

}  // namespace tinytorch::onnx::detail

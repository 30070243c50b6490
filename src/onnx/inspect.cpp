// Model::inspect (onnx.hpp): one run watched node by node - output shapes, FLOPs, parameters, the
// convolution algorithm - then the memory plan of that run's intermediates, and optionally each
// node's median time over more runs. The seed's systems analysis (parameters, FLOPs, memory per
// layer) for a whole imported network.
#include <algorithm>

#include "core/memory_plan.hpp"
#include "onnx/graph.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/onnx.hpp"

namespace tinytorch::onnx {

namespace {

int64_t bytes_of(const Tensor& t) { return t.defined() ? t.numel() * element_size(t.dtype()) : 0; }

// Multiply-adds x 2 of the node's main work; 0 where it is not a contraction.
int64_t flops_of(const detail::Node& n, const std::vector<Tensor>& in, const std::vector<Tensor>& out) {
  if (out.empty() || !out[0].defined() || in.size() < 2 || !in[0].defined() || !in[1].defined()) return 0;
  if (n.pointwise_first && in.size() > 3 && in[3].defined() && in[0].dim() >= 4 && out[0].dim() >= 4) {
    // the pointwise layer over the input's pixels, then the depthwise one (KH * KW per output)
    const Shape &x = in[0].shape(), &y = out[0].shape();
    return 2 * x[0] * x[2] * x[3] * in[1].numel() + 2 * y[0] * y[2] * y[3] * in[3].numel();
  }
  if (n.op == "Conv" && in[1].dim() == 4 && in[1].shape()[0] > 0) {
    return 2 * out[0].numel() * (in[1].numel() / in[1].shape()[0]);  // per output: C/groups * KH * KW
  }
  if (n.op == "Gemm" && in[0].dim() == 2) {
    return 2 * out[0].numel() * in[0].shape()[n.attr_int("transA", 0) != 0 ? 0 : 1];
  }
  if (n.op == "MatMul" && in[0].dim() >= 1) return 2 * out[0].numel() * in[0].shape().back();
  return 0;
}

}  // namespace

Report Model::inspect(const Tensor& input, int timed_runs) const {
  const detail::Graph& g = *graph_;
  if (g.inputs.size() != 1) {
    throw ShapeError("onnx: inspect feeds models with one input; this one has " + std::to_string(g.inputs.size()));
  }
  struct Watch : Observer {
    const detail::Graph* graph;
    Report* report;
    std::vector<std::vector<double>> times;
    std::vector<int64_t> bytes;  // per value, as this run made it
    bool first = true;

    void node(size_t i, const std::vector<Tensor>& in, const std::vector<Tensor>& out, double seconds) override {
      times[i].push_back(seconds * 1e3);
      if (!first) return;
      const detail::Node& n = graph->nodes[i];
      NodeReport& r = report->nodes[i];
      r.op = n.op, r.name = n.name;
      for (const Tensor& t : out) {
        r.output_shapes.push_back(t.defined() ? t.shape() : Shape{});
        r.output_bytes += bytes_of(t);
      }
      for (size_t o = 0; o < n.outputs.size() && o < out.size(); ++o) {
        if (n.outputs[o] >= 0) bytes[static_cast<size_t>(n.outputs[o])] = bytes_of(out[o]);
      }
      r.flops = flops_of(n, in, out);
      for (size_t k = 0; k < n.inputs.size() && k < in.size(); ++k) {
        const int v = n.inputs[k];
        const Tensor& c = v >= 0 ? graph->values[static_cast<size_t>(v)].constant : Tensor();
        if (c.defined() && c.dtype() == DType::Float32) r.params += c.numel();
      }
      if (n.op == "Conv") r.algorithm = detail::conv_algorithm(n, in);
    }
  } watch;
  Report report;
  report.input = input.shape();
  report.nodes.resize(g.nodes.size());
  watch.graph = &g;
  watch.report = &report;
  watch.times.resize(g.nodes.size());
  watch.bytes.assign(g.values.size(), 0);
  const std::map<std::string, Tensor> feed{{g.input_info[0].name, input}};
  execute(feed, &watch);
  const tinytorch::MemoryPlan::Stats planned = g.memory->stats();  // recorded by that run, or replayed
  report.memory.runtime_block_bytes = planned.block_bytes;
  report.memory.runtime_tensors = planned.planned_tensors;
  watch.first = false;
  for (auto& t : watch.times) t.clear();  // the first run pays for preparing weights
  for (int r = 0; r < timed_runs; ++r) execute(feed, &watch);
  report.timed_runs = std::max(0, timed_runs);

  const std::vector<std::string> described = describe_nodes();
  for (size_t i = 0; i < report.nodes.size(); ++i) {
    NodeReport& n = report.nodes[i];
    const std::string head = n.op + " '" + n.name + "'";
    n.fused = described[i].size() > head.size() ? described[i].substr(head.size() + 1) : "";
    std::vector<double>& t = watch.times[i];
    if (!t.empty()) {
      std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
      n.milliseconds = t[t.size() / 2];
    }
    report.flops += n.flops;
    report.params += n.params;
  }

  // The memory plan: every value a node writes, alive from that node to its last reader (graph
  // outputs to the end).
  std::vector<Lifetime> tensors;
  std::vector<int64_t> live_delta(g.nodes.size() + 1, 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int v : g.nodes[i].outputs) {
      if (v < 0 || watch.bytes[static_cast<size_t>(v)] == 0) continue;
      const int64_t b = watch.bytes[static_cast<size_t>(v)];
      const int last_use = g.last_use[static_cast<size_t>(v)];
      const size_t last = last_use < 0 ? i : std::min(static_cast<size_t>(last_use), g.nodes.size() - 1);
      tensors.push_back({b, static_cast<int64_t>(i), static_cast<int64_t>(last)});
      report.memory.intermediate_bytes += b;
      live_delta[i] += b;
      live_delta[last + 1] -= b;
    }
  }
  int64_t live = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    live += live_delta[i];
    report.memory.peak_live_bytes = std::max(report.memory.peak_live_bytes, live);
  }
  report.memory.arena_bytes = place_by_lifetime(tensors).total;
  return report;
}

}  // namespace tinytorch::onnx

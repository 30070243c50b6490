// `tinytorch run MODEL.onnx`: an ONNX model on tinytorch's kernels. Runs it on an input from a
// .npy file (or a seeded random one of the model's input shape), prints the output's shape and,
// for classifier outputs, each row's top 5; writes the output as .npy; with --bench, the batch's
// latency and the throughput. `tinytorch inspect MODEL.onnx`: the graph after the passes, node by
// node, with shapes, FLOPs, parameters, the algorithm, times (--profile N) and the memory plan.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "args.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "runtime_options.hpp"
#include "timing.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

// The model's input for --batch N with no --input: its declared shape, the free dims set to N.
Tensor random_input(const onnx::Model& model, int64_t batch) {
  if (model.inputs().size() != 1) {
    throw UsageError("run: the model has " + std::to_string(model.inputs().size()) +
                     " inputs; tinytorch run feeds models with one");
  }
  Shape shape = model.inputs()[0].dims;
  if (shape.empty()) throw UsageError("run: the model does not declare its input's shape; give --input x.npy");
  for (int64_t& d : shape) d = d < 0 ? batch : d;
  Generator gen(0);
  return Tensor::randn(shape, gen);
}

void print_top5(const Tensor& out) {
  if (out.dim() != 2 || out.dtype() != DType::Float32) return;
  const Tensor y = out.contiguous();
  const int64_t rows = std::min<int64_t>(y.shape()[0], 8), classes = y.shape()[1];
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    const float* v = y.data() + r * classes;
    const auto k = std::min<int64_t>(5, classes);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    std::printf("  row %lld top-%lld:", static_cast<long long>(r), static_cast<long long>(k));
    for (int64_t i = 0; i < k; ++i) {
      std::printf(" %lld (%.4g)", static_cast<long long>(order[static_cast<size_t>(i)]),
                  v[order[static_cast<size_t>(i)]]);
    }
    std::printf("\n");
  }
  if (y.shape()[0] > rows) std::printf("  ... %lld rows more\n", static_cast<long long>(y.shape()[0] - rows));
}

// The model file as the first argument, before the options.
std::string take_model_path(std::vector<std::string>& rest) {
  std::string path;
  if (!rest.empty() && rest[0].rfind("--", 0) != 0) {
    path = rest[0];
    rest.erase(rest.begin());
  }
  return path;
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

Json report_json(const std::string& path, const onnx::Report& r) {
  Json nodes = Json::array();
  for (const onnx::NodeReport& n : r.nodes) {
    Json shapes = Json::array();
    for (const Shape& s : n.output_shapes) shapes.push_back(s);
    nodes.push_back({{"op", n.op},
                     {"name", n.name},
                     {"fused", n.fused},
                     {"output_shapes", shapes},
                     {"flops", n.flops},
                     {"params", n.params},
                     {"algorithm", n.algorithm},
                     {"output_bytes", n.output_bytes},
                     {"ms", n.milliseconds}});
  }
  return {{"model", path},
          {"input", r.input},
          {"threads", get_num_threads()},
          {"timed_runs", r.timed_runs},
          {"flops", r.flops},
          {"params", r.params},
          {"memory",
           {{"intermediate_bytes", r.memory.intermediate_bytes},
            {"peak_live_bytes", r.memory.peak_live_bytes},
            {"arena_bytes", r.memory.arena_bytes},
            {"runtime_block_bytes", r.memory.runtime_block_bytes},
            {"runtime_tensors", r.memory.runtime_tensors}}},
          {"nodes", nodes}};
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv) {
  NoGradGuard no_grad;
  Args args("inspect",
            "The graph of an ONNX model after tinytorch's graph passes (tinytorch inspect MODEL.onnx [options]):\n"
            "each node with what was fused into it, its output shape, FLOPs, parameters and the convolution\n"
            "algorithm chosen, from one run on --input x.npy or a random batch of --batch; with --profile N,\n"
            "each node's median time over N runs. Then the memory plan: the sum of all intermediate tensors,\n"
            "the most alive at once, and one static arena holding them by lifetime.");
  add_runtime_options(args);
  args.option("input", "", "the input as a .npy file (float32 or float64, C order)");
  args.option("batch", "1", "batch size of the random input when --input is not given");
  args.option("profile", "0", "time every node over this many runs (median)");
  args.option("json", "", "also write the report as JSON to this file");
  args.flag("no-optimize", "the graph as written, without the graph passes");
  std::vector<std::string> rest = argv;
  const std::string path = take_model_path(rest);
  if (!args.parse(rest)) return 0;
  if (path.empty()) throw UsageError("inspect: expected the model file: tinytorch inspect MODEL.onnx [options]");
  apply_runtime_options(args);
  const onnx::Model model = onnx::load(path, onnx::LoadOptions{!args.has("no-optimize")});
  const Tensor input =
      args.get("input").empty() ? random_input(model, args.get_int("batch", 1, 4096)) : load_npy(args.get("input"));
  const auto runs = static_cast<int>(args.get_int("profile", 0, 100000));
  const onnx::Report r = model.inspect(input, runs);
  std::printf("%s: %zu nodes after the graph passes, input %s, %d threads\n", path.c_str(), r.nodes.size(),
              shape_to_string(input.shape()).c_str(), get_num_threads());
  std::printf("%4s  %-44s %-22s %10s %10s  %-12s%s\n", "#", "node", "output", "MFLOP", "params", "algorithm",
              runs > 0 ? "        ms      %" : "");
  double total_ms = 0;
  for (const auto& n : r.nodes) total_ms += n.milliseconds;
  for (size_t i = 0; i < r.nodes.size(); ++i) {
    const onnx::NodeReport& n = r.nodes[i];
    std::string label = n.op + " " + n.name;
    if (label.size() > 44) label = label.substr(0, 20) + "..." + label.substr(label.size() - 21);
    const std::string shape = n.output_shapes.empty() ? "" : shape_to_string(n.output_shapes[0]);
    std::printf("%4zu  %-44s %-22s %10.2f %10lld  %-12s", i, label.c_str(), shape.c_str(),
                static_cast<double>(n.flops) / 1e6, static_cast<long long>(n.params), n.algorithm.c_str());
    if (runs > 0) std::printf(" %9.3f %6.1f", n.milliseconds, total_ms > 0 ? 100.0 * n.milliseconds / total_ms : 0.0);
    std::printf("\n");
    if (!n.fused.empty()) std::printf("        %s\n", n.fused.c_str());
  }
  std::printf("total: %.3f GFLOP, %lld parameters (%s)", static_cast<double>(r.flops) / 1e9,
              static_cast<long long>(r.params), mib(r.params * 4).c_str());
  if (runs > 0) std::printf(", %.3f ms per run (sum of the node medians over %d runs)", total_ms, runs);
  std::printf(
      "\nmemory plan: intermediate tensors %s in all; at most %s alive at once (freed after the last\n"
      "reader); one static arena by lifetime: %s. The runtime's block, planned from a recorded run\n"
      "over every tensor it allocates (node outputs and the operators' temporaries): %s for %lld tensors\n",
      mib(r.memory.intermediate_bytes).c_str(), mib(r.memory.peak_live_bytes).c_str(),
      mib(r.memory.arena_bytes).c_str(), mib(r.memory.runtime_block_bytes).c_str(),
      static_cast<long long>(r.memory.runtime_tensors));
  if (!args.get("json").empty()) {
    write_file_atomic(args.get("json"), json_text(report_json(path, r), 1) + "\n");
    std::printf("wrote %s\n", args.get("json").c_str());
  }
  return 0;
}

int run_run(const std::vector<std::string>& argv) {
  NoGradGuard no_grad;
  Args args("run",
            "Runs an ONNX model (tinytorch run MODEL.onnx [options]): on --input x.npy, or on a seeded random\n"
            "batch of --batch images of the model's input shape. Prints the output's shape and each row's\n"
            "top 5 classes; --output writes the output as .npy; --bench times the batch.");
  add_runtime_options(args);
  args.option("input", "", "the input as a .npy file (float32 or float64, C order)");
  args.option("output", "", "write the first output to this .npy file");
  args.option("batch", "1", "batch size of the random input when --input is not given");
  args.flag("bench", "time the model on the batch: latency (median) and images/s");
  std::vector<std::string> rest = argv;
  const std::string path = take_model_path(rest);
  if (!args.parse(rest)) return 0;
  if (path.empty()) throw UsageError("run: expected the model file: tinytorch run MODEL.onnx [options]");
  apply_runtime_options(args);
  const onnx::Model model = onnx::load(path);
  const Tensor input =
      args.get("input").empty() ? random_input(model, args.get_int("batch", 1, 4096)) : load_npy(args.get("input"));
  const std::vector<Tensor> outs = model.forward(input);
  std::printf("%s: %lld nodes, opset %lld (%s); input %s\n", path.c_str(), static_cast<long long>(model.num_nodes()),
              static_cast<long long>(model.opset()), model.producer().c_str(), shape_to_string(input.shape()).c_str());
  for (size_t i = 0; i < outs.size(); ++i) {
    std::printf("output '%s': %s\n", model.outputs()[i].name.c_str(), shape_to_string(outs[i].shape()).c_str());
  }
  print_top5(outs[0]);
  if (!args.get("output").empty()) {
    save_npy(args.get("output"), outs[0]);
    std::printf("wrote %s\n", args.get("output").c_str());
  }
  if (args.has("bench")) {
    const double s = median_seconds([&] { model.forward(input); }, 5, 1.0, 200);
    const double images = input.dim() > 0 ? static_cast<double>(input.shape()[0]) : 1.0;
    std::printf("latency %.3f ms per batch of %.0f (median), %.1f images/s, %d threads\n", s * 1e3, images, images / s,
                get_num_threads());
  }
  return 0;
}

}  // namespace tinytorch::cli

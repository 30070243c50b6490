// `tinytorch analyze`: the seed's analyze_spatial_complexity with measured numbers, and its third
// question (memory of the CNN pipeline at a batch size) answered per layer.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include "analyses.hpp"
#include "args.hpp"
#include "commands.hpp"
#include "demo_cnn.hpp"
#include "json.hpp"
#include "timing.hpp"

namespace tinytorch::cli {
namespace {

struct ScalingRow {
  int64_t size;
  double naive_seconds, conv_seconds;
  int64_t naive_flops, conv_flops;
};

struct ParamRow {
  int64_t in_channels, out_channels, params;
};

struct LayerRow {
  std::string name;
  Shape shape;
  int64_t params, flops, activation_bytes;
};

constexpr double kMiB = 1024.0 * 1024.0;

// FLOPs of one layer's forward pass (a multiply-add counts 2; a max or add of pooling counts 1).
int64_t layer_flops(const Module& m, const Shape& in, const Shape& out) {
  const int64_t out_numel = checked_numel(out);
  if (auto* c = dynamic_cast<const Conv2D*>(&m)) {
    return 2 * out_numel * (c->in_channels / c->options.groups) * c->kernel_size.h * c->kernel_size.w;
  }
  if (auto* p = dynamic_cast<const MaxPool2D*>(&m))
    return out_numel * p->options.kernel_size.h * p->options.kernel_size.w;
  if (auto* l = dynamic_cast<const Linear*>(&m)) return 2 * in[0] * l->input_size * l->output_size;
  return 0;
}

}  // namespace

namespace {

// What the seed's three questions measure: conv scaling, parameter memory, the demo CNN's memory.
struct SeedAnalysis {
  int64_t batch = 0;
  std::vector<ScalingRow> scaling;
  std::vector<ParamRow> params;
  std::vector<LayerRow> layers;
  int64_t param_bytes = 0, activation_bytes = 0, inference_bytes = 0, training_bytes = 0, total_flops = 0;
};

SeedAnalysis measure_seed_analysis(int64_t batch) {
  // 1. Convolution scaling: the seed times conv2d_naive on a 3-channel image with one 3x3
  //    kernel; we also time a Conv2D(3 -> 16) layer on the same image.
  std::vector<ScalingRow> scaling;
  const Tensor kernel = Tensor::randn({3, 3});
  Conv2D conv(3, 16, 3);
  for (int64_t size : {16, 32, 64, 128}) {
    const Tensor image = Tensor::randn({3, size, size});
    ScalingRow r{size, 0, 0, 2 * 3 * (size - 2) * (size - 2) * 9, 2 * 16 * (size - 2) * (size - 2) * 27};
    r.naive_seconds = median_seconds([&] { conv2d_naive(image, kernel); });
    r.conv_seconds = median_seconds([&] { conv(image); });
    scaling.push_back(r);
  }

  // 2. Parameter memory for the seed's channel configurations (3x3 kernels, with bias).
  std::vector<ParamRow> params;
  for (auto [ic, oc] : std::vector<std::pair<int64_t, int64_t>>{{1, 16}, {3, 32}, {16, 64}, {32, 128}}) {
    params.push_back({ic, oc, Conv2D(ic, oc, 3).num_parameters()});
  }

  // 3. The demo CNN at the batch size: run it and record each layer's output.
  std::vector<LayerRow> layers;
  Tensor x = Tensor::randn({batch, 3, 28, 28});
  layers.push_back({"Input", x.shape(), 0, 0, x.numel() * 4});
  int64_t param_bytes = 0, activation_bytes = x.numel() * 4, peak_pair = 0;
  for (const NamedLayer& layer : make_demo_cnn()) {
    const Shape in = x.shape();
    const int64_t in_bytes = x.numel() * 4;
    x = (*layer.module)(x);
    LayerRow r{layer.name, x.shape(), layer.module->num_parameters(), layer_flops(*layer.module, in, x.shape()),
               x.numel() * 4};
    // Flatten is a view: it allocates nothing.
    if (layer.name == "Flatten") r.activation_bytes = 0;
    param_bytes += r.params * 4;
    activation_bytes += r.activation_bytes;
    peak_pair = std::max(peak_pair, in_bytes + r.activation_bytes);
    layers.push_back(r);
  }
  // Inference frees each activation once the next layer has consumed it, so its peak is the
  // largest input + output pair; training keeps every activation for backward and adds one
  // gradient per parameter.
  const int64_t inference_bytes = param_bytes + peak_pair;
  const int64_t training_bytes = activation_bytes + 2 * param_bytes;
  int64_t total_flops = 0;
  for (const LayerRow& r : layers) total_flops += r.flops;
  SeedAnalysis a;
  a.batch = batch, a.scaling = scaling, a.params = params, a.layers = layers;
  a.param_bytes = param_bytes, a.activation_bytes = activation_bytes, a.inference_bytes = inference_bytes;
  a.training_bytes = training_bytes, a.total_flops = total_flops;
  return a;
}

void print_seed_json(const SeedAnalysis& a) {
  const auto& [batch, scaling, params, layers, param_bytes, activation_bytes, inference_bytes, training_bytes,
               total_flops] = a;
  Json out = {{"conv_scaling", Json::array()}, {"parameter_memory", Json::array()}};
  for (const ScalingRow& r : scaling) {
    out["conv_scaling"].push_back({{"size", r.size},
                                   {"conv2d_naive_seconds", r.naive_seconds},
                                   {"conv2d_naive_flops", r.naive_flops},
                                   {"conv2d_3to16_seconds", r.conv_seconds},
                                   {"conv2d_3to16_flops", r.conv_flops}});
  }
  for (const ParamRow& r : params) {
    out["parameter_memory"].push_back({{"in_channels", r.in_channels},
                                       {"out_channels", r.out_channels},
                                       {"parameters", r.params},
                                       {"bytes", r.params * 4}});
  }
  Json demo = {{"batch", batch}, {"layers", Json::array()}};
  for (const LayerRow& r : layers) {
    demo["layers"].push_back({{"name", r.name},
                              {"output_shape", r.shape},
                              {"parameters", r.params},
                              {"flops", r.flops},
                              {"activation_bytes", r.activation_bytes}});
  }
  demo["parameter_bytes"] = param_bytes;
  demo["activation_bytes"] = activation_bytes;
  demo["flops"] = total_flops;
  demo["inference_peak_bytes"] = inference_bytes;
  demo["training_bytes"] = training_bytes;
  out["demo_cnn"] = demo;
  std::cout << json_text(out) << "\n";
}

void print_seed_tables(const SeedAnalysis& a) {
  const auto& [batch, scaling, params, layers, param_bytes, activation_bytes, inference_bytes, training_bytes,
               total_flops] = a;
  char line[256];
  std::cout << "SPATIAL COMPLEXITY ANALYSIS\n\n"
            << "Convolution scaling: 3-channel SxS image, 3x3 kernel, no padding. conv2d_naive is the seed's\n"
            << "plain loops (1 thread); Conv2D(3->16) runs the fast path on " << get_num_threads() << " thread(s).\n";
  std::snprintf(line, sizeof line, "%6s %14s %10s %9s %16s %10s %9s %8s\n", "size", "conv2d_naive", "MFLOP", "GFLOP/s",
                "Conv2D(3->16)", "MFLOP", "GFLOP/s", "growth");
  std::cout << line;
  for (size_t i = 0; i < scaling.size(); ++i) {
    const ScalingRow& r = scaling[i];
    const double growth = i ? r.conv_seconds / scaling[i - 1].conv_seconds : 1.0;
    std::snprintf(line, sizeof line, "%6lld %11.3f ms %10.3f %9.2f %13.3f ms %10.3f %9.2f %7.2fx\n",
                  static_cast<long long>(r.size), r.naive_seconds * 1e3, r.naive_flops / 1e6,
                  r.naive_flops / r.naive_seconds / 1e9, r.conv_seconds * 1e3, r.conv_flops / 1e6,
                  r.conv_flops / r.conv_seconds / 1e9, growth);
    std::cout << line;
  }
  const double size_ratio = static_cast<double>(scaling[2].size) / scaling[0].size;
  const double pixel_ratio = static_cast<double>((scaling[2].size - 2) * (scaling[2].size - 2)) /
                             static_cast<double>((scaling[0].size - 2) * (scaling[0].size - 2));
  std::snprintf(line, sizeof line,
                "Insight: %.0fx the side (16 -> 64) gives %.1fx the time for conv2d_naive and %.1fx for Conv2D;\n"
                "         the output pixels grow %.1fx, so time is O(S^2) in the side S, as the seed predicts.\n",
                size_ratio, scaling[2].naive_seconds / scaling[0].naive_seconds,
                scaling[2].conv_seconds / scaling[0].conv_seconds, pixel_ratio);
  std::cout << line << "\nParameter memory (3x3 kernels, with bias, float32)\n";
  for (const ParamRow& r : params) {
    std::snprintf(line, sizeof line, "  Conv2D(%lld -> %lld): %8lld params, %8.3f MiB\n",
                  static_cast<long long>(r.in_channels), static_cast<long long>(r.out_channels),
                  static_cast<long long>(r.params), r.params * 4 / kMiB);
    std::cout << line;
  }
  std::cout << "  Parameters grow as in_channels x out_channels x KH x KW: channels, not image size, set them.\n\n";

  std::cout << "Demo CNN at batch " << batch << " (float32)\n";
  std::snprintf(line, sizeof line, "  %-8s %-20s %10s %14s %14s\n", "layer", "output shape", "params", "MFLOP",
                "activation MiB");
  std::cout << line;
  for (const LayerRow& r : layers) {
    std::snprintf(line, sizeof line, "  %-8s %-20s %10lld %14.3f %14.3f\n", r.name.c_str(),
                  shape_to_string(r.shape).c_str(), static_cast<long long>(r.params), r.flops / 1e6,
                  r.activation_bytes / kMiB);
    std::cout << line;
  }
  std::snprintf(line, sizeof line,
                "  total: %lld params (%.3f MiB), %.1f MFLOP, activations %.3f MiB\n"
                "  inference peak (params + largest input/output pair): %.3f MiB\n"
                "  training (activations + params + gradients):          %.3f MiB\n",
                static_cast<long long>(param_bytes / 4), param_bytes / kMiB, total_flops / 1e6, activation_bytes / kMiB,
                inference_bytes / kMiB, training_bytes / kMiB);
  std::cout << line;
}

}  // namespace

int run_analyze(const std::vector<std::string>& argv) {
  NoGradGuard no_grad;  // inference only: parameters require grad, but nothing here trains
  Args args("analyze",
            "The seed's systems analysis, measured: how convolution time grows with the input size, how\n"
            "parameter memory grows with channels, and the memory of the demo CNN at a batch size.");
  args.option("batch", "32", "batch size for the demo CNN's memory table (the seed's third question)");
  args.option("seed", "0", "random seed");
  args.flag("json", "print one JSON object instead of tables");
  args.flag("train", "predicted and measured memory of a training step of the default CNN at --batch");
  args.flag("loops", "time one convolution in several loop orders next to the fast path (cache locality)");
  args.optional_value("threads", std::to_string(std::thread::hardware_concurrency()),
                      "speed-up of each conv algorithm from 1 to N threads (default: all cores), with a PNG");
  args.option("size", "56", "with --loops: the image side");
  args.option("channels", "32", "with --loops: input and output channels");
  args.option("plot", "", "with --threads or --distributed: where to write the JSON and PNG (stem)");
  args.flag("distributed",
            "data-parallel training on 1 to 1024 processes over 10/25/100 Gb/s, predicted from an allreduce and a "
            "training step measured here under mpirun, with a PNG");
  args.flag("distributed-probe", "(internal) the measuring part of --distributed, run under mpirun");
  args.option("conv-algo", "auto", "force a conv2d algorithm where it applies (see tinytorch bench --help)");
  if (!args.parse(argv)) return 0;
  try {
    set_conv2d_algorithm(conv2d_algorithm_from_string(args.get("conv-algo")));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--conv-algo: ") + e.what());
  }
  if (args.has("train")) return analyze_train(args.has("json"), args.get_int("batch", 1, 1 << 16));
  if (args.has("loops")) {
    return analyze_loops(args.has("json"), args.get_int("size", 8, 512), args.get_int("channels", 1, 512));
  }
  if (args.has("threads")) {
    const std::string stem = args.get("plot").empty() ? "tinytorch_threads" : args.get("plot");
    return analyze_threads(args.has("json"), static_cast<int>(args.get_int("threads", 1, 256)), stem);
  }
  if (args.has("distributed") || args.has("distributed-probe")) {
    EnableGradGuard grad;  // the probe trains
    const std::string stem = args.get("plot").empty() ? "tinytorch_distributed" : args.get("plot");
    return analyze_distributed(args.has("json"), stem, args.has("distributed-probe"));
  }
  const int64_t batch = args.get_int("batch", 1, 1 << 20);
  manual_seed(static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX)));
  const SeedAnalysis a = measure_seed_analysis(batch);
  if (args.has("json")) {
    print_seed_json(a);
  } else {
    print_seed_tables(a);
  }
  return 0;
}

}  // namespace tinytorch::cli

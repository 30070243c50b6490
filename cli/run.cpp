// `tinytorch run MODEL.onnx`: an ONNX model on tinytorch's kernels. Runs it on an input from a
// .npy file (or a seeded random one of the model's input shape), prints the output's shape and,
// for classifier outputs, each row's top 5; writes the output as .npy; with --bench, the batch's
// latency and the throughput.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "args.hpp"
#include "commands.hpp"
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

}  // namespace

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
  std::string path;
  if (!rest.empty() && rest[0].rfind("--", 0) != 0) {
    path = rest[0];
    rest.erase(rest.begin());
  }
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

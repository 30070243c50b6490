// `tinytorch demo`: the seed's main block, the CNN pipeline on one 3x28x28 image.
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "demo_cnn.hpp"
#include "runtime_options.hpp"

namespace tinytorch::cli {

int run_demo(const std::vector<std::string>& argv) {
  NoGradGuard no_grad;  // inference only: parameters require grad, but nothing here trains
  Args args("demo",
            "Runs the seed's CNN pipeline on one random 3x28x28 image and prints the shape after\n"
            "each layer and the parameter counts.");
  args.option("seed", "0", "random seed for the input and the weights");
  add_runtime_options(args);
  if (!args.parse(argv)) return 0;
  apply_runtime_options(args);
  manual_seed(static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX)));

  std::cout << "SPATIAL MODULE - CONVOLUTIONAL NEURAL NETWORKS\n"
            << std::string(60, '=') << "\n"
            << "Building CNN: Conv2D -> MaxPool2D -> Conv2D -> MaxPool2D -> Flatten -> Linear\n";
  const std::vector<NamedLayer> layers = make_demo_cnn();
  Tensor x = Tensor::randn({3, 28, 28});
  std::cout << " Input shape: " << shape_to_string(x.shape()) << "\n";
  int64_t total = 0;
  for (const NamedLayer& layer : layers) {
    // A single image has no batch dimension: flatten it all, as the seed's flatten() does.
    x = layer.name == "Flatten" ? flatten(x) : (*layer.module)(x);
    const int64_t params = layer.module->num_parameters();
    total += params;
    std::cout << " After " << layer.name << ": " << shape_to_string(x.shape());
    if (params > 0) std::cout << "  (" << params << " parameters)";
    std::cout << "\n";
  }
  std::cout << " Final output: " << shape_to_string(x.shape()) << "\n"
            << " Total parameters: " << total << "\n"
            << "CNN pipeline working: ready for image classification.\n";
  return 0;
}

}  // namespace tinytorch::cli

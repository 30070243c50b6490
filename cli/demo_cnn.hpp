// The seed's CNN pipeline, shared by `tinytorch demo` and `tinytorch analyze`:
// (3, 28, 28) -> Conv(3,16,3) -> Pool(2) -> Conv(16,32,3) -> Pool(2) -> Flatten -> Linear(800, 10).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {

struct NamedLayer {
  std::string name;
  std::shared_ptr<Module> module;
};

inline std::vector<NamedLayer> make_demo_cnn() {
  return {
      {"Conv1", std::make_shared<Conv2D>(3, 16, 3)},
      {"Pool1", std::make_shared<MaxPool2D>(2)},
      {"Conv2", std::make_shared<Conv2D>(16, 32, 3)},
      {"Pool2", std::make_shared<MaxPool2D>(2)},
      // Keeps the batch dimension; on a single image the demo uses the seed's flatten() instead.
      {"Flatten", std::make_shared<Flatten>(1)},
      {"Linear", std::make_shared<Linear>(32 * 5 * 5, 10)},
  };
}

}  // namespace tinytorch::cli

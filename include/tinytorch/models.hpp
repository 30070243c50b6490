// Ready-made models.
#pragma once

#include <memory>

#include "tinytorch/layers.hpp"
#include "tinytorch/spatial.hpp"

namespace tinytorch {

// The default Fashion-MNIST model of `tinytorch train`, on [N, 1, 28, 28]:
//   Conv(1, 32, 3, pad 1) - BN - ReLU - MaxPool(2) -> [N, 32, 14, 14]
//   Conv(32, 64, 3, pad 1) - BN - ReLU - MaxPool(2) -> [N, 64, 7, 7]
//   Flatten -> [N, 3136] - Linear(3136, 128) - ReLU - Dropout(0.25) - Linear(128, 10)
// 421,642 parameters. Small enough to train in seconds per epoch, deep enough for ~91-92%.
std::shared_ptr<Sequential> make_fashion_cnn();

}  // namespace tinytorch

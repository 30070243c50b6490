#include "tinytorch/models.hpp"

namespace tinytorch {

std::shared_ptr<Sequential> make_fashion_cnn() {
  auto net = std::make_shared<Sequential>();
  net->emplace<Conv2D>(1, 32, 3, 1, 1);
  net->emplace<BatchNorm2d>(32);
  net->emplace<ReLU>();
  net->emplace<MaxPool2D>(2);
  net->emplace<Conv2D>(32, 64, 3, 1, 1);
  net->emplace<BatchNorm2d>(64);
  net->emplace<ReLU>();
  net->emplace<MaxPool2D>(2);
  net->emplace<Flatten>();
  net->emplace<Linear>(64 * 7 * 7, 128);
  net->emplace<ReLU>();
  net->emplace<Dropout>(0.25);
  net->emplace<Linear>(128, 10);
  return net;
}

}  // namespace tinytorch

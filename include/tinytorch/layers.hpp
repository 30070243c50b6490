// The non-spatial layers: Linear and ReLU (TinyTorch's tinytorch.core.layers).
#pragma once

#include "tinytorch/module.hpp"

namespace tinytorch {

// y = x W^T + b, on (input_size,) -> (output_size,) and (N, input_size) -> (N, output_size).
// weight [output_size, input_size] and bias [output_size] start uniform in
// (-1/sqrt(input_size), 1/sqrt(input_size)), as torch.nn.Linear.
class Linear : public Module {
 public:
  Linear(int64_t input_size, int64_t output_size, bool bias = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;

  const int64_t input_size, output_size;
  Tensor weight;  // [output_size, input_size]
  Tensor bias;    // [output_size], undefined when bias = false
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "ReLU"; }
};

}  // namespace tinytorch

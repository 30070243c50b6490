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

// Batch normalization of (N, C, H, W) or (N, C) per channel, as torch.nn.BatchNorm2d: batch
// statistics in training (and running ones updated), running statistics in eval.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;

  const int64_t num_features;
  const double eps, momentum;
  Tensor weight, bias;               // [C]: ones, zeros; undefined without affine
  Tensor running_mean, running_var;  // [C]: zeros, ones (buffers)
  Tensor num_batches_tracked;        // int64 (): training batches seen, as PyTorch keeps it
};

// Zeroes elements with probability p in training (scaling the rest by 1 / (1 - p)); identity in
// eval. Draws from the default generator (seed it with manual_seed).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  const double p;
};

}  // namespace tinytorch

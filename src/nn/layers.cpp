// Linear and ReLU layers.
#include "tinytorch/layers.hpp"

#include <cmath>

#include "tinytorch/errors.hpp"
#include "tinytorch/functional.hpp"

namespace tinytorch {

Linear::Linear(int64_t input_size, int64_t output_size, bool use_bias)
    : input_size(input_size), output_size(output_size) {
  if (input_size < 1 || output_size < 1) {
    throw ShapeError("Linear: input_size and output_size must be positive, got " + std::to_string(input_size) +
                     " and " + std::to_string(output_size));
  }
  // torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
  const float bound = 1.0f / std::sqrt(static_cast<float>(input_size));
  Generator& gen = default_generator();
  weight = Tensor::empty({output_size, input_size});
  for (int64_t i = 0; i < weight.numel(); ++i) weight.data()[i] = (2.0f * gen.uniform() - 1.0f) * bound;
  register_parameter("weight", &weight);
  if (use_bias) {
    bias = Tensor::empty({output_size});
    for (int64_t i = 0; i < output_size; ++i) bias.data()[i] = (2.0f * gen.uniform() - 1.0f) * bound;
  }
  register_parameter("bias", &bias);
}

Tensor Linear::forward(const Tensor& input) { return linear(input, weight, bias); }

std::string Linear::extra_repr() const {
  return "input_size=" + std::to_string(input_size) + ", output_size=" + std::to_string(output_size) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

Tensor ReLU::forward(const Tensor& input) { return relu(input); }

}  // namespace tinytorch

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
  float* w = weight.data_to_write();
  for (int64_t i = 0; i < weight.numel(); ++i) w[i] = (2.0f * gen.uniform() - 1.0f) * bound;
  register_parameter("weight", &weight);
  if (use_bias) {
    bias = Tensor::empty({output_size});
    float* b = bias.data_to_write();
    for (int64_t i = 0; i < output_size; ++i) b[i] = (2.0f * gen.uniform() - 1.0f) * bound;
  }
  register_parameter("bias", &bias);
}

Tensor Linear::forward(const Tensor& input) {
  const Tensor w = parameter_snapshot(weight), b = parameter_snapshot(bias);  // see Conv2D::forward
  return linear(input, w, b);
}

std::string Linear::extra_repr() const {
  return "input_size=" + std::to_string(input_size) + ", output_size=" + std::to_string(output_size) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

Tensor ReLU::forward(const Tensor& input) { return relu(input); }

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine)
    : num_features(num_features), eps(eps), momentum(momentum) {
  if (num_features < 1)
    throw ShapeError("BatchNorm2d: num_features must be positive, got " + std::to_string(num_features));
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) {
    throw ShapeError("BatchNorm2d: expected eps > 0 and momentum in [0, 1]");
  }
  if (affine) {
    weight = Tensor::ones({num_features});
    bias = Tensor::zeros({num_features});
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  running_mean = Tensor::zeros({num_features});
  running_var = Tensor::ones({num_features});
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  num_batches_tracked = Tensor::zeros({}, DType::Int64);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm2d::forward(const Tensor& input) {
  if (input.dim() >= 2 && input.size(1) != num_features) {
    throw ShapeError("BatchNorm2d: expected " + std::to_string(num_features) + " channels, got input shape " +
                     shape_to_string(input.shape()));
  }
  Tensor out = batch_norm(input, running_mean, running_var, weight, bias, is_training(), momentum, eps);
  if (is_training()) ++*num_batches_tracked.ptr_to_write<int64_t>();
  return out;
}

std::string BatchNorm2d::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + std::to_string(eps) + ", momentum=" + std::to_string(momentum) +
         ", affine=" + (weight.defined() ? "True" : "False");
}

Dropout::Dropout(double p) : p(p) {
  if (!(p >= 0.0 && p <= 1.0))
    throw ShapeError("Dropout: expected a probability p in [0, 1], got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training()); }

std::string Dropout::extra_repr() const { return "p=" + std::to_string(p); }

}  // namespace tinytorch

// What a convolution's output store also does, when the graph runtime fuses the nodes after it
// (src/onnx/optimize.cpp): add a residual tensor, then apply an activation, in one pass over the
// output. Pure functions on raw pointers; the reference (activation_reference) computes the
// same in double and is what the fast loop is tested against.
#pragma once

#include <cstdint>
#include <string>

namespace tinytorch::kernels {

enum class Activation : uint8_t {
  None,
  Relu,         // max(x, 0)
  Clip,         // min(max(x, a), b)
  LeakyRelu,    // x >= 0 ? x : a * x
  HardSigmoid,  // min(max(a * x + b, 0), 1)
  Sigmoid,      // 1 / (1 + exp(-x))
  HardSwish,    // x * HardSigmoid(x) with slope a and offset b (ONNX HardSwish: a = 1/6, b = 1/2)
  Swish,        // x * Sigmoid(x) (SiLU)
};

struct Epilogue {
  Activation activation = Activation::None;
  float a = 0.0f, b = 0.0f;
};

std::string to_string(const Epilogue& e);  // "relu", "clip(0, 6)", "swish", ...

// out[i] = activation(out[i] + residual[i]) for i in [0, n); residual may be nullptr. NaN stays
// NaN. Sigmoid and Swish use a polynomial exp within 2 ulp of the true one.
void apply_epilogue(float* out, const float* residual, int64_t n, const Epilogue& e);

// A convolution's fused output stage: out = activation(out + residual), residual laid out as the
// output (or nullptr). Each convolution algorithm applies it to the outputs a work item has just
// finished (after the bias), while they are still in that thread's cache.
struct OutputStage {
  Epilogue epilogue;
  const float* residual = nullptr;

  bool empty() const { return epilogue.activation == Activation::None && residual == nullptr; }
  // Outputs [offset, offset + n) of out (and of the residual).
  void apply(float* out, int64_t offset, int64_t n) const {
    if (!empty()) apply_epilogue(out + offset, residual ? residual + offset : nullptr, n, epilogue);
  }
};

// The reference for one value, in double.
double activation_reference(double x, const Epilogue& e);

// The eager activation ops (src/ops/activations.cpp) over n floats, in PyTorch's formulas and at
// its boundaries: hardswish x * min(max(x + 3, 0), 6) / 6, hardsigmoid min(max(x + 3, 0), 6) / 6,
// silu x * sigmoid(x), sigmoid (the polynomial exp above). Backward: dx from dy and the input x.
// NaN stays NaN. Each a branch-free loop the compiler vectorizes (this file's flags).
enum class Pointwise : uint8_t { HardSwish, HardSigmoid, SiLU, Sigmoid };
void pointwise_forward(Pointwise f, float* y, const float* x, int64_t n);
void pointwise_backward(Pointwise f, float* dx, const float* dy, const float* x, int64_t n);
// The same for one value, in double: the tests' reference.
double pointwise_reference(Pointwise f, double x);
double pointwise_derivative_reference(Pointwise f, double x);

}  // namespace tinytorch::kernels

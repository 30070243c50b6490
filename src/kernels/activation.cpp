// The fused epilogue: see activation.hpp. Each activation is a branch-free loop the compiler
// vectorizes (the library is built for x86-64-v3); exp is a polynomial (simd/exp_poly.hpp) for the
// same reason, since a call to expf would keep the loop scalar. Built with -fno-trapping-math
// (CMakeLists.txt): otherwise GCC will not turn the selects of the sigmoid into blends, as they
// guard arithmetic that could raise floating-point flags, and the loops stay scalar (measured:
// Swish over 1.2 M values 6 ms, vectorized well under 1).
#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/simd/exp_poly.hpp"

namespace tinytorch::kernels {
namespace {

template <class F>
void each(float* out, const float* residual, int64_t n, F f) {
  if (residual) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(out[i] + residual[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(out[i]);
  }
}

template <Activation A>
void each_smooth(float* out, const float* residual, int64_t n, float a, float b) {
  each(out, residual, n, [a, b](float x) { return smooth_activation_of<A, float, int32_t>(x, a, b); });
}

}  // namespace

std::string to_string(const Epilogue& e) {
  auto num = [](float v) {
    std::string s = std::to_string(v);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  switch (e.activation) {
    case Activation::None:
      return "none";
    case Activation::Relu:
      return "relu";
    case Activation::Clip:
      return "clip(" + num(e.a) + ", " + num(e.b) + ")";
    case Activation::LeakyRelu:
      return "leaky_relu(" + num(e.a) + ")";
    case Activation::HardSigmoid:
      return "hard_sigmoid";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::HardSwish:
      return "hard_swish";
    case Activation::Swish:
      return "swish";
  }
  return "?";
}

void apply_epilogue(float* out, const float* residual, int64_t n, const Epilogue& e) {
  const float a = e.a, b = e.b;
  switch (e.activation) {
    case Activation::None:
      if (residual) each(out, residual, n, [](float x) { return x; });
      return;
    case Activation::Relu:
      return each(out, residual, n, [](float x) { return x < 0.0f ? 0.0f : x; });
    case Activation::Clip:
      return each(out, residual, n, [a, b](float x) { return x < a ? a : (x > b ? b : x); });
    case Activation::LeakyRelu:
      return each_smooth<Activation::LeakyRelu>(out, residual, n, a, b);
    case Activation::HardSigmoid:
      return each_smooth<Activation::HardSigmoid>(out, residual, n, a, b);
    case Activation::Sigmoid:
      return each_smooth<Activation::Sigmoid>(out, residual, n, a, b);
    case Activation::HardSwish:
      return each_smooth<Activation::HardSwish>(out, residual, n, a, b);
    case Activation::Swish:
      return each_smooth<Activation::Swish>(out, residual, n, a, b);
  }
}

double activation_reference(double x, const Epilogue& e) {
  const double a = e.a, b = e.b;
  auto hard = [&](double v) { return std::isnan(v) ? v : std::fmin(std::fmax(a * v + b, 0.0), 1.0); };
  switch (e.activation) {
    case Activation::None:
      return x;
    case Activation::Relu:
      return std::isnan(x) ? x : std::fmax(x, 0.0);
    case Activation::Clip:
      return std::isnan(x) ? x : std::fmin(std::fmax(x, a), b);
    case Activation::LeakyRelu:
      return x < 0 ? a * x : x;
    case Activation::HardSigmoid:
      return hard(x);
    case Activation::Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Activation::HardSwish:
      return x * hard(x);
    case Activation::Swish:
      return x / (1.0 + std::exp(-x));
  }
  return x;
}

namespace {

template <class F>
void map(float* y, const float* x, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
template <class F>
void map2(float* dx, const float* dy, const float* x, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) dx[i] = f(dy[i], x[i]);
}
inline float relu6_of(float v) {  // NaN kept: both compares are false
  const float r = v < 0.0f ? 0.0f : v;
  return r > 6.0f ? 6.0f : r;
}

}  // namespace

void pointwise_forward(Pointwise f, float* y, const float* x, int64_t n) {
  switch (f) {
    case Pointwise::HardSwish:
      return map(y, x, n, [](float v) { return v * relu6_of(v + 3.0f) / 6.0f; });
    case Pointwise::HardSigmoid:
      return map(y, x, n, [](float v) { return relu6_of(v + 3.0f) / 6.0f; });
    case Pointwise::SiLU:
      return map(y, x, n, [](float v) { return swish_poly<float, int32_t>(v); });
    case Pointwise::Sigmoid:
      return map(y, x, n, [](float v) { return sigmoid_poly<float, int32_t>(v); });
  }
}

// PyTorch's derivatives: hardswish's is 0 below -3, x / 3 + 1/2 up to 3 included, 1 above;
// hardsigmoid's 1/6 strictly inside (-3, 3), else 0. A NaN input gives NaN (it fails every compare
// and lands in a branch that multiplies by it, or is checked).
void pointwise_backward(Pointwise f, float* dx, const float* dy, const float* x, int64_t n) {
  switch (f) {
    case Pointwise::HardSwish:
      return map2(dx, dy, x, n, [](float g, float v) {
        const float d = v < -3.0f ? 0.0f : (v <= 3.0f ? v / 3.0f + 0.5f : 1.0f);
        return v != v ? v : g * d;
      });
    case Pointwise::HardSigmoid:
      return map2(dx, dy, x, n, [](float g, float v) {
        const float d = v > -3.0f && v < 3.0f ? 1.0f / 6.0f : 0.0f;
        return v != v ? v : g * d;
      });
    case Pointwise::SiLU:
      return map2(dx, dy, x, n, [](float g, float v) {
        const float s = sigmoid_poly<float, int32_t>(v);
        return g * (s * (1.0f + v * (1.0f - s)));
      });
    case Pointwise::Sigmoid:
      return map2(dx, dy, x, n, [](float g, float v) {
        const float s = sigmoid_poly<float, int32_t>(v);
        return g * (s * (1.0f - s));
      });
  }
}

double pointwise_reference(Pointwise f, double x) {
  const double sig = 1.0 / (1.0 + std::exp(-x)), r6 = std::isnan(x) ? x : std::fmin(std::fmax(x + 3.0, 0.0), 6.0);
  switch (f) {
    case Pointwise::HardSwish:
      return x * r6 / 6.0;
    case Pointwise::HardSigmoid:
      return r6 / 6.0;
    case Pointwise::SiLU:
      return x * sig;
    case Pointwise::Sigmoid:
      break;
  }
  return sig;
}

double pointwise_derivative_reference(Pointwise f, double x) {
  const double sig = 1.0 / (1.0 + std::exp(-x));
  switch (f) {
    case Pointwise::HardSwish:
      return x < -3.0 ? 0.0 : (x <= 3.0 ? x / 3.0 + 0.5 : 1.0);
    case Pointwise::HardSigmoid:
      return x > -3.0 && x < 3.0 ? 1.0 / 6.0 : 0.0;
    case Pointwise::SiLU:
      return sig * (1.0 + x * (1.0 - sig));
    case Pointwise::Sigmoid:
      break;
  }
  return sig * (1.0 - sig);
}

}  // namespace tinytorch::kernels

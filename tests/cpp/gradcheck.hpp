// Central-difference gradient checks shared by the autograd tests: f = sum(op(x) * R) with a
// fixed random R, each input's analytic gradient against (f(x + h) - f(x - h)) / 2h on sampled
// elements, summed in double.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

using Op = std::function<tt::Tensor(const std::vector<tt::Tensor>&)>;

double weighted_sum(const tt::Tensor& y, const tt::Tensor& r) {
  double s = 0.0;
  const tt::Tensor dense = y.contiguous();
  for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(dense.data()[i]) * r.data()[i];
  return s;
}

// Compares each input's analytic gradient with central differences on up to `samples` elements.
void gradcheck(const std::string& what, const Op& op, std::vector<tt::Tensor> inputs, double h, double rtol,
               double atol, int samples = 40) {
  SCOPED_TRACE(what);
  for (auto& x : inputs)
    if (x.defined()) x.set_requires_grad(true);
  const tt::Tensor y = op(inputs);
  tt::Generator gen(77);
  const tt::Tensor r = tt::Tensor::randn(y.shape(), gen);
  y.backward(r);
  std::mt19937 rng(5);
  tt::NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    tt::Tensor& x = inputs[i];
    if (!x.defined()) continue;
    const tt::Tensor grad = x.grad();
    ASSERT_TRUE(grad.defined()) << "input " << i << " got no gradient";
    ASSERT_EQ(grad.shape(), x.shape());
    for (int s = 0; s < std::min<int64_t>(samples, x.numel()); ++s) {
      const int64_t j = x.numel() <= samples ? s : std::uniform_int_distribution<int64_t>(0, x.numel() - 1)(rng);
      const float saved = x.data()[j];
      x.data()[j] = saved + static_cast<float>(h);
      const double plus = weighted_sum(op(inputs), r);
      x.data()[j] = saved - static_cast<float>(h);
      const double minus = weighted_sum(op(inputs), r);
      x.data()[j] = saved;
      const double numeric = (plus - minus) / (2 * h), analytic = grad.data()[j];
      ASSERT_NEAR(analytic, numeric, atol + rtol * std::fabs(numeric)) << "input " << i << ", element " << j;
    }
  }
}

tt::Tensor randn(tt::Shape s, uint64_t seed) {
  tt::Generator g(seed);
  return tt::Tensor::randn(std::move(s), g);
}

}  // namespace

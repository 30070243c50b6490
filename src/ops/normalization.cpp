// batch_norm and dropout, with their gradients.
#include <cmath>

#include "core/autograd_internal.hpp"
#include "core/parallel.hpp"
#include "ops/checks.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// Sum of x[0..n) and of x[i] * y[i]: 16 float partial sums (vectorized), added up in double. A
// fixed order, so the same bits every time.
double row_sum(const float* x, int64_t n) {
  float part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) part[k] += x[i + k];
  double total = 0.0;
  for (int k = 0; k < 16; ++k) total += part[k];
  for (; i < n; ++i) total += x[i];
  return total;
}

double row_dot(const float* x, const float* y, int64_t n) {
  float part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) part[k] += x[i + k] * y[i + k];
  double total = 0.0;
  for (int k = 0; k < 16; ++k) total += part[k];
  for (; i < n; ++i) total += static_cast<double>(x[i]) * y[i];
  return total;
}

// Sum of (x[i] - mu)^2.
double row_sq_dev(const float* x, int64_t n, float mu) {
  float part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) part[k] += (x[i + k] - mu) * (x[i + k] - mu);
  double total = 0.0;
  for (int k = 0; k < 16; ++k) total += part[k];
  for (; i < n; ++i) total += static_cast<double>(x[i] - mu) * (x[i] - mu);
  return total;
}

struct BatchNormBackward : autograd::Node {
  Tensor normalized;           // x-hat [N, C, HW]
  std::vector<float> inv_std;  // per channel
  Tensor weight;               // gamma, or undefined
  bool training = true;
  int64_t N = 0, C = 0, HW = 0;
  const char* name() const override { return "BatchNormBackward"; }
  void release() override { normalized = weight = Tensor(), inv_std = {}; }
  // inputs: {input, weight, bias}
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> grads(3);
    const bool want_x = inputs[0].requires_grad();
    const bool want_w = inputs[1].defined() && inputs[1].requires_grad();
    const bool want_b = inputs[2].defined() && inputs[2].requires_grad();
    Tensor dx = want_x ? Tensor::empty(inputs[0].shape()) : Tensor();
    Tensor dw = want_w ? Tensor::empty({C}) : Tensor(), db = want_b ? Tensor::empty({C}) : Tensor();
    const double M = static_cast<double>(N * HW);
    parallel_for(
        C,
        [&](int64_t c, int) {
          double sum_dy = 0.0, sum_dy_xhat = 0.0;
          for (int64_t n = 0; n < N; ++n) {
            const float* dy = g.data() + (n * C + c) * HW;
            const float* xh = normalized.data() + (n * C + c) * HW;
            sum_dy += row_sum(dy, HW);
            sum_dy_xhat += row_dot(dy, xh, HW);
          }
          if (want_w) dw.data()[c] = static_cast<float>(sum_dy_xhat);
          if (want_b) db.data()[c] = static_cast<float>(sum_dy);
          if (!want_x) return;
          const double gamma = weight.defined() ? weight.data()[c] : 1.0;
          const float k = static_cast<float>(gamma * inv_std[static_cast<size_t>(c)]);
          // training: dx = gamma/sigma (dy - mean(dy) - xhat mean(dy xhat)); eval: gamma/sigma dy
          const float mean_dy = training ? static_cast<float>(sum_dy / M) : 0.0f;
          const float mean_dy_xhat = training ? static_cast<float>(sum_dy_xhat / M) : 0.0f;
          for (int64_t n = 0; n < N; ++n) {
            const float* dy = g.data() + (n * C + c) * HW;
            const float* xh = normalized.data() + (n * C + c) * HW;
            float* out = dx.data() + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; ++i) out[i] = k * (dy[i] - mean_dy - xh[i] * mean_dy_xhat);
          }
        },
        N * C * HW * 4);
    grads[0] = dx, grads[1] = dw, grads[2] = db;
    return grads;
  }
};

struct DropoutBackward : autograd::Node {
  Tensor mask;  // 0 or 1 / (1 - p)
  const char* name() const override { return "DropoutBackward"; }
  void release() override { mask = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, mask)}; }
};

}  // namespace

Tensor batch_norm(const Tensor& input, Tensor& running_mean, Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  if (input.dim() != 2 && input.dim() != 4) {
    throw ShapeError("batch_norm: expected input of shape (N, C, H, W) or (N, C), got " +
                     shape_to_string(input.shape()));
  }
  const int64_t N = input.size(0), C = input.size(1), HW = input.dim() == 4 ? input.size(2) * input.size(3) : 1;
  for (const Tensor* t : std::initializer_list<const Tensor*>{&running_mean, &running_var, &weight, &bias}) {
    if (t->defined() && t->shape() != Shape{C}) {
      throw ShapeError("batch_norm: expected statistics and affine parameters of shape (" + std::to_string(C) +
                       ",), got " + shape_to_string(t->shape()));
    }
  }
  if (training && N * HW < 2) {
    throw ShapeError("batch_norm: expected more than 1 value per channel when training, got input shape " +
                     shape_to_string(input.shape()));
  }
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) {
    throw ShapeError("batch_norm: expected eps > 0 and momentum in [0, 1]");
  }
  Tensor out = Tensor::empty(input.shape()), normalized = Tensor::empty(input.shape());
  std::vector<float> inv_std(static_cast<size_t>(C));
  const double M = static_cast<double>(N * HW);
  parallel_for(
      C,
      [&](int64_t c, int) {
        double mu, var;
        if (training) {
          double s = 0.0, sq = 0.0;
          for (int64_t n = 0; n < N; ++n) s += row_sum(input.data() + (n * C + c) * HW, HW);
          mu = s / M;
          for (int64_t n = 0; n < N; ++n) sq += row_sq_dev(input.data() + (n * C + c) * HW, HW, static_cast<float>(mu));
          var = sq / M;
          if (running_mean.defined()) {
            float& rm = running_mean.data()[c];
            rm = static_cast<float>((1 - momentum) * rm + momentum * mu);
          }
          if (running_var.defined()) {
            float& rv = running_var.data()[c];
            rv = static_cast<float>((1 - momentum) * rv + momentum * sq / (M - 1));
          }
        } else {
          if (!running_mean.defined() || !running_var.defined()) {
            mu = 0.0, var = 1.0;  // no statistics to use: identity normalization
          } else {
            mu = running_mean.data()[c], var = running_var.data()[c];
          }
        }
        const double is = 1.0 / std::sqrt(var + eps);
        inv_std[static_cast<size_t>(c)] = static_cast<float>(is);
        const float gamma = weight.defined() ? weight.data()[c] : 1.0f, beta = bias.defined() ? bias.data()[c] : 0.0f;
        const float muf = static_cast<float>(mu), isf = static_cast<float>(is);
        for (int64_t n = 0; n < N; ++n) {
          const float* x = input.data() + (n * C + c) * HW;
          float* xh = normalized.data() + (n * C + c) * HW;
          float* y = out.data() + (n * C + c) * HW;
          for (int64_t i = 0; i < HW; ++i) {
            xh[i] = (x[i] - muf) * isf;
            y[i] = gamma * xh[i] + beta;
          }
        }
      },
      N * C * HW * 6);
  if (autograd::needs_grad({&input, &weight, &bias})) {
    auto node = std::make_shared<BatchNormBackward>();
    node->normalized = normalized;
    node->inv_std = std::move(inv_std);
    node->weight = weight.defined() ? weight.detach() : Tensor();
    node->training = training;
    node->N = N, node->C = C, node->HW = HW;
    node->inputs = {input, weight, bias};
    attach_grad_fn(out, node);
  }
  return out;
}

Tensor dropout(const Tensor& input, double p, bool training, Generator& gen) {
  if (!(p >= 0.0 && p <= 1.0))
    throw ShapeError("dropout: expected a probability p in [0, 1], got " + std::to_string(p));
  if (!training || p == 0.0) return input;
  Tensor mask = Tensor::empty(input.shape());
  const float keep_scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data()[i] = gen.uniform() < p ? 0.0f : keep_scale;
  Tensor out;
  {
    NoGradGuard no_grad;
    out = mul(input, mask);
  }
  if (autograd::needs_grad({&input})) {
    auto node = std::make_shared<DropoutBackward>();
    node->mask = mask;
    node->inputs = {input};
    attach_grad_fn(out, node);
  }
  return out;
}

}  // namespace tinytorch

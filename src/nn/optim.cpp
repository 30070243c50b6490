// SGD, Adam and AdamW: torch.optim's update rules, elementwise over each parameter, under no-grad.
#include "tinytorch/optim.hpp"

#include <cmath>

#include "core/parallel.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch {
namespace {

void check_lr(double lr) {
  if (!(lr > 0.0) || !std::isfinite(lr))
    throw ArgumentError("optimizer: expected a positive learning rate, got " + std::to_string(lr));
}

std::vector<Tensor> zeros_like(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  out.reserve(params.size());
  for (const Tensor& p : params) out.push_back(Tensor::zeros(p.shape()));
  return out;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  check_lr(lr);
  for (const Tensor& p : params_) {
    if (!p.defined()) throw std::invalid_argument("optimizer: a parameter is undefined");
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.set_grad(Tensor());
}

void Optimizer::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay, bool nesterov)
    : Optimizer(std::move(params), lr), momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {
  if (momentum < 0 || weight_decay < 0) throw ShapeError("SGD: momentum and weight_decay must be >= 0");
  if (nesterov && momentum == 0) throw ShapeError("SGD: Nesterov momentum needs momentum > 0");
  velocity_ = zeros_like(params_);
}

void SGD::step() {
  NoGradGuard no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    float* w = params_[i].data_to_write();
    float* v = velocity_[i].data_to_write();
    const float* gr = g.data();
    parallel_chunks(g.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        float d = gr[j] + static_cast<float>(weight_decay_) * w[j];
        if (momentum_ != 0) {
          // torch: buf = g on the first step, then buf = momentum * buf + g
          v[j] = steps_ == 1 ? d : static_cast<float>(momentum_) * v[j] + d;
          d = nesterov_ ? d + static_cast<float>(momentum_) * v[j] : v[j];
        }
        w[j] -= static_cast<float>(lr_) * d;
      }
    });
  }
}

std::vector<std::pair<std::string, Tensor>> SGD::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < velocity_.size(); ++i) out.emplace_back(std::to_string(i) + ".momentum", velocity_[i]);
  return out;
}

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay,
           bool decoupled)
    : Optimizer(std::move(params), lr),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw ShapeError("Adam: betas must be in [0, 1)");
  if (!(eps > 0) || weight_decay < 0) throw ShapeError("Adam: eps must be > 0 and weight_decay >= 0");
  m_ = zeros_like(params_);
  v_ = zeros_like(params_);
}

void Adam::step() {
  NoGradGuard no_grad;
  ++steps_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  const float step_size = static_cast<float>(lr_ / bc1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    float* w = params_[i].data_to_write();
    float* m = m_[i].data_to_write();
    float* v = v_[i].data_to_write();
    const float* gr = g.data();
    parallel_chunks(g.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        float d = gr[j];
        if (decoupled_) {
          w[j] *= static_cast<float>(1.0 - lr_ * weight_decay_);
        } else {
          d += static_cast<float>(weight_decay_) * w[j];
        }
        m[j] = b1 * m[j] + (1.0f - b1) * d;
        v[j] = b2 * v[j] + (1.0f - b2) * d * d;
        const float denom = std::sqrt(v[j]) / sqrt_bc2 + static_cast<float>(eps_);
        w[j] -= step_size * m[j] / denom;
      }
    });
  }
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < m_.size(); ++i) {
    out.emplace_back(std::to_string(i) + ".exp_avg", m_[i]);
    out.emplace_back(std::to_string(i) + ".exp_avg_sq", v_[i]);
  }
  return out;
}

double step_lr(double base_lr, int64_t epoch, int64_t step_size, double gamma) {
  if (step_size < 1) throw ShapeError("step_lr: step_size must be positive");
  const int64_t steps_taken = epoch / step_size;  // whole steps: floor, as torch's StepLR
  return base_lr * std::pow(gamma, static_cast<double>(steps_taken));
}

double cosine_lr(double base_lr, int64_t epoch, int64_t epochs, double min_lr) {
  if (epochs < 1) throw ShapeError("cosine_lr: epochs must be positive");
  return min_lr +
         (base_lr - min_lr) * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs))) / 2.0;
}

}  // namespace tinytorch

// Optimizers and learning-rate schedules, with torch.optim's update rules.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  // Applies one update from the parameters' .grad (parameters without a gradient are skipped).
  virtual void step() = 0;
  void zero_grad();  // clears every parameter's gradient
  double lr() const { return lr_; }
  void set_lr(double lr);
  int64_t steps() const { return steps_; }
  // The per-parameter state (momentum, moments), named "<param index>.<slot>", for checkpoints.
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  void set_steps(int64_t steps) { steps_ = steps; }
  virtual std::string type_name() const = 0;

 protected:
  std::vector<Tensor> params_;
  double lr_;
  int64_t steps_ = 0;
};

// SGD with momentum (dampening 0), optional Nesterov and L2 weight decay, as torch.optim.SGD.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  std::string type_name() const override { return "sgd"; }

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
  std::vector<Tensor> velocity_;
};

// Adam (L2 weight decay added to the gradient) or, with decoupled = true, AdamW (weight decay
// applied to the weights directly), as torch.optim.Adam / AdamW.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0.0, bool decoupled = false);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  std::string type_name() const override { return decoupled_ ? "adamw" : "adam"; }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  std::vector<Tensor> m_, v_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 1e-2)
      : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}
};

// Learning rate at `epoch` (0-based) of `epochs`: StepLR multiplies by gamma every step_size
// epochs; cosine anneals from base_lr to min_lr over the run, as CosineAnnealingLR.
double step_lr(double base_lr, int64_t epoch, int64_t step_size, double gamma);
double cosine_lr(double base_lr, int64_t epoch, int64_t epochs, double min_lr = 0.0);

}  // namespace tinytorch

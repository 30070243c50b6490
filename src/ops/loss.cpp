// log_softmax and the fused cross-entropy loss, with their gradients. The row math is in
// kernels/loss.cpp, beside its references; here: checks and autograd.
#include "kernels/loss.hpp"

#include <cmath>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/trace.hpp"
#include "ops/checks.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// Rows of a [N, K] (or [K]) tensor: (rows, K).
std::pair<int64_t, int64_t> rows_of(const char* op, const Tensor& t) {
  if (t.dim() != 1 && t.dim() != 2) {
    throw ShapeError(std::string(op) + ": expected logits of shape (batch, classes) or (classes,), got " +
                     shape_to_string(t.shape()));
  }
  const int64_t K = t.size(-1);
  if (K < 1)
    throw ShapeError(std::string(op) + ": expected at least one class, got shape " + shape_to_string(t.shape()));
  return {t.dim() == 2 ? t.size(0) : 1, K};
}

struct LogSoftmaxBackward : autograd::Node {
  Tensor output;  // log-probabilities
  const char* name() const override { return "LogSoftmaxBackward"; }
  void release() override { output = Tensor(); }
  // dx = g - softmax * sum(g), per row
  std::vector<Tensor> backward(const Tensor& g) override {
    const auto [N, K] = rows_of("log_softmax", output);
    Tensor dx = Tensor::empty(output.shape());
    float* d = dx.data_to_write();
    for (int64_t n = 0; n < N; ++n) {
      const float* gr = g.data() + n * K;
      const float* y = std::as_const(output).data() + n * K;
      double total = 0.0;
      for (int64_t k = 0; k < K; ++k) total += gr[k];
      for (int64_t k = 0; k < K; ++k) d[n * K + k] = static_cast<float>(gr[k] - std::exp(y[k]) * total);
    }
    return {dx};
  }
};

struct CrossEntropyBackward : autograd::Node {
  Tensor probabilities;  // softmax of the logits, [N, K]
  std::vector<int64_t> targets;
  const char* name() const override { return "CrossEntropyBackward"; }
  void release() override { probabilities = Tensor(), targets = {}; }
  // d loss / d logits = (softmax - one_hot(target)) / N, times the incoming gradient
  std::vector<Tensor> backward(const Tensor& g) override {
    const auto [N, K] = rows_of("cross_entropy", probabilities);
    const float factor = g.item() / static_cast<float>(N);
    Tensor dx = Tensor::empty(probabilities.shape());
    const float* p = std::as_const(probabilities).data();
    float* d = dx.data_to_write();
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < K; ++k) {
        d[n * K + k] = (p[n * K + k] - (k == targets[static_cast<size_t>(n)] ? 1.0f : 0.0f)) * factor;
      }
    }
    return {dx};
  }
};

}  // namespace

Tensor log_softmax(const Tensor& logits_arg) {
  trace::Op op;
  const Tensor logits = ops::dense_float(logits_arg);
  const auto [N, K] = rows_of("log_softmax", logits);
  Tensor out = Tensor::empty(logits.shape());
  float* y = out.data_to_write();
  for (int64_t n = 0; n < N; ++n) kernels::log_softmax_row(y + n * K, logits.data() + n * K, K);
  if (autograd::needs_grad({&logits})) {
    auto node = std::make_shared<LogSoftmaxBackward>();
    node->output = out.detach();
    node->inputs = {logits};
    attach_grad_fn(out, node);
  }
  if (op.recording()) op.record("LogSoftmax", {logits_arg}, out, {{"axis", int64_t{-1}}});
  return out;
}

Tensor cross_entropy(const Tensor& logits_arg, const std::vector<int64_t>& targets) {
  const Tensor logits = ops::dense_float(logits_arg);
  const auto [N, K] = rows_of("cross_entropy", logits);
  if (static_cast<int64_t>(targets.size()) != N) {
    throw ShapeError("cross_entropy: expected " + std::to_string(N) + " targets (one per row of the logits), got " +
                     std::to_string(targets.size()));
  }
  for (size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] < 0 || targets[n] >= K) {
      throw ShapeError("cross_entropy: target " + std::to_string(targets[n]) + " at position " + std::to_string(n) +
                       " is not a class index in [0, " + std::to_string(K) + ")");
    }
  }
  Tensor probabilities = Tensor::empty({N, K});
  float* p = probabilities.data_to_write();
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    total += kernels::softmax_cross_entropy_row(p + n * K, logits.data() + n * K, K, targets[static_cast<size_t>(n)]);
  }
  Tensor loss = Tensor::full({}, static_cast<float>(total / static_cast<double>(N)));
  if (autograd::needs_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->probabilities = probabilities.reshape(logits.shape());
    node->targets = targets;
    node->inputs = {logits};
    attach_grad_fn(loss, node);
  }
  return loss;
}

}  // namespace tinytorch

// batch_norm and dropout, with their gradients. Batch norm's per-channel math is in
// kernels/batch_norm.cpp (each kernel beside its reference); here: checks, threads, autograd.
#include <cmath>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/data_parallel.hpp"
#include "core/parallel.hpp"
#include "core/trace.hpp"
#include "kernels/batch_norm.hpp"
#include "kernels/dropout.hpp"
#include "ops/checks.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// The loops' work estimates count the floats they stream (kStreamedFloatWork each), not their few
// FLOPs: by FLOPs a training step's batch norms of up to 2M values (8 x 32 x 48 x 48 is 590K) ran
// on one thread while the other waited.
struct BatchNormBackward : autograd::Node {
  Tensor normalized;           // x-hat [N, C, HW]
  std::vector<float> inv_std;  // per channel
  Tensor weight;               // gamma, or undefined
  bool training = true;
  data_parallel::SumAcrossProcesses sync = nullptr;  // synchronized: sums the statistics over the processes
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
    const kernels::BatchNormGeometry geometry{N, C, HW};
    // Per channel: sum(dy), sum(dy x_hat), and this process's count; then (synchronized batch
    // norm) the sums over every process, whose mean the input gradient subtracts. d gamma and
    // d beta stay this process's own: the gradient reduction adds them up.
    std::vector<double> sums(static_cast<size_t>(2 * C + 1));
    sums[static_cast<size_t>(2 * C)] = static_cast<double>(N * HW);
    float* dwp = want_w ? dw.data_to_write() : nullptr;
    float* dbp = want_b ? db.data_to_write() : nullptr;
    parallel_for(
        C,
        [&](int64_t c, int) {
          const kernels::ChannelGradientSums s =
              kernels::batch_norm_gradient_sums(g.data(), std::as_const(normalized).data(), c, geometry);
          sums[static_cast<size_t>(2 * c)] = s.dy, sums[static_cast<size_t>(2 * c + 1)] = s.dy_xhat;
          if (want_w) dwp[c] = static_cast<float>(s.dy_xhat);
          if (want_b) dbp[c] = static_cast<float>(s.dy);
        },
        N * C * HW * 2 * kStreamedFloatWork);  // dy and x_hat read
    if (!want_x) return {Tensor(), dw, db};
    if (training && sync) sync(sums.data(), 2 * C + 1);
    const double M = sums[static_cast<size_t>(2 * C)];
    float* dxp = dx.data_to_write();
    parallel_for(
        C,
        [&](int64_t c, int) {
          const double gamma = weight.defined() ? std::as_const(weight).data()[c] : 1.0;
          const float k = static_cast<float>(gamma * inv_std[static_cast<size_t>(c)]);
          // training: dx = gamma/sigma (dy - mean(dy) - xhat mean(dy xhat)); eval: gamma/sigma dy
          const float mean_dy = training ? static_cast<float>(sums[static_cast<size_t>(2 * c)] / M) : 0.0f;
          const float mean_dy_xhat = training ? static_cast<float>(sums[static_cast<size_t>(2 * c + 1)] / M) : 0.0f;
          kernels::batch_norm_input_gradient(dxp, g.data(), std::as_const(normalized).data(), c, geometry, k, mean_dy,
                                             mean_dy_xhat);
        },
        N * C * HW * 3 * kStreamedFloatWork);  // dy and x_hat read, dx written
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

Tensor batch_norm(const Tensor& input_arg, Tensor& running_mean, Tensor& running_var, const Tensor& weight_arg,
                  const Tensor& bias_arg, bool training, double momentum, double eps) {
  trace::Op op;
  if (op.recording() && training) {
    op.refuse("batch_norm in training mode", "it normalizes with the batch's statistics; call model.eval() first");
  }
  const Tensor input = ops::dense_float(input_arg);
  const Tensor weight = ops::optional_dense_float(weight_arg);
  const Tensor bias = ops::optional_dense_float(bias_arg);
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
  // x_hat is kept only for the backward pass: inference writes the output alone.
  const bool grad = autograd::needs_grad({&input, &weight, &bias});
  Tensor out = Tensor::empty(input.shape()), normalized = grad ? Tensor::empty(input.shape()) : Tensor();
  std::vector<float> inv_std(static_cast<size_t>(C));
  double M = static_cast<double>(N * HW);
  const kernels::BatchNormGeometry geometry{N, C, HW};
  // Synchronized batch norm (data parallelism): the batch's mean and variance over every
  // process's rows, from the per-process sums of x and x^2 per channel, in double.
  const data_parallel::SumAcrossProcesses sync = training ? data_parallel::batch_norm_sum() : nullptr;
  std::vector<double> moments;
  if (sync) {
    moments.resize(static_cast<size_t>(2 * C + 1));
    parallel_for(
        C,
        [&](int64_t c, int) {
          const kernels::ChannelMoments m = kernels::batch_norm_moments(input.data(), c, geometry);
          moments[static_cast<size_t>(2 * c)] = m.mean * M;
          moments[static_cast<size_t>(2 * c + 1)] = (m.var + m.mean * m.mean) * M;
        },
        N * C * HW * 2 * kStreamedFloatWork);  // x read twice (mean, deviations)
    moments[static_cast<size_t>(2 * C)] = M;
    sync(moments.data(), 2 * C + 1);
    M = moments[static_cast<size_t>(2 * C)];
    for (int64_t c = 0; c < C; ++c) {
      const double mean = moments[static_cast<size_t>(2 * c)] / M;
      moments[static_cast<size_t>(2 * c)] = mean;
      moments[static_cast<size_t>(2 * c + 1)] =
          std::max(moments[static_cast<size_t>(2 * c + 1)] / M - mean * mean, 0.0);
    }
  }
  float* const mean_out = training && running_mean.defined() ? running_mean.data_to_write() : nullptr;
  float* const var_out = training && running_var.defined() ? running_var.data_to_write() : nullptr;
  const float* const mean_in = running_mean.defined() ? std::as_const(running_mean).data() : nullptr;
  const float* const var_in = running_var.defined() ? std::as_const(running_var).data() : nullptr;
  float* const y = out.data_to_write();
  float* const x_hat = grad ? normalized.data_to_write() : nullptr;
  parallel_for(
      C,
      [&](int64_t c, int) {
        double mu = 0.0, var = 1.0;  // evaluation without statistics: identity normalization
        if (training) {
          const kernels::ChannelMoments m = sync ? kernels::ChannelMoments{moments[static_cast<size_t>(2 * c)],
                                                                           moments[static_cast<size_t>(2 * c + 1)]}
                                                 : kernels::batch_norm_moments(input.data(), c, geometry);
          mu = m.mean, var = m.var;
          if (mean_out) {
            float& rm = mean_out[c];
            rm = static_cast<float>((1 - momentum) * rm + momentum * mu);
          }
          if (var_out) {  // the running variance is unbiased, as PyTorch's
            float& rv = var_out[c];
            rv = static_cast<float>((1 - momentum) * rv + momentum * var * M / (M - 1));
          }
        } else if (mean_in && var_in) {
          mu = mean_in[c], var = var_in[c];
        }
        const double is = 1.0 / std::sqrt(var + eps);
        inv_std[static_cast<size_t>(c)] = static_cast<float>(is);
        const float gamma = weight.defined() ? std::as_const(weight).data()[c] : 1.0f;
        const float beta = bias.defined() ? std::as_const(bias).data()[c] : 0.0f;
        kernels::batch_norm_normalize(y, x_hat, input.data(), c, geometry, static_cast<float>(mu),
                                      static_cast<float>(is), gamma, beta);
      },
      N * C * HW * (grad ? 3 : 2) * kStreamedFloatWork);  // x read, y (and x_hat) written
  if (grad) {
    auto node = std::make_shared<BatchNormBackward>();
    node->normalized = normalized;
    node->inv_std = std::move(inv_std);
    node->weight = weight.defined() ? weight.detach() : Tensor();
    node->training = training;
    node->sync = sync;
    node->N = N, node->C = C, node->HW = HW;
    node->inputs = {input, weight, bias};
    attach_grad_fn(out, node);
  }
  if (op.recording()) {
    // ONNX's BatchNormalization takes all four: a missing one is the identity it stands for.
    const bool stats = running_mean.defined() && running_var.defined();
    auto or_fill = [&](const Tensor& t, float value) { return t.defined() ? t : Tensor::full({C}, value); };
    op.record("BatchNormalization",
              {input_arg, or_fill(weight_arg, 1.0f), or_fill(bias_arg, 0.0f), stats ? running_mean : Tensor::zeros({C}),
               stats ? running_var : Tensor::ones({C})},
              out, {{"epsilon", eps}});
  }
  return out;
}

Tensor dropout(const Tensor& input_arg, double p, bool training, Generator& gen) {
  const Tensor input = ops::dense_float(input_arg);
  if (!(p >= 0.0 && p <= 1.0))
    throw ShapeError("dropout: expected a probability p in [0, 1], got " + std::to_string(p));
  if (!training || p == 0.0) return input_arg;  // the same tensor: nothing for a trace to record
  trace::Op op;
  if (op.recording()) op.refuse("dropout in training mode", "it draws random masks; call model.eval() first");
  Tensor mask = Tensor::empty(input.shape());
  const float keep_scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  float* m = mask.data_to_write();
  // One draw per element, in order; in a shard of a data-parallel batch, the draws of the rows
  // before and after it are made and dropped, so every process's generator stays in step.
  const data_parallel::BatchShard& shard = data_parallel::batch_shard();
  const int64_t per_row = input.dim() > 0 && input.size(0) > 0 ? mask.numel() / input.size(0) : 0;
  for (int64_t i = 0; i < shard.rows_before * per_row; ++i) gen.next_u64();
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform();
  for (int64_t i = 0; i < shard.rows_after * per_row; ++i) gen.next_u64();
  kernels::dropout_mask(m, mask.numel(), p, keep_scale);
  Tensor out = Tensor::empty(input.shape());
  kernels::dropout_apply(out.data_to_write(), std::as_const(input).data(), m, out.numel());
  if (autograd::needs_grad({&input})) {
    auto node = std::make_shared<DropoutBackward>();
    node->mask = mask;
    node->inputs = {input};
    attach_grad_fn(out, node);
  }
  return out;
}

}  // namespace tinytorch

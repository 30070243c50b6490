// linear, relu and flatten: the ops of the non-spatial layers. linear runs OpenBLAS sgemm; its
// reference (kernels/reference/linear_reference.cpp) is the tests' oracle.
#include "kernels/linear.hpp"

#include <algorithm>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/parallel.hpp"
#include "core/trace.hpp"
#include "kernels/blas.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "ops/checks.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// y = x W^T + b:  dx = dy W,  dW = dy^T x,  db = sum over rows of dy.
struct LinearBackward : autograd::Node {
  Tensor input2d, weight;  // [N, IN], [OUT, IN]
  Shape input_shape;
  bool has_bias = false;
  const char* name() const override { return "LinearBackward"; }
  void release() override { input2d = weight = Tensor(); }
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    const int64_t N = input2d.size(0), IN = input2d.size(1), OUT = weight.size(0);
    const Tensor dy = grad_output.reshape({N, OUT});
    std::vector<Tensor> grads(3);
    if (inputs[0].requires_grad()) {
      Tensor dx = Tensor::empty({N, IN});  // [N, OUT] x [OUT, IN]
      kernels::sgemm(false, false, N, IN, OUT, 1.0f, std::as_const(dy).data(), OUT, std::as_const(weight).data(), IN,
                     0.0f, dx.data_to_write(), IN);
      grads[0] = dx.reshape(input_shape);
    }
    if (inputs[1].requires_grad()) {
      grads[1] = Tensor::empty({OUT, IN});  // [OUT, N] (dy^T) x [N, IN]
      kernels::sgemm(true, false, OUT, IN, N, 1.0f, std::as_const(dy).data(), OUT, std::as_const(input2d).data(), IN,
                     0.0f, grads[1].data_to_write(), IN);
    }
    if (has_bias && inputs[2].requires_grad()) {
      grads[2] = Tensor::zeros({OUT});
      float* db = grads[2].data_to_write();
      const float* d = dy.data();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < OUT; ++o) db[o] += d[n * OUT + o];
    }
    return grads;
  }
};

struct ReluBackward : autograd::Node {
  Tensor output;
  const char* name() const override { return "ReluBackward"; }
  void release() override { output = Tensor(); }
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    Tensor dx = Tensor::empty(output.shape());
    const float* y = std::as_const(output).data();
    const float* dy = grad_output.data();
    float* out = dx.data_to_write();
    parallel_chunks(dx.numel(), [out, y, dy](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {  // both loads made: a select the compiler vectorizes, no branch
        const float v = y[i], g = dy[i];
        out[i] = v > 0.0f ? g : 0.0f;
      }
    });
    return {dx};
  }
};

Tensor linear_value(const Tensor& input_arg, const Tensor& weight_arg, const Tensor& bias_arg) {
  const Tensor input = ops::dense_float(input_arg);
  const Tensor weight = ops::dense_float(weight_arg);
  const Tensor bias = ops::optional_dense_float(bias_arg);
  // weight: [OUT, IN]
  if (weight.dim() != 2) {
    throw ShapeError("linear: expected a 2D weight (output_size, input_size), got shape " +
                     shape_to_string(weight.shape()));
  }
  const int64_t OUT = weight.size(0), IN = weight.size(1);
  if (input.dim() != 1 && input.dim() != 2) {
    throw ShapeError("Linear: expected input of shape (" + std::to_string(IN) + ",) or (batch, " + std::to_string(IN) +
                     "), got shape " + shape_to_string(input.shape()));
  }
  if (input.size(-1) != IN) {
    throw ShapeError("Linear: expected " + std::to_string(IN) + " input features, got " +
                     std::to_string(input.size(-1)) + " (input shape " + shape_to_string(input.shape()) + ")");
  }
  if (bias.defined() && bias.shape() != Shape{OUT}) {
    throw ShapeError("linear: expected bias of shape (" + std::to_string(OUT) + ",), got " +
                     shape_to_string(bias.shape()));
  }
  const int64_t N = input.dim() == 2 ? input.size(0) : 1;
  Shape out_shape = input.shape();
  out_shape.back() = OUT;  // [N, IN] -> [N, OUT], or [IN] -> [OUT]
  Tensor y = Tensor::empty(out_shape);
  if (y.numel() == 0) return y;
  // Per block of 64 output features: [N, IN] x [64, IN]^T -> the [N, 64] columns of [N, OUT], by
  // dot products of the rows up to kDotRowsBatch rows (the weight read once as it lies, docs/
  // PERFORMANCE.md "Dot products of a few rows"), by sgemm from there.
  // Blocks are fixed by the shape, so the result does not depend on the thread count.
  constexpr int64_t kBlock = 64;
  const float* x = input.data();
  const float* w = weight.data();
  const float* b = bias.defined() ? bias.data() : nullptr;
  float* out = y.data_to_write();
  parallel_for((OUT + kBlock - 1) / kBlock,
               [&](int64_t blk, int) {
                 const int64_t o0 = blk * kBlock, cols = std::min(kBlock, OUT - o0);
                 if (N <= kernels::kDotRowsBatch) {
                   kernels::dot_rows(cols, IN, w + o0 * IN, IN, x, IN, N, out + o0, OUT);
                 } else {
                   kernels::sgemm(false, true, N, cols, IN, 1.0f, x, IN, w + o0 * IN, IN, 0.0f, out + o0, OUT);
                 }
                 if (b) {
                   for (int64_t n = 0; n < N; ++n)
                     for (int64_t j = 0; j < cols; ++j) out[n * OUT + o0 + j] += b[o0 + j];
                 }
               },
               2 * N * IN * OUT + kStreamedFloatWork * IN * OUT);  // one row: bound by reading W
  if (autograd::needs_grad({&input, &weight, &bias})) {
    auto node = std::make_shared<LinearBackward>();
    node->input2d = input.detach().reshape({N, IN});
    node->weight = weight.detach();
    node->input_shape = input.shape();
    node->has_bias = bias.defined();
    node->inputs = {input, weight, bias};
    attach_grad_fn(y, node);
  }
  return y;
}

}  // namespace

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  trace::Op op;
  Tensor out = linear_value(input, weight, bias);
  if (op.recording()) op.record("Gemm", {input, weight, bias}, out, {{"transB", int64_t{1}}});
  return out;
}

Tensor relu(const Tensor& input_arg) {
  trace::Op op;
  const Tensor input = ops::dense_float(input_arg);
  Tensor y = Tensor::empty(input.shape());
  const float* x = input.data();
  float* out = y.data_to_write();
  // x < 0 is false for NaN, so NaN passes through as in PyTorch.
  parallel_chunks(input.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = x[i] < 0.0f ? 0.0f : x[i];
  });
  if (autograd::needs_grad({&input})) {
    auto node = std::make_shared<ReluBackward>();
    node->output = y.detach();
    node->inputs = {input};
    attach_grad_fn(y, node);
  }
  if (op.recording()) op.record("Relu", {input_arg}, y);
  return y;
}

Tensor flatten(const Tensor& input, int64_t start_dim, int64_t end_dim) {
  const int64_t n = std::max<int64_t>(input.dim(), 1);  // a 0-D tensor flattens to (1,)
  const auto wrap = [&](int64_t d, const char* name) {
    if (d < -n || d >= n) {
      throw ShapeError(std::string("flatten: ") + name + "=" + std::to_string(d) + " is out of range for a " +
                       std::to_string(input.dim()) + "D tensor");
    }
    return d < 0 ? d + n : d;
  };
  const int64_t start = wrap(start_dim, "start_dim"), end = wrap(end_dim, "end_dim");
  if (start > end) {
    throw ShapeError("flatten: start_dim=" + std::to_string(start_dim) +
                     " comes after end_dim=" + std::to_string(end_dim));
  }
  if (input.dim() == 0) return input.reshape({1});
  const Shape& s = input.shape();
  Shape out(s.begin(), s.begin() + start);  // [d0 .. d(start-1), d(start) * .. * d(end), ...]
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= s[static_cast<size_t>(d)];
  out.push_back(merged);
  out.insert(out.end(), s.begin() + end + 1, s.end());
  return input.reshape(out);
}

}  // namespace tinytorch

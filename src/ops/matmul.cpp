// matmul with numpy.matmul's rules, and its gradient. float32 runs one OpenBLAS sgemm per
// (broadcast) batch item; int64 runs plain loops (labels and indices only, so rarely). The
// reference is numpy/PyTorch in tests/python/test_tensor_torch.py.
#include "core/autograd_internal.hpp"
#include "core/trace.hpp"
#include "kernels/blas.hpp"
#include "ops/math_internal.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// out[b] = x[b] @ y[b] for contiguous x [B, M, K], y [B, K, N], out [B, M, N].
void batched_product(const Tensor& x, const Tensor& y, Tensor& out) {
  const int64_t B = x.size(0), M = x.size(1), K = x.size(2), N = y.size(2);
  if (out.dtype() == DType::Float32) {
    const float *a = x.data(), *b = y.data();
    float* c = out.data_to_write();
    parallel_for(
        B,
        [&](int64_t i, int) {
          if (K == 0) {
            std::fill_n(c + i * M * N, M * N, 0.0f);
            return;
          }
          kernels::sgemm(false, false, M, N, K, 1.0f, a + i * M * K, K, b + i * K * N, N, 0.0f, c + i * M * N, N);
        },
        2 * B * M * N * K);
    return;
  }
  const int64_t *a = x.read_ptr<int64_t>(), *b = y.read_ptr<int64_t>();
  int64_t* c = out.ptr_to_write<int64_t>();
  for (int64_t i = 0; i < B; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t total = 0;
        for (int64_t k = 0; k < K; ++k) total += a[(i * M + m) * K + k] * b[(i * K + k) * N + n];
        c[(i * M + m) * N + n] = total;
      }
}

// d(a @ b) = (g @ b^T, a^T @ g), summed back over broadcast batch dims.
struct MatmulBackward : autograd::Node {
  Tensor a, b;  // as promoted to at least 2-D, detached
  Shape a_shape, b_shape, out2_shape;
  const char* name() const override { return "MatmulBackward"; }
  void release() override { a = b = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor g2 = g.reshape(out2_shape);
    std::vector<Tensor> grads(2);
    if (inputs[0].requires_grad()) grads[0] = sum_to(matmul(g2, b.transpose(-1, -2)), a.shape()).reshape(a_shape);
    if (inputs[1].requires_grad()) grads[1] = sum_to(matmul(a.transpose(-1, -2), g2), b.shape()).reshape(b_shape);
    return grads;
  }
};

Tensor matmul_value(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.dim() == 0 || b_in.dim() == 0) {
    throw ShapeError("matmul: both operands need at least one dimension, got shapes " + shape_to_string(a_in.shape()) +
                     " and " + shape_to_string(b_in.shape()));
  }
  const DType dtype = promote_types(promote_types(a_in.dtype(), b_in.dtype()), DType::Int64);
  // [K] -> [1, K] on the left, [K] -> [K, 1] on the right; the added dims are dropped at the end.
  const Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  const Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (b.size(-2) != K) {
    throw ShapeError("matmul: shapes " + shape_to_string(a_in.shape()) + " and " + shape_to_string(b_in.shape()) +
                     " cannot be multiplied (" + std::to_string(K) + " columns against " + std::to_string(b.size(-2)) +
                     " rows)");
  }
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t B = checked_numel(batch);
  Shape a_full = batch, b_full = batch, out2 = batch;
  a_full.insert(a_full.end(), {M, K});
  b_full.insert(b_full.end(), {K, N});
  out2.insert(out2.end(), {M, N});
  // [..., M, K] -> [B, M, K] (a copy only where broadcast or strided)
  const Tensor x = a.to(dtype).detach().expand(a_full).contiguous().reshape({B, M, K});
  const Tensor y = b.to(dtype).detach().expand(b_full).contiguous().reshape({B, K, N});
  Tensor out = Tensor::empty({B, M, N}, dtype);
  batched_product(x, y, out);
  Shape final_shape = batch;
  if (a_in.dim() > 1) final_shape.push_back(M);
  if (b_in.dim() > 1) final_shape.push_back(N);
  out = out.reshape(final_shape);
  if (!autograd::needs_grad({&a_in, &b_in})) return out;
  auto node = std::make_shared<MatmulBackward>();
  node->a = a.to(dtype).detach(), node->b = b.to(dtype).detach();
  node->a_shape = a_in.shape(), node->b_shape = b_in.shape(), node->out2_shape = out2;
  node->inputs = {a_in, b_in};
  attach_grad_fn(out, node);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  trace::Op op;
  Tensor out = matmul_value(a, b);
  if (op.recording()) op.record("MatMul", {a, b}, out);
  return out;
}

}  // namespace tinytorch

// Elementwise arithmetic and full reductions, with their gradients side by side.
#include <cmath>

#include "core/autograd_internal.hpp"
#include "core/parallel.hpp"
#include "ops/checks.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    throw ShapeError(std::string(op) + ": expected tensors of the same shape, got " + shape_to_string(a.shape()) +
                     " and " + shape_to_string(b.shape()));
  }
}

// out[i] = f(a[i], b[i])
template <class F>
Tensor zip(const Tensor& a, const Tensor& b, F f) {
  Tensor out = Tensor::empty(a.shape());
  const float *x = a.data(), *y = b.data();
  float* o = out.data();
  parallel_chunks(out.numel(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = f(x[i], y[i]);
  });
  return out;
}

// d(a + s * b) = (g, s * g).
struct AddBackward : autograd::Node {
  float sign = 1.0f;
  const char* name() const override { return sign > 0 ? "AddBackward" : "SubBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g, sign > 0 ? g : scale(g, -1.0f)}; }
};

struct MulBackward : autograd::Node {
  Tensor a, b;
  const char* name() const override { return "MulBackward"; }
  void release() override { a = b = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {inputs[0].requires_grad() ? mul(g, b) : Tensor(), inputs[1].requires_grad() ? mul(g, a) : Tensor()};
  }
};

struct ScaleBackward : autograd::Node {
  float factor = 1.0f;
  const char* name() const override { return "ScaleBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {scale(g, factor)}; }
};

// sum (divide = 1) and mean (divide = numel): every input element gets g / divide.
struct SumBackward : autograd::Node {
  Shape input_shape;
  double divide = 1.0;
  const char* name() const override { return divide == 1.0 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {Tensor::full(input_shape, static_cast<float>(g.item() / divide))};
  }
};

template <class NodeT>
Tensor record(Tensor out, std::shared_ptr<NodeT> node, const std::vector<Tensor>& inputs) {
  node->inputs = inputs;
  attach_grad_fn(out, node);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_same_shape("add", a, b);
  Tensor out = zip(a, b, [](float x, float y) { return x + y; });
  if (!autograd::needs_grad({&a, &b})) return out;
  return record(out, std::make_shared<AddBackward>(), {a, b});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_same_shape("sub", a, b);
  Tensor out = zip(a, b, [](float x, float y) { return x - y; });
  if (!autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<AddBackward>();
  node->sign = -1.0f;
  return record(out, node, {a, b});
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same_shape("mul", a, b);
  Tensor out = zip(a, b, [](float x, float y) { return x * y; });
  if (!autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<MulBackward>();
  node->a = a.detach(), node->b = b.detach();
  return record(out, node, {a, b});
}

Tensor scale(const Tensor& a, float factor) {
  Tensor out = Tensor::empty(a.shape());
  const float* x = a.data();
  float* o = out.data();
  parallel_chunks(out.numel(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = x[i] * factor;
  });
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<ScaleBackward>();
  node->factor = factor;
  return record(out, node, {a});
}

namespace {

Tensor reduce(const Tensor& a, double divide) {
  double total = 0.0;  // double, in a fixed order: the same bits every time
  const float* x = a.data();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) total += x[i];
  Tensor out = Tensor::full({}, static_cast<float>(total / divide));
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<SumBackward>();
  node->input_shape = a.shape();
  node->divide = divide;
  return record(out, node, {a});
}

}  // namespace

Tensor sum(const Tensor& a) { return reduce(a, 1.0); }

Tensor mean(const Tensor& a) {
  if (a.numel() == 0) throw ShapeError("mean: the tensor is empty");
  return reduce(a, static_cast<double>(a.numel()));
}

}  // namespace tinytorch

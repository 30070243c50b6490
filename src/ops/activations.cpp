// The activations of MobileNetV3 and EfficientNet as single ops: hardswish, hardsigmoid and silu,
// each one pass forward (kernels::pointwise_forward) and one backward from the saved input. As
// compositions of clamp, add, mul and div they took four passes and four tensors each (MobileNetV3's
// 20 hardswish calls at batch 1: 0.75 ms against PyTorch's 0.23).
#include <cmath>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/parallel.hpp"
#include "core/trace.hpp"
#include "kernels/activation.hpp"
#include "ops/checks.hpp"
#include "tinytorch/functional.hpp"
#include "tinytorch/math.hpp"

namespace tinytorch {
namespace {

using kernels::Pointwise;

const char* pointwise_name(Pointwise f) {
  switch (f) {
    case Pointwise::HardSwish:
      return "hardswish";
    case Pointwise::HardSigmoid:
      return "hardsigmoid";
    case Pointwise::SiLU:
      return "silu";
    case Pointwise::Sigmoid:
      break;
  }
  return "sigmoid";
}

Tensor pointwise_value(Pointwise f, const Tensor& x) {
  Tensor out = Tensor::empty(x.shape());
  const float* in = x.data();
  float* o = out.data_to_write();
  parallel_chunks(out.numel(), [&](int64_t b, int64_t e) { kernels::pointwise_forward(f, o + b, in + b, e - b); });
  return out;
}

struct PointwiseBackward : autograd::Node {
  Pointwise f = Pointwise::HardSwish;
  Tensor x;  // the input, detached and dense
  const char* name() const override { return pointwise_name(f); }
  void release() override { x = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g_arg) override {
    const Tensor g = ops::dense_float(g_arg);
    Tensor dx = Tensor::empty(x.shape());
    const float *dy = std::as_const(g).data(), *in = std::as_const(x).data();
    float* d = dx.data_to_write();
    parallel_chunks(dx.numel(),
                    [&](int64_t b, int64_t e) { kernels::pointwise_backward(f, d + b, dy + b, in + b, e - b); });
    return {dx};
  }
};

Tensor pointwise(Pointwise f, const Tensor& input) {
  trace::Op op;
  const Tensor x = ops::dense_float(input);
  Tensor out = pointwise_value(f, x);
  if (op.recording()) {
    // ONNX opset 13 (what export writes) has HardSigmoid and Sigmoid; hardswish and silu are
    // x times one of them: two nodes, the gate recorded as the tensor it is.
    if (f == Pointwise::HardSigmoid) {
      op.record("HardSigmoid", {input}, out, {{"alpha", 1.0 / 6.0}, {"beta", 0.5}});
    } else {
      const bool hard = f == Pointwise::HardSwish;
      Tensor gate = pointwise_value(hard ? Pointwise::HardSigmoid : Pointwise::Sigmoid, x);
      if (hard) {
        op.record("HardSigmoid", {input}, gate, {{"alpha", 1.0 / 6.0}, {"beta", 0.5}});
      } else {
        op.record("Sigmoid", {input}, gate);
      }
      op.record("Mul", {input, gate}, out);
    }
  }
  if (!autograd::needs_grad({&input})) return out;
  auto node = std::make_shared<PointwiseBackward>();
  node->f = f;
  node->x = x.detach();
  node->inputs = {input};
  attach_grad_fn(out, node);
  return out;
}

}  // namespace

Tensor hardswish(const Tensor& input) { return pointwise(Pointwise::HardSwish, input); }
Tensor hardsigmoid(const Tensor& input) { return pointwise(Pointwise::HardSigmoid, input); }
Tensor silu(const Tensor& input) { return pointwise(Pointwise::SiLU, input); }

}  // namespace tinytorch

// max_pool2d / avg_pool2d: validate, compute PyTorch's output size, run the plane kernels over
// threads. The reference loops (kernels/reference/pool2d_reference.cpp) are the tests' oracle.
#include "kernels/pool2d.hpp"

#include "core/autograd_internal.hpp"
#include "core/parallel.hpp"
#include "core/trace.hpp"
#include "ops/checks.hpp"
#include "ops/pool2d.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

// PyTorch's pooling_output_shape: floor (or ceil) of the window count, and with ceil_mode the
// last window must start inside the input or the left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division, as PyTorch's div_rtn
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

}  // namespace

namespace ops {

kernels::Pool2dGeometry pool2d_geometry(const char* op, const Shape& input, Size2 kernel,
                                        std::optional<Size2> stride_opt, Size2 padding, Size2 dilation,
                                        bool ceil_mode) {
  const Size2 stride = stride_opt.value_or(kernel);
  ops::check_pool_options(op, kernel, stride, padding, dilation);
  kernels::Pool2dGeometry g{};
  g.N = input[0], g.C = input[1], g.H = input[2], g.W = input[3];
  ops::check_at_most(op, "input size", Size2{g.H, g.W});
  if (g.C < 1 || g.H < 1 || g.W < 1) {
    throw ShapeError(std::string(op) + ": channels, height and width must be positive, got shape " +
                     shape_to_string(input));
  }
  g.KH = kernel.h, g.KW = kernel.w;
  g.stride_h = stride.h, g.stride_w = stride.w;
  g.pad_h = padding.h, g.pad_w = padding.w;
  g.dilation_h = dilation.h, g.dilation_w = dilation.w;
  g.OH = pooled_size(g.H, g.KH, g.stride_h, g.pad_h, g.dilation_h, ceil_mode);
  g.OW = pooled_size(g.W, g.KW, g.stride_w, g.pad_w, g.dilation_w, ceil_mode);
  if (g.OH < 1 || g.OW < 1) {
    throw ShapeError(std::string(op) + ": input " + std::to_string(g.H) + "x" + std::to_string(g.W) +
                     " is too small for kernel " + ops::pair_to_string(kernel) + " with dilation " +
                     ops::pair_to_string(dilation) + " and padding " + ops::pair_to_string(padding) +
                     ": the output would be " + std::to_string(g.OH) + "x" + std::to_string(g.OW));
  }
  return g;
}

}  // namespace ops

namespace {

// Max pooling's gradient goes to the winners, whose flat indices the forward saved per plane.
struct MaxPool2dBackward : autograd::Node {
  kernels::Pool2dGeometry g{};
  std::vector<int64_t> indices;  // [N*C, OH, OW]
  Shape input_shape;
  const char* name() const override { return "MaxPool2dBackward"; }
  void release() override { indices = {}; }
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    Tensor dx = Tensor::empty(input_shape);
    const float* dy = grad_output.data();
    float* dxp = dx.data_to_write();
    parallel_for(
        g.N * g.C,
        [&](int64_t p, int) {
          kernels::maxpool2d_backward_plane(dxp + p * g.H * g.W, dy + p * g.OH * g.OW, indices.data() + p * g.OH * g.OW,
                                            g);
        },
        g.N * g.C * g.H * g.W);
    return {dx};
  }
};

struct AvgPool2dBackward : autograd::Node {
  kernels::Pool2dGeometry g{};
  bool count_include_pad = true;
  Shape input_shape;
  const char* name() const override { return "AvgPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    Tensor dx = Tensor::empty(input_shape);
    const float* dy = grad_output.data();
    float* dxp = dx.data_to_write();
    parallel_for(
        g.N * g.C,
        [&](int64_t p, int) {
          kernels::avgpool2d_backward_plane(dxp + p * g.H * g.W, dy + p * g.OH * g.OW, g, count_include_pad);
        },
        g.N * g.C * g.OH * g.OW * g.KH * g.KW);
    return {dx};
  }
};

// A pool's work for parallel_for: a tap is a load, two compares, an or and a select (take) or a
// load and an add, and a store, counted as 4 as max_pool_blocked counts it (counted as one,
// ResNet's 3x3 max pool of 64 x 112 x 112 ran on one thread: 0.41 ms, 0.20 on two); and the input
// and output streamed once.
int64_t pool_work(const Tensor& x, const Tensor& y, const kernels::Pool2dGeometry& g) {
  return y.numel() * 4 * g.KH * g.KW + kStreamedFloatWork * (x.numel() + y.numel());
}

}  // namespace

Tensor max_pool2d(const Tensor& input_arg, const MaxPool2dOptions& o) {
  trace::Op op;
  const Tensor input = ops::dense_float(input_arg);
  ops::check_image_input(input);
  const Tensor x = ops::as_batch(input);
  const kernels::Pool2dGeometry g =
      ops::pool2d_geometry("max_pool2d", x.shape(), o.kernel_size, o.stride, o.padding, o.dilation, o.ceil_mode);
  Tensor y = Tensor::empty({g.N, g.C, g.OH, g.OW});
  // One plane per item: [N*C, H, W] -> [N*C, OH, OW]; with the winners' indices when recording.
  const bool record = autograd::needs_grad({&input});
  std::shared_ptr<MaxPool2dBackward> node = record ? std::make_shared<MaxPool2dBackward>() : nullptr;
  if (node) node->indices.resize(static_cast<size_t>(y.numel()));
  const float* in = x.data();
  float* out = y.data_to_write();
  const int64_t work = pool_work(x, y, g);
  const int64_t planes = g.N * g.C;
  if (node) {
    parallel_for(
        planes,
        [&](int64_t p, int) {
          kernels::maxpool2d_plane(out + p * g.OH * g.OW, node->indices.data() + p * g.OH * g.OW, in + p * g.H * g.W,
                                   g);
        },
        work);
  } else {  // a run of planes per thread: the kernel folds small planes together
    const int64_t runs = std::min<int64_t>(planes, get_num_threads());
    parallel_for(
        runs,
        [&](int64_t r, int) {
          const int64_t p0 = planes * r / runs, p1 = planes * (r + 1) / runs;
          kernels::maxpool2d_planes(out + p0 * g.OH * g.OW, in + p0 * g.H * g.W, g, p1 - p0);
        },
        work);
  }
  Tensor result = ops::match_batch(y, input);
  if (node) {
    node->g = g;
    node->input_shape = input.shape();
    node->inputs = {input};
    attach_grad_fn(result, node);
  }
  if (op.recording()) {
    op.record("MaxPool", {input_arg}, result,
              {{"kernel_shape", std::vector<int64_t>{g.KH, g.KW}},
               {"strides", std::vector<int64_t>{g.stride_h, g.stride_w}},
               {"pads", std::vector<int64_t>{g.pad_h, g.pad_w, g.pad_h, g.pad_w}},
               {"dilations", std::vector<int64_t>{g.dilation_h, g.dilation_w}},
               {"ceil_mode", int64_t{o.ceil_mode}}});
  }
  return result;
}

Tensor avg_pool2d(const Tensor& input_arg, const AvgPool2dOptions& o) {
  trace::Op op;
  const Tensor input = ops::dense_float(input_arg);
  ops::check_image_input(input);
  const Tensor x = ops::as_batch(input);
  const kernels::Pool2dGeometry g =
      ops::pool2d_geometry("avg_pool2d", x.shape(), o.kernel_size, o.stride, o.padding, Size2{1}, o.ceil_mode);
  Tensor y = Tensor::empty({g.N, g.C, g.OH, g.OW});
  const float* in = x.data();
  float* out = y.data_to_write();
  const int64_t planes = g.N * g.C, runs = std::min<int64_t>(planes, get_num_threads());
  parallel_for(
      runs,
      [&](int64_t r, int) {  // a run of planes per thread: the kernel folds small planes together
        const int64_t p0 = planes * r / runs, p1 = planes * (r + 1) / runs;
        kernels::avgpool2d_planes(out + p0 * g.OH * g.OW, in + p0 * g.H * g.W, g, p1 - p0, o.count_include_pad);
      },
      pool_work(x, y, g));
  Tensor result = ops::match_batch(y, input);
  if (autograd::needs_grad({&input})) {
    auto node = std::make_shared<AvgPool2dBackward>();
    node->g = g;
    node->count_include_pad = o.count_include_pad;
    node->input_shape = input.shape();
    node->inputs = {input};
    attach_grad_fn(result, node);
  }
  if (op.recording()) {
    op.record("AveragePool", {input_arg}, result,
              {{"kernel_shape", std::vector<int64_t>{g.KH, g.KW}},
               {"strides", std::vector<int64_t>{g.stride_h, g.stride_w}},
               {"pads", std::vector<int64_t>{g.pad_h, g.pad_w, g.pad_h, g.pad_w}},
               {"ceil_mode", int64_t{o.ceil_mode}},
               {"count_include_pad", int64_t{o.count_include_pad}}});
  }
  return result;
}

}  // namespace tinytorch

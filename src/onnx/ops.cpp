// The ONNX operators tinytorch runs, each a function from the node and its input tensors to its
// outputs, built on tinytorch's ops (conv2d, batch_norm, the pools, the tensor math). One table
// row per operator (kOps below); ONNX's conventions (defaults, attribute versus input forms across
// opsets, padding layouts) are translated here and nowhere else.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "core/broadcast.hpp"
#include "core/parallel.hpp"
#include "kernels/activation.hpp"
#include "kernels/pool2d.hpp"
#include "onnx/graph.hpp"
#include "ops/conv2d.hpp"
#include "ops/conv2d_blocked.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/functional.hpp"
#include "tinytorch/math.hpp"

namespace tinytorch::onnx::detail {
namespace {

using Tensors = std::vector<Tensor>;

[[noreturn]] void fail(const Node& n, const std::string& message) {
  throw DataError("onnx: " + n.where() + ": " + message);
}

const Tensor& arg(const Node& n, const Tensors& x, size_t i) {
  if (i >= x.size() || !x[i].defined()) fail(n, "input " + std::to_string(i) + " is missing");
  return x[i];
}

bool given(const Tensors& x, size_t i) { return i < x.size() && x[i].defined(); }

// An int64 (or integral float) tensor's values: shapes, axes, pads given as inputs.
std::vector<int64_t> ints_of(const Node& n, const Tensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  const Tensor c = t.contiguous();
  if (c.dtype() == DType::Int64) {
    std::copy_n(c.read_ptr<int64_t>(), out.size(), out.begin());
  } else if (c.dtype() == DType::Float32) {
    for (size_t i = 0; i < out.size(); ++i) {
      const float v = c.data()[i];
      // An integer's range as floats: [-2^63, 2^63); NaN and anything outside has no int64.
      if (!(v >= -9.2233720368547758e18f && v < 9.2233720368547758e18f)) {
        fail(n, "expected integers, got " + std::to_string(v) + " in a float tensor");
      }
      out[i] = static_cast<int64_t>(v);
    }
  } else {
    fail(n, "expected an integer tensor, got a bool one");
  }
  return out;
}

Tensor ints_tensor(const std::vector<int64_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::Int64);
  std::copy(v.begin(), v.end(), t.ptr_to_write<int64_t>());
  return t;
}

int64_t wrap_axis(const Node& n, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    fail(n, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Axes from the attribute (older opsets) or the optional input `i` (newer).
std::vector<int64_t> axes_of(const Node& n, const Tensors& x, size_t i, int64_t rank) {
  std::vector<int64_t> axes = given(x, i) ? ints_of(n, x[i]) : n.attr_ints("axes");
  for (auto& a : axes) a = wrap_axis(n, a, rank);
  return axes;
}

// 4-D input padded by (top, left, bottom, right) with `value` (all non-negative).
Tensor pad_nchw(const Tensor& x_arg, int64_t top, int64_t left, int64_t bottom, int64_t right, float value) {
  const Tensor x = x_arg.contiguous();
  const Shape& s = x.shape();
  const int64_t H = s[2], W = s[3], OH = H + top + bottom, OW = W + left + right;
  Tensor out = Tensor::full({s[0], s[1], OH, OW}, value);
  if (x.numel() == 0) return out;  // nothing to copy (and no data pointer to copy from)
  const float* src = x.data();
  float* dst = out.data_to_write();
  for (int64_t p = 0; p < s[0] * s[1]; ++p) {
    for (int64_t h = 0; h < H; ++h) {
      std::memcpy(dst + (p * OH + h + top) * OW + left, src + (p * H + h) * W, static_cast<size_t>(W) * sizeof(float));
    }
  }
  return out;
}

struct Window {
  Size2 kernel = 1, stride = 1, dilation = 1;
  int64_t pads[4] = {0, 0, 0, 0};  // top, left, bottom, right
};

// kernel_shape / strides / dilations / pads / auto_pad of a 2-D Conv or pool over input x.
Window window_of(const Node& n, const Shape& x, Size2 kernel) {
  if (x.size() != 4) fail(n, "tinytorch runs 2-D windows over (N, C, H, W) inputs, got " + shape_to_string(x));
  Window w;
  const auto k = n.attr_ints("kernel_shape", {kernel.h, kernel.w});
  const auto s = n.attr_ints("strides", {1, 1});
  const auto d = n.attr_ints("dilations", {1, 1});
  auto p = n.attr_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || s.size() != 2 || d.size() != 2 || p.size() != 4) {
    fail(n, "expected 2-D kernel_shape, strides, dilations and 4 pads");
  }
  w.kernel = {k[0], k[1]}, w.stride = {s[0], s[1]}, w.dilation = {d[0], d[1]};
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < 2; ++i) {  // SAME_UPPER: the odd unit of padding at the end
      const int64_t in = x[2 + i], out = (in + s[i] - 1) / s[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
      const int64_t small = total / 2, large = total - small;
      p[i] = auto_pad == "SAME_UPPER" ? small : large;
      p[i + 2] = auto_pad == "SAME_UPPER" ? large : small;
    }
  } else if (auto_pad == "VALID") {
    p = {0, 0, 0, 0};
  } else if (auto_pad != "NOTSET") {
    fail(n, "unknown auto_pad '" + auto_pad + "'");
  }
  for (int i = 0; i < 4; ++i) {
    if (p[static_cast<size_t>(i)] < 0) fail(n, "negative pads are not supported");
    w.pads[i] = p[static_cast<size_t>(i)];
  }
  return w;
}

Window window_of(const Node& n, const Tensor& x, Size2 kernel) { return window_of(n, x.shape(), kernel); }

bool symmetric(const Window& w) { return w.pads[0] == w.pads[2] && w.pads[1] == w.pads[3]; }

// A fused Conv whose residual broadcasts (its shape is not the output's): the Add as the graph wrote
// it, then the activation over the sum.
Tensor add_then_epilogue(const Tensor& conv_out, const Tensor& residual, const kernels::Epilogue& epilogue) {
  Tensor out = add(conv_out, residual);
  float* dst = out.data_to_write();
  parallel_chunks(out.numel(), [&](int64_t begin, int64_t end) {
    kernels::apply_epilogue(dst + begin, nullptr, end - begin, epilogue);
  });
  return out;
}

Tensors conv(const Node& n, const Tensors& x) {
  Tensor input = arg(n, x, 0);
  const Tensor& weight = arg(n, x, 1);
  if (weight.dim() != 4) fail(n, "expected a 4-D weight, got " + shape_to_string(weight.shape()));
  Window w = window_of(n, input, {weight.shape()[2], weight.shape()[3]});
  if (!symmetric(w)) {  // padded explicitly, the convolution itself then unpadded
    input = pad_nchw(input, w.pads[0], w.pads[1], w.pads[2], w.pads[3], 0.0f);
    std::fill(std::begin(w.pads), std::end(w.pads), 0);
  }
  Conv2dOptions o;
  o.stride = w.stride, o.dilation = w.dilation, o.groups = n.attr_int("group", 1);
  o.padding = Padding2d(w.pads[0], w.pads[1]);
  const Tensor bias = given(x, 2) ? x[2] : Tensor();
  if (!given(x, 3) && n.epilogue.activation == kernels::Activation::None) return {conv2d(input, weight, bias, o)};
  // The fused nodes (optimize.cpp): out = activation(out + residual), applied by the convolution's
  // work items to the outputs they finish.
  const Tensor residual = given(x, 3) ? x[3] : Tensor();
  const kernels::Conv2dGeometry g = ops::conv2d_geometry(input.shape(), weight.shape(), bias, o);
  if (!residual.defined() || (residual.shape() == Shape{g.N, g.OC, g.OH, g.OW} && residual.dtype() == DType::Float32)) {
    return {ops::conv2d_fused(input, weight, bias, o, n.epilogue, residual)};
  }
  return {add_then_epilogue(conv2d(input, weight, bias, o), residual, n.epilogue)};  // a broadcasting Add
}

// The blocked layout's nodes (optimize.cpp, "blocked layout"). A blocked Conv reads a blocked
// input [N, ceil(C/B), H, W, B] or a plain one, and writes a blocked output; its residual is
// blocked too.
// Whether a dense Conv on a blocked input runs as the plain layout's Winograd instead: where the
// plain selection picks it for the layer's shape (3x3, stride 1: it does 4x fewer multiplies than
// the blocked tiles), its input is converted to the plain layout and its output back.
constexpr int64_t kPlainGroupBytes = int64_t{8} << 20;

bool plain_winograd(const Node& n, const Tensor& input, const Tensor& weight) {
  if (input.dim() != 5 || n.attr_int("group", 1) != 1 || weight.dim() != 4) return false;
  const Shape& s = input.shape();
  const Shape plain{s[0], weight.shape()[1], s[2], s[3]};
  const Window w = window_of(n, plain, {weight.shape()[2], weight.shape()[3]});
  if (!symmetric(w)) return false;
  Conv2dOptions o;
  o.stride = w.stride, o.dilation = w.dilation, o.padding = Padding2d(w.pads[0], w.pads[1]);
  // More than 16 input channels, and stride 1 or, with 8-lane blocks, stride 2 on deep and wide
  // layers. Measured with both ways timed on seeded random 3x3 layers (docs/PERFORMANCE.md,
  // "Winograd between layout changes"): with 16 channels each point's GEMM is 16 deep, too short to
  // pay for two transforms and two layout changes (lost all 8). At stride 2 Winograd's scheme does
  // 25 multiplies for 4 outputs, not 36: with 16-lane blocks it lost 5 of 6; with 8-lane blocks,
  // whose dense tiles reach less of the peak, it won where C * OC / (C + OC) >= 56 (its GEMMs deep
  // and wide against the transforms': 14 of 16 such layers on a held-out seed, up to 1.64x) and
  // lost below (51 of 53, to 0.25x).
  if (plain[1] <= 16) return false;
  if (w.stride.h != 1 || w.stride.w != 1) {
    const int64_t C = plain[1], OC = weight.shape()[0];
    if (ops::blocked_lanes() != 8 || w.stride.h != 2 || w.stride.w != 2 || C * OC < 56 * (C + OC)) return false;
  }
  return conv2d_algorithm_supports(Conv2dAlgorithm::Winograd, plain, weight.shape(), o) &&
         select_conv2d_algorithm(plain, weight.shape(), o) == Conv2dAlgorithm::Winograd;
}

Tensors conv_blocked(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  const Tensor& weight = arg(n, x, 1);
  if (weight.dim() != 4) fail(n, "expected a 4-D weight, got " + shape_to_string(weight.shape()));
  const int64_t group = n.attr_int("group", 1), C = weight.shape()[1] * group;
  const Shape& s = input.shape();
  const Shape plain = input.dim() == 5 ? Shape{s[0], C, s[2], s[3]} : s;
  const Window w = window_of(n, plain, {weight.shape()[2], weight.shape()[3]});
  ops::BlockedConvOptions o;
  o.stride = {w.stride.h, w.stride.w}, o.dilation = {w.dilation.h, w.dilation.w};
  o.pads = {w.pads[0], w.pads[1], w.pads[2], w.pads[3]};
  o.depthwise = group > 1;
  const Tensor bias = given(x, 2) ? x[2] : Tensor(), residual = given(x, 3) ? x[3] : Tensor();
  if (plain_winograd(n, input, weight)) {  // between layout changes, the residual's too
    // In groups of images whose plain copies take at most kPlainGroupBytes beside the blocked input
    // and output: GoogLeNet's 64 -> 192 3x3 at 56x56 at batch 8 held 26 MiB of them at once.
    const int64_t N = s[0], OC = weight.shape()[0];
    const int64_t image = (C * s[2] * s[3] + OC * s[2] * s[3]) * static_cast<int64_t>(sizeof(float));
    const int64_t groups = std::min(N, (N * image + kPlainGroupBytes - 1) / kPlainGroupBytes);
    if (groups <= 1) {
      Tensors plain{ops::from_blocked(input, C), weight, bias};
      if (residual.defined()) plain.push_back(ops::from_blocked(residual, OC));
      return {ops::to_blocked(conv(n, plain)[0])};
    }
    const int64_t per = (N + groups - 1) / groups;  // as even as the images allow
    Tensor out;
    for (int64_t i = 0; i < N; i += per) {
      const int64_t e = std::min(N, i + per);
      Tensors plain{ops::from_blocked(input.slice(0, i, e), C), weight, bias};
      if (residual.defined()) plain.push_back(ops::from_blocked(residual.slice(0, i, e), OC));
      const Tensor y = conv(n, plain)[0];
      if (!out.defined()) {
        Shape shape{N, (OC + ops::blocked_lanes() - 1) / ops::blocked_lanes(), y.shape()[2], y.shape()[3]};
        shape.push_back(ops::blocked_lanes());
        out = Tensor::empty(shape);
      }
      ops::to_blocked_into(out, i, y);
    }
    return {out};
  }
  try {
    if (!residual.defined() || residual.shape() == ops::conv2d_blocked_shape(input, C, weight, o)) {
      return {ops::conv2d_blocked(input, C, weight, bias, o, n.epilogue, residual)};
    }
    // A broadcasting residual ([N, CB, 1, 1, B], ...): as the graph's Add.
    return {add_then_epilogue(ops::conv2d_blocked(input, C, weight, bias, o, kernels::Epilogue{}, Tensor()), residual,
                              n.epilogue)};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

// A blocked depthwise Conv that took in the pointwise Conv before it (Node::pointwise_first):
// inputs [x, pointwise weight, pointwise bias, weight, bias, residual].
Tensors conv_pointwise_depthwise(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  const Tensor& pw_weight = arg(n, x, 1);
  const Tensor& weight = arg(n, x, 3);
  if (input.dim() < 4 || pw_weight.dim() != 4 || weight.dim() != 4) {
    fail(n, "expected a plain or blocked input and 4-D weights, got " + shape_to_string(input.shape()) + ", " +
                shape_to_string(pw_weight.shape()) + " and " + shape_to_string(weight.shape()));
  }
  const Shape& s = input.shape();
  const Shape middle{s[0], pw_weight.shape()[0], s[2], s[3]};
  const Window w = window_of(n, middle, {weight.shape()[2], weight.shape()[3]});
  ops::BlockedConvOptions o;
  o.stride = {w.stride.h, w.stride.w}, o.dilation = {w.dilation.h, w.dilation.w};
  o.pads = {w.pads[0], w.pads[1], w.pads[2], w.pads[3]};
  o.depthwise = true;
  const auto opt = [&](size_t i) { return given(x, i) ? x[i] : Tensor(); };
  try {
    return {ops::conv2d_blocked_pointwise_depthwise(input, pw_weight.shape()[1], pw_weight, opt(2),
                                                    n.pointwise_epilogue, weight, opt(4), o, n.epilogue, opt(5))};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

Tensors to_blocked_op(const Node& n, const Tensors& x) { return {ops::to_blocked(arg(n, x, 0))}; }

Tensors from_blocked_op(const Node& n, const Tensors& x) {
  try {
    return {ops::from_blocked(arg(n, x, 0), n.attr_int("channels", 0))};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

Tensors global_average_pool_blocked(const Node& n, const Tensors& x) {
  try {
    return {ops::global_average_pool_blocked(arg(n, x, 0))};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

// A blocked Mul: the squeeze-excitation gate x [N, CB, H, W, B] * s [N, CB, 1, 1, B] (either
// order) in one pass; any other shapes as Mul broadcasts.
Tensors mul_blocked(const Node& n, const Tensors& x) {
  const Tensor &a = arg(n, x, 0), &b = arg(n, x, 1);
  Tensor out = ops::scale_blocked(a, b);
  if (!out.defined()) out = ops::scale_blocked(b, a);
  if (!out.defined()) out = mul(a, b);
  return {out};
}

}  // namespace

std::string conv_algorithm(const Node& n, const Tensors& x) {
  if (n.blocked && plain_winograd(n, arg(n, x, 0), arg(n, x, 1))) return "winograd (plain, between layout changes)";
  if (n.pointwise_first) {
    const Tensor& input = arg(n, x, 0);
    const Tensor& pw = arg(n, x, 1);
    if (input.dim() != 5 || pw.dim() != 4) return "blocked pointwise + depthwise";
    const Shape& s = input.shape();
    const int64_t B = ops::blocked_lanes();
    return ops::fuses_pointwise_depthwise({s[0], (pw.shape()[0] + B - 1) / B, s[2], s[3], B})
               ? "blocked pointwise + depthwise, fused in bands"
               : "blocked pointwise, then depthwise";
  }
  if (n.blocked) return n.attr_int("group", 1) > 1 ? "blocked depthwise" : "blocked";
  const Tensor& weight = arg(n, x, 1);
  Tensor input = arg(n, x, 0);
  if (weight.dim() != 4) return "";
  Window w = window_of(n, input, {weight.shape()[2], weight.shape()[3]});
  Shape shape = input.shape();
  std::string prefix;
  if (!symmetric(w)) {  // as conv() runs it: padded first
    shape[2] += w.pads[0] + w.pads[2], shape[3] += w.pads[1] + w.pads[3];
    std::fill(std::begin(w.pads), std::end(w.pads), 0);
    prefix = "pad + ";
  }
  Conv2dOptions o;
  o.stride = w.stride, o.dilation = w.dilation, o.groups = n.attr_int("group", 1);
  o.padding = Padding2d(w.pads[0], w.pads[1]);
  return prefix + to_string(select_conv2d_algorithm(shape, weight.shape(), o));
}

namespace {

Tensors max_pool(const Node& n, const Tensors& x) {
  if (n.outputs.size() > 1 && n.outputs[1] >= 0) fail(n, "the Indices output is not supported");
  Tensor input = arg(n, x, 0);
  Window w = window_of(n, input, 1);
  if (!n.has("kernel_shape")) fail(n, "kernel_shape is required");
  if (!symmetric(w)) {
    input = pad_nchw(input, w.pads[0], w.pads[1], w.pads[2], w.pads[3], -INFINITY);
    std::fill(std::begin(w.pads), std::end(w.pads), 0);
  }
  MaxPool2dOptions o;
  o.kernel_size = w.kernel, o.stride = w.stride, o.dilation = w.dilation, o.padding = Size2(w.pads[0], w.pads[1]);
  o.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  return {max_pool2d(input, o)};
}

Tensors average_pool(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  const Window w = window_of(n, input, 1);
  if (!n.has("kernel_shape")) fail(n, "kernel_shape is required");
  if (!symmetric(w)) fail(n, "asymmetric pads are not supported for AveragePool");
  AvgPool2dOptions o;
  o.kernel_size = w.kernel, o.stride = w.stride, o.padding = Size2(w.pads[0], w.pads[1]);
  o.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  o.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  if (w.dilation.h != 1 || w.dilation.w != 1) fail(n, "dilated AveragePool is not supported");
  return {avg_pool2d(input, o)};
}

// The blocked layout's pools and Concat (attribute "channels": the input's channels, per input for
// Concat, set by the pass). A window whose pads differ on its two sides runs as the plain op
// between layout changes.
// A blocked pool's window, from the plain shape its input stands for.
Window blocked_pool_window(const Node& n, const Tensor& input, int64_t C) {
  if (input.dim() != 5) fail(n, "expected a blocked input, got " + shape_to_string(input.shape()));
  if (!n.has("kernel_shape")) fail(n, "kernel_shape is required");
  return window_of(n, Shape{input.shape()[0], C, input.shape()[2], input.shape()[3]}, 1);
}

Tensors max_pool_blocked(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  const int64_t C = n.attr_int("channels", 0);
  const Window w = blocked_pool_window(n, input, C);
  if (!symmetric(w)) return {ops::to_blocked(max_pool(n, {ops::from_blocked(input, C)})[0])};
  MaxPool2dOptions o;
  o.kernel_size = w.kernel, o.stride = w.stride, o.dilation = w.dilation, o.padding = Size2(w.pads[0], w.pads[1]);
  o.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  try {
    return {ops::max_pool_blocked(input, C, o)};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

Tensors average_pool_blocked(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  const int64_t C = n.attr_int("channels", 0);
  const Window w = blocked_pool_window(n, input, C);
  if (!symmetric(w) || w.dilation.h != 1 || w.dilation.w != 1) {
    return {ops::to_blocked(average_pool(n, {ops::from_blocked(input, C)})[0])};
  }
  AvgPool2dOptions o;
  o.kernel_size = w.kernel, o.stride = w.stride, o.padding = Size2(w.pads[0], w.pads[1]);
  o.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  o.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  try {
    return {ops::avg_pool_blocked(input, C, o)};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

// An inference BatchNormalization in the blocked layout: x * scale + shift per channel, with the
// Relu the pass folded into it (attribute "relu"); x the concatenation of its first inputs when the
// pass took their Concat in (attribute "concat": their channels), its parameters after them.
Tensors batch_normalization_blocked(const Node& n, const Tensors& x) {
  const int64_t C = n.attr_int("channels", 0);
  const std::vector<int64_t> parts = n.attr_ints("concat");
  const size_t first = parts.empty() ? 1 : parts.size();  // the first parameter's input
  std::vector<std::vector<float>> p;
  for (size_t i = first; i < first + 4; ++i) {
    const Tensor& t = arg(n, x, i);
    if (t.dtype() != DType::Float32 || t.numel() != C)
      fail(n, "expected float32 parameters of " + std::to_string(C) + " channels, got " + shape_to_string(t.shape()));
    const Tensor c = t.contiguous();
    p.emplace_back(c.data(), c.data() + C);
  }
  const double eps = n.attr_float("epsilon", 1e-5f);
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (size_t c = 0; c < scale.size(); ++c) {
    const double a = p[0][c] / std::sqrt(static_cast<double>(p[3][c]) + eps);
    scale[c] = static_cast<float>(a), shift[c] = static_cast<float>(p[1][c] - p[2][c] * a);
  }
  const bool relu = n.attr_int("relu", 0) != 0;
  try {
    if (parts.empty()) return {ops::channel_affine_blocked(arg(n, x, 0), C, scale, shift, relu)};
    Tensors xs;
    for (size_t i = 0; i < first; ++i) xs.push_back(arg(n, x, i));
    return {ops::concat_affine_blocked(xs, parts, scale, shift, relu)};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

Tensors identity_blocked(const Node& n, const Tensors& x) { return {arg(n, x, 0)}; }

Tensors concat_blocked(const Node& n, const Tensors& x) {
  Tensors parts;
  for (const Tensor& t : x) {
    if (t.defined()) parts.push_back(t);
  }
  try {
    return {ops::concat_blocked(parts, n.attr_ints("channels"))};
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
}

Tensors global_average_pool(const Node& n, const Tensors& x) {
  const Tensor& input = arg(n, x, 0);
  if (input.dim() < 3) fail(n, "expected (N, C, spatial...), got " + shape_to_string(input.shape()));
  Shape shape = input.shape();
  const int64_t planes = shape[0] * shape[1], size = input.numel() / std::max<int64_t>(planes, 1);
  if (input.dtype() != DType::Float32 || size == 0) {
    std::vector<int64_t> dims(static_cast<size_t>(input.dim() - 2));
    std::iota(dims.begin(), dims.end(), 2);
    return {mean(input, dims, true)};
  }
  std::fill(shape.begin() + 2, shape.end(), 1);
  Tensor out = Tensor::empty(shape);
  const Tensor in = input.contiguous();
  const float* src = in.data();
  float* dst = out.data_to_write();
  parallel_for(
      planes, [&](int64_t p, int) { dst[p] = kernels::plane_mean(src + p * size, size); }, input.numel());
  return {out};
}

Tensors batch_normalization(const Node& n, const Tensors& x) {
  Tensor running_mean = arg(n, x, 3), running_var = arg(n, x, 4);
  return {batch_norm(arg(n, x, 0), running_mean, running_var, arg(n, x, 1), arg(n, x, 2), false, 0.1,
                     n.attr_float("epsilon", 1e-5f))};
}

Tensors relu_op(const Node& n, const Tensors& x) { return {relu(arg(n, x, 0))}; }
Tensors sigmoid_op(const Node& n, const Tensors& x) { return {sigmoid(arg(n, x, 0))}; }

template <Tensor (*F)(const Tensor&)>
Tensors unary_op(const Node& n, const Tensors& x) {
  return {F(arg(n, x, 0))};
}

// Max, Min (and Sum): any number of inputs, broadcast together.
template <Tensor (*F)(const Tensor&, const Tensor&)>
Tensors variadic(const Node& n, const Tensors& x) {
  Tensor out = arg(n, x, 0);
  for (size_t i = 1; i < x.size(); ++i) out = F(out, arg(n, x, i));
  return {out};
}

std::optional<double> scalar_of(const Node& n, const Tensors& x, size_t i) {
  if (!given(x, i)) return std::nullopt;
  if (x[i].numel() != 1) fail(n, "expected a scalar for input " + std::to_string(i));
  return x[i].dtype() == DType::Float32 ? static_cast<double>(x[i].contiguous().read_ptr<float>()[0])
                                        : static_cast<double>(ints_of(n, x[i])[0]);
}

Tensors clip(const Node& n, const Tensors& x) {
  std::optional<double> lo = scalar_of(n, x, 1), hi = scalar_of(n, x, 2);
  if (n.has("min")) lo = n.attr_float("min", 0.0f);  // opset < 11: attributes
  if (n.has("max")) hi = n.attr_float("max", 0.0f);
  return {clamp(arg(n, x, 0), lo, hi)};
}

Tensors leaky_relu(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  return {where(ge(a, scalar_tensor(0.0)), a, scale(a, n.attr_float("alpha", 0.01f)))};
}

Tensor hard_sigmoid_of(const Tensor& a, float alpha, float beta) {
  return clamp(add(scale(a, alpha), scalar_tensor(beta)), 0.0, 1.0);
}

Tensors hard_sigmoid(const Node& n, const Tensors& x) {
  return {hard_sigmoid_of(arg(n, x, 0), n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f))};
}

Tensors hard_swish(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  return {mul(a, hard_sigmoid_of(a, 1.0f / 6.0f, 0.5f))};
}

template <Tensor (*F)(const Tensor&, const Tensor&)>
Tensors binary(const Node& n, const Tensors& x) {
  return {F(arg(n, x, 0), arg(n, x, 1))};
}

Tensors identity(const Node& n, const Tensors& x) { return {arg(n, x, 0)}; }

Tensors dropout_op(const Node& n, const Tensors& x) {  // inference: the identity, and a mask of ones
  const Tensor& a = arg(n, x, 0);
  return {a, Tensor::full(a.shape(), 1.0, DType::Bool)};
}

Tensors flatten_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const int64_t axis = n.attr_int("axis", 1);
  const int64_t at = axis == a.dim() ? axis : wrap_axis(n, axis, a.dim());
  int64_t outer = 1;
  for (int64_t d = 0; d < at; ++d) outer *= a.shape()[static_cast<size_t>(d)];
  return {a.reshape({outer, a.numel() / std::max<int64_t>(outer, 1)})};
}

// The shape a Reshape to `target` gives a tensor of shape `in` (ONNX's rules: 0 copies the dim
// unless allowzero, one -1 is inferred), or nothing where the target does not fit it.
std::optional<Shape> reshaped(const Shape& in, std::vector<int64_t> target, bool allowzero) {
  const int64_t numel = std::accumulate(in.begin(), in.end(), int64_t{1}, std::multiplies<>());
  int64_t known = 1;
  std::optional<size_t> inferred;
  for (size_t d = 0; d < target.size(); ++d) {
    if (target[d] == 0 && !allowzero) {
      if (d >= in.size()) return std::nullopt;
      target[d] = in[d];
    }
    if (target[d] == -1 && !inferred) {
      inferred = d;
    } else if (target[d] < 0 || (target[d] > 0 && known > std::numeric_limits<int64_t>::max() / target[d])) {
      return std::nullopt;
    } else {
      known *= target[d];
    }
  }
  if (inferred) {
    if (known == 0 || numel % known != 0) return std::nullopt;
    target[*inferred] = numel / known;
  }
  return known * (inferred ? target[*inferred] : 1) == numel ? std::optional<Shape>(target) : std::nullopt;
}

Tensors reshape(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const std::vector<int64_t> target = ints_of(n, arg(n, x, 1));
  const std::optional<Shape> shape = reshaped(a.shape(), target, n.attr_int("allowzero", 0) != 0);
  if (!shape) fail(n, "cannot reshape " + shape_to_string(a.shape()) + " to " + shape_to_string(target));
  return {a.reshape(*shape)};
}

Tensors transpose(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  std::vector<int64_t> perm(static_cast<size_t>(a.dim()));
  std::iota(perm.rbegin(), perm.rend(), 0);
  perm = n.attr_ints("perm", perm);
  return {a.permute(perm)};
}

Tensors concat(const Node& n, const Tensors& x) {
  Tensors parts;
  for (const Tensor& t : x) {
    if (t.defined()) parts.push_back(t);
  }
  if (parts.empty()) fail(n, "no inputs");
  return {cat(parts, wrap_axis(n, n.attr_int("axis", 0), parts[0].dim()))};
}

// The channel shuffle (optimize.cpp, fuse_channel_shuffles): inputs x_0 .. x_{k-1} (a Concat's, k =
// attribute "inputs"; one without a Concat), then the two Reshapes' target shapes. Concat along
// the channels into [N, C, H, W], Reshape to [N, g, C/g, H, W], Transpose to [N, C/g, g, H, W],
// Reshape back to [N, C, H, W]: output channel i * g + j is input channel j * C/g + i of the
// concatenation, so each output plane is one copy of an input plane, and neither the
// concatenation nor the transposed tensor is written. The targets are computed as the graph runs;
// where they turn out to be anything else, the four operators run as written.
Tensors channel_shuffle(const Node& n, const Tensors& x) {
  const auto k = static_cast<size_t>(n.attr_int("inputs", 1));
  if (k == 0 || x.size() != k + 2) fail(n, "expected " + std::to_string(k + 2) + " inputs");
  const std::vector<int64_t> allowzero = n.attr_ints("allowzero", {0, 0});
  const std::vector<int64_t> first = ints_of(n, arg(n, x, k)), second = ints_of(n, arg(n, x, k + 1));
  Tensors parts;
  for (size_t i = 0; i < k; ++i) parts.push_back(arg(n, x, i));
  const Tensor& a = parts[0];
  bool fits = a.dim() == 4;
  int64_t C = 0;
  for (const Tensor& p : parts) {
    fits = fits && p.dtype() == DType::Float32 && p.dim() == 4 && p.shape()[0] == a.shape()[0] &&
           p.shape()[2] == a.shape()[2] && p.shape()[3] == a.shape()[3] && p.strides()[3] == 1 &&
           p.strides()[2] == p.shape()[3];
    if (fits) C += p.shape()[1];
  }
  const int64_t axis = n.attr_int("axis", 1);
  fits = fits && (k == 1 || axis == 1 || axis == -3);
  std::optional<Shape> split, back;
  const int64_t N = fits ? a.shape()[0] : 0, H = fits ? a.shape()[2] : 0, W = fits ? a.shape()[3] : 0;
  if (fits) split = reshaped({N, C, H, W}, first, allowzero[0] != 0);
  const int64_t groups = split && split->size() == 5 ? (*split)[1] : 0;
  fits = groups > 0 && *split == Shape{N, groups, C / groups, H, W};
  if (fits) back = reshaped({N, C / groups, groups, H, W}, second, allowzero.size() > 1 && allowzero[1] != 0);
  if (!fits || !back || *back != Shape{N, C, H, W}) {
    Tensor c = k == 1 ? a : cat(parts, wrap_axis(n, axis, a.dim()));
    std::optional<Shape> s1 = reshaped(c.shape(), first, allowzero[0] != 0);
    if (!s1) fail(n, "cannot reshape " + shape_to_string(c.shape()) + " to " + shape_to_string(first));
    Tensor t = c.reshape(*s1);
    if (t.dim() != 5) fail(n, "the Transpose's perm has 5 entries, its input " + std::to_string(t.dim()) + " dims");
    t = t.permute({0, 2, 1, 3, 4});
    std::optional<Shape> s2 = reshaped(t.shape(), second, allowzero.size() > 1 && allowzero[1] != 0);
    if (!s2) fail(n, "cannot reshape " + shape_to_string(t.shape()) + " to " + shape_to_string(second));
    return {t.reshape(*s2)};
  }
  Tensor out = Tensor::empty({N, C, H, W});
  const int64_t per_group = C / groups, plane = H * W;
  if (out.numel() == 0) return {out};
  std::vector<int64_t> first_channel(k + 1, 0);  // of each input in the concatenation
  for (size_t i = 0; i < k; ++i) first_channel[i + 1] = first_channel[i] + parts[i].shape()[1];
  float* dst = out.data_to_write();
  parallel_for(
      N * C,
      [&](int64_t item, int) {
        const int64_t b = item / C, o = item % C, c = o % groups * per_group + o / groups;
        const auto i = static_cast<size_t>(std::upper_bound(first_channel.begin(), first_channel.end(), c) -
                                           first_channel.begin() - 1);
        const Tensor& p = parts[i];
        const float* src = p.read_ptr<float>() + b * p.strides()[0] + (c - first_channel[i]) * p.strides()[1];
        std::memcpy(dst + item * plane, src, static_cast<size_t>(plane) * sizeof(float));
      },
      N * C * plane * 2);  // from a million floats: at batch 1 a just-written tensor copied faster on one core
  return {out};
}

Tensors split(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const int64_t axis = wrap_axis(n, n.attr_int("axis", 0), a.dim()), size = a.shape()[static_cast<size_t>(axis)];
  std::vector<int64_t> sizes = given(x, 1) ? ints_of(n, x[1]) : n.attr_ints("split");
  if (sizes.empty()) {  // equal parts, one per output (the last smaller, as opset 18 allows)
    const auto parts = static_cast<int64_t>(n.outputs.size());
    const int64_t each = (size + parts - 1) / parts;
    for (int64_t at = 0; at < size; at += each) sizes.push_back(std::min(each, size - at));
  }
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != size) fail(n, "split sizes do not add up to the dim");
  Tensors out;
  int64_t at = 0;
  for (int64_t s : sizes) out.push_back(a.slice(axis, at, at + s)), at += s;
  return out;
}

Tensors slice(const Node& n, const Tensors& x) {
  Tensor a = arg(n, x, 0);
  const std::vector<int64_t> starts = ints_of(n, arg(n, x, 1)), ends = ints_of(n, arg(n, x, 2));
  std::vector<int64_t> axes(starts.size());
  std::iota(axes.begin(), axes.end(), 0);
  if (given(x, 3)) axes = ints_of(n, x[3]);
  const std::vector<int64_t> steps = given(x, 4) ? ints_of(n, x[4]) : std::vector<int64_t>(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    fail(n, "starts, ends, axes and steps differ in length");
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    if (steps[i] <= 0) fail(n, "only positive steps are supported");
    const int64_t axis = wrap_axis(n, axes[i], a.dim()), size = a.shape()[static_cast<size_t>(axis)];
    auto clampi = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + size : v, 0, size); };
    a = a.slice(axis, clampi(starts[i]), clampi(ends[i]), steps[i]);
  }
  return {a};
}

Tensors pad(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  if (n.attr_string("mode", "constant") != "constant") fail(n, "only mode 'constant' is supported");
  const std::vector<int64_t> p = given(x, 1) ? ints_of(n, x[1]) : n.attr_ints("pads");
  const double value = scalar_of(n, x, 2).value_or(n.attr_float("value", 0.0f));
  if (a.dim() != 4 || p.size() != 8 || p[0] || p[1] || p[4] || p[5]) {
    fail(n, "tinytorch pads the last two dims of 4-D tensors only");
  }
  return {pad_nchw(a, p[2], p[3], p[6], p[7], static_cast<float>(value))};
}

Tensors gemm(const Node& n, const Tensors& x) {
  Tensor a = arg(n, x, 0), b = arg(n, x, 1);
  const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  if (a.dim() != 2 || b.dim() != 2) fail(n, "expected 2-D A and B");
  if (!ta && tb && alpha == 1.0f && (beta == 1.0f || !given(x, 2)) && (!given(x, 2) || x[2].dim() == 1)) {
    return {linear(a, b, given(x, 2) ? x[2] : Tensor())};  // a Linear layer: y = a b^T + c
  }
  Tensor y = matmul(ta ? a.transpose(0, 1) : a, tb ? b.transpose(0, 1) : b);
  if (alpha != 1.0f) y = scale(y, alpha);
  if (given(x, 2)) y = add(y, beta == 1.0f ? x[2] : scale(x[2], beta));
  return {y};
}

Tensors matmul_op(const Node& n, const Tensors& x) { return {matmul(arg(n, x, 0), arg(n, x, 1))}; }

Tensors softmax_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const int64_t axis = wrap_axis(n, n.attr_int("axis", n.opset >= 13 ? -1 : 1), a.dim());
  if (n.opset < 13 && axis != a.dim() - 1) fail(n, "opset < 13 Softmax over more than the last dim is not supported");
  return {softmax(a, axis)};
}

Tensors log_softmax_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const int64_t axis = wrap_axis(n, n.attr_int("axis", n.opset >= 13 ? -1 : 1), a.dim());
  if (n.opset < 13 && axis != a.dim() - 1) {
    fail(n, "opset < 13 LogSoftmax over more than the last dim is not supported");
  }
  return {log_softmax(a, axis)};
}

// The Reduce* operators: axes from the attribute or (ReduceSum from opset 13, the others from
// 18) the input; none means every axis, or the input as it is with noop_with_empty_axes.
using Reduction = Tensor (*)(const Tensor&, const std::vector<int64_t>&, bool);

template <Reduction F>
Tensors reduce_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  std::vector<int64_t> axes = axes_of(n, x, 1, a.dim());
  if (axes.empty()) {
    if (n.attr_int("noop_with_empty_axes", 0)) return {a};
    axes.resize(static_cast<size_t>(a.dim()));
    std::iota(axes.begin(), axes.end(), 0);
  }
  return {F(a, axes, n.attr_int("keepdims", 1) != 0)};
}

template <bool kLargest>
Tensors arg_extremum(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  if (n.attr_int("select_last_index", 0) != 0) fail(n, "select_last_index=1 is not supported");
  const int64_t axis = wrap_axis(n, n.attr_int("axis", 0), a.dim());
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  return {kLargest ? argmax(a, axis, keepdims) : argmin(a, axis, keepdims)};
}

Tensors not_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  if (a.dtype() != DType::Bool) fail(n, "Not takes a bool tensor");
  return {bitwise_not(a)};
}

Tensors where_op(const Node& n, const Tensors& x) {
  const Tensor& cond = arg(n, x, 0);
  if (cond.dtype() != DType::Bool) fail(n, "Where's condition must be a bool tensor");
  return {where(cond, arg(n, x, 1), arg(n, x, 2))};
}

// Expand: bidirectional broadcast of the input against the shape.
Tensors expand_op(const Node& n, const Tensors& x) {
  const Tensor& a = arg(n, x, 0);
  const std::vector<int64_t> want = ints_of(n, arg(n, x, 1));
  Shape target;
  try {
    target = broadcast_shapes(a.shape(), Shape(want.begin(), want.end()), "Expand");
  } catch (const ShapeError& e) {
    fail(n, e.what());
  }
  return {a.expand(target)};
}

// Shape; with attribute "concat_axis" (optimize.cpp, fuse_channel_shuffles) the shape of the
// concatenation of its inputs along that axis, which is not computed.
Tensors shape_op(const Node& n, const Tensors& x) {
  Shape s = arg(n, x, 0).shape();
  if (n.has("concat_axis")) {
    const size_t axis = static_cast<size_t>(wrap_axis(n, n.attr_int("concat_axis", 0), static_cast<int64_t>(s.size())));
    for (size_t i = 1; i < x.size(); ++i) {
      Shape t = arg(n, x, i).shape();
      if (t.size() != s.size()) fail(n, "the Concat's inputs have different ranks");
      const int64_t along = t[axis];
      t[axis] = s[axis];
      if (t != s) fail(n, "the Concat's inputs differ outside axis " + std::to_string(axis));
      s[axis] += along;
    }
  }
  const auto rank = static_cast<int64_t>(s.size());
  auto at = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = at(n.attr_int("start", 0)), end = at(n.attr_int("end", rank));
  return {ints_tensor(std::vector<int64_t>(s.begin() + start, s.begin() + std::max(start, end)))};
}

Tensors gather(const Node& n, const Tensors& x) {
  const Tensor& data = arg(n, x, 0);
  const Tensor& indices = arg(n, x, 1);
  const int64_t axis = wrap_axis(n, n.attr_int("axis", 0), data.dim());
  const int64_t size = data.shape()[static_cast<size_t>(axis)];
  Tensors picked;
  for (int64_t i : ints_of(n, indices)) {
    if (i < -size || i >= size)
      fail(n, "index " + std::to_string(i) + " is out of range for size " + std::to_string(size));
    picked.push_back(data.select(axis, i < 0 ? i + size : i));
  }
  Shape shape(data.shape().begin(), data.shape().begin() + axis);
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  if (picked.empty()) return {Tensor::zeros(shape, data.dtype())};
  return {stack(picked, axis).reshape(shape)};
}

Tensors unsqueeze(const Node& n, const Tensors& x) {
  Tensor a = arg(n, x, 0);
  std::vector<int64_t> axes = given(x, 1) ? ints_of(n, x[1]) : n.attr_ints("axes");
  const auto rank = a.dim() + static_cast<int64_t>(axes.size());
  for (auto& ax : axes) ax = wrap_axis(n, ax, rank);
  std::sort(axes.begin(), axes.end());
  for (int64_t ax : axes) a = a.unsqueeze(ax);
  return {a};
}

Tensors squeeze(const Node& n, const Tensors& x) {
  Tensor a = arg(n, x, 0);
  std::vector<int64_t> axes = axes_of(n, x, 1, a.dim());
  if (axes.empty()) return {a.squeeze()};
  std::sort(axes.rbegin(), axes.rend());
  for (int64_t ax : axes) {
    if (a.shape()[static_cast<size_t>(ax)] != 1) fail(n, "dim " + std::to_string(ax) + " is not of size 1");
    a = a.squeeze(ax);
  }
  return {a};
}

Tensors cast(const Node& n, const Tensors& x) {
  switch (n.attr_int("to", 1)) {
    case 1:   // FLOAT
    case 11:  // DOUBLE: computed in float
      return {arg(n, x, 0).to(DType::Float32)};
    case 6:  // INT32
    case 7:  // INT64
      return {arg(n, x, 0).to(DType::Int64)};
    case 9:  // BOOL
      return {arg(n, x, 0).to(DType::Bool)};
    default:
      fail(n, "casts to FLOAT, DOUBLE, INT32, INT64 and BOOL are supported, not type " +
                  std::to_string(n.attr_int("to", 1)));
  }
}

Tensors constant_of_shape(const Node& n, const Tensors& x) {
  const std::vector<int64_t> shape = ints_of(n, arg(n, x, 0));
  if (!n.has("value")) return {Tensor::zeros(shape)};
  const Tensor& v = n.attrs.at("value").t;
  if (v.numel() != 1) fail(n, "value must hold one element");
  const double value =
      v.dtype() == DType::Float32 ? v.contiguous().read_ptr<float>()[0] : static_cast<double>(ints_of(n, v)[0]);
  return {Tensor::full(shape, value, v.dtype())};
}

struct OpRow {
  const char* name;
  OpFn run;
};

const OpRow kOps[] = {
    {"Abs", &unary_op<tinytorch::abs>},
    {"Add", &binary<add>},
    {"ArgMax", &arg_extremum<true>},
    {"ArgMin", &arg_extremum<false>},
    {"AveragePool", &average_pool},
    {"BatchNormalization", &batch_normalization},
    {"Cast", &cast},
    {"Clip", &clip},
    {"Concat", &concat},
    {"Constant", &identity},  // folded at import (import.cpp); never run
    {"ConstantOfShape", &constant_of_shape},
    {"Conv", &conv},
    {"Div", &binary<tinytorch::div>},
    {"Dropout", &dropout_op},
    {"Equal", &binary<eq>},
    {"Erf", &unary_op<tinytorch::erf>},
    {"Exp", &unary_op<tinytorch::exp>},
    {"Expand", &expand_op},
    {"Flatten", &flatten_op},
    {"Gather", &gather},
    {"Gemm", &gemm},
    {"GlobalAveragePool", &global_average_pool},
    {"Greater", &binary<gt>},
    {"GreaterOrEqual", &binary<ge>},
    {"HardSigmoid", &hard_sigmoid},
    {"HardSwish", &hard_swish},
    {"Identity", &identity},
    {"LeakyRelu", &leaky_relu},
    {"Less", &binary<lt>},
    {"LessOrEqual", &binary<le>},
    {"Log", &unary_op<tinytorch::log>},
    {"LogSoftmax", &log_softmax_op},
    {"MatMul", &matmul_op},
    {"Max", &variadic<maximum>},
    {"MaxPool", &max_pool},
    {"Min", &variadic<minimum>},
    {"Mul", &binary<mul>},
    {"Neg", &unary_op<neg>},
    {"Not", &not_op},
    {"Pad", &pad},
    {"Pow", &binary<tinytorch::pow>},
    {"ReduceMax", &reduce_op<amax>},
    {"ReduceMean", &reduce_op<mean>},
    {"ReduceMin", &reduce_op<amin>},
    {"ReduceSum", &reduce_op<sum>},
    {"Relu", &relu_op},
    {"Reshape", &reshape},
    {"Shape", &shape_op},
    {"Sigmoid", &sigmoid_op},
    {"Slice", &slice},
    {"Softmax", &softmax_op},
    {"Split", &split},
    {"Sqrt", &unary_op<tinytorch::sqrt>},
    {"Squeeze", &squeeze},
    {"Sub", &binary<sub>},
    {"Sum", &variadic<add>},
    {"Tanh", &unary_op<tinytorch::tanh>},
    {"Transpose", &transpose},
    {"Unsqueeze", &unsqueeze},
    {"Where", &where_op},
};

}  // namespace

OpFn blocked_op(const std::string& op) {
  if (op == "Mul") return &mul_blocked;
  if (op == "Conv") return &conv_blocked;
  if (op == "GlobalAveragePool") return &global_average_pool_blocked;
  if (op == "MaxPool") return &max_pool_blocked;
  if (op == "AveragePool") return &average_pool_blocked;
  if (op == "Concat") return &concat_blocked;
  if (op == "BatchNormalization") return &batch_normalization_blocked;
  if (op == "Pad") return &identity_blocked;  // the pass takes only a Pad of zeros
  if (op == "ToBlocked") return &to_blocked_op;
  if (op == "FromBlocked") return &from_blocked_op;
  return nullptr;
}

OpFn pointwise_depthwise_op() { return &conv_pointwise_depthwise; }

OpFn channel_shuffle_op() { return &channel_shuffle; }

OpFn find_op(const std::string& op) {
  for (const OpRow& row : kOps) {
    if (op == row.name) return row.run;
  }
  return nullptr;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpRow& row : kOps) names.emplace_back(row.name);
  return names;
}

}  // namespace tinytorch::onnx::detail

// conv2d, the op: validates once, computes the output geometry, has the selection
// (conv2d_select.cpp) pick an algorithm from the table (conv2d_table.cpp), runs it, and records
// the autograd node whose backward is in conv2d_backward.cpp.
#include "ops/conv2d.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/trace.hpp"
#include "ops/checks.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/conv2d_select.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch {

Padding2d::Padding2d(const std::string& mode) {
  if (mode == "valid") {
    this->mode = Mode::Valid;
  } else if (mode == "same") {
    this->mode = Mode::Same;
  } else {
    throw ShapeError("padding: expected an int, an (h, w) pair, 'valid' or 'same', got '" + mode + "'");
  }
}

std::string Padding2d::to_string() const {
  if (mode == Mode::Valid) return "'valid'";
  if (mode == Mode::Same) return "'same'";
  return h == w ? std::to_string(h) : ops::pair_to_string({h, w});
}

namespace ops {

kernels::Conv2dGeometry conv2d_geometry(const Shape& input, const Shape& weight, const Tensor& bias,
                                        const Conv2dOptions& o) {
  // weight: [OC, C / groups, KH, KW]
  if (weight.size() != 4) {
    throw ShapeError(
        "conv2d: expected a 4D weight (out_channels, in_channels / groups, kernel_h, kernel_w), got shape " +
        shape_to_string(weight));
  }
  if (o.groups < 1) throw ShapeError("conv2d: groups must be positive, got " + std::to_string(o.groups));
  check_at_least("conv2d", "stride", o.stride, 1);
  check_at_least("conv2d", "dilation", o.dilation, 1);
  if (o.padding.mode == Padding2d::Mode::Explicit) {
    check_at_least("conv2d", "padding", Size2{o.padding.h, o.padding.w}, 0);
  }
  check_at_most("conv2d", "stride", o.stride);
  check_at_most("conv2d", "dilation", o.dilation);
  if (o.padding.mode == Padding2d::Mode::Explicit) check_at_most("conv2d", "padding", Size2{o.padding.h, o.padding.w});
  const int64_t OC = weight[0], CG = weight[1], KH = weight[2], KW = weight[3];
  check_at_most("conv2d", "kernel size", Size2{KH, KW});
  if (OC < 1 || CG < 1 || KH < 1 || KW < 1) {
    throw ShapeError("conv2d: weight sizes must be positive, got shape " + shape_to_string(weight));
  }
  if (OC % o.groups != 0) {
    throw ShapeError("conv2d: groups=" + std::to_string(o.groups) + " must divide out_channels=" + std::to_string(OC));
  }
  // input: [N, C, H, W]
  const int64_t N = input[0], C = input[1], H = input[2], W = input[3];
  if (C != CG * o.groups) {
    throw ShapeError("Expected " + std::to_string(CG * o.groups) + " input channels, got " + std::to_string(C));
  }
  if (H < 1 || W < 1) {
    throw ShapeError("conv2d: input height and width must be positive, got shape " + shape_to_string(input));
  }
  check_at_most("conv2d", "input size", Size2{H, W});
  if (bias.defined() && bias.shape() != Shape{OC}) {
    throw ShapeError("conv2d: expected bias of shape (" + std::to_string(OC) + ",), got " +
                     shape_to_string(bias.shape()));
  }

  // Padding per side; "same" splits d * (k - 1) with the odd one at the bottom/right.
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  if (o.padding.mode == Padding2d::Mode::Explicit) {
    top = bottom = o.padding.h;
    left = right = o.padding.w;
  } else if (o.padding.mode == Padding2d::Mode::Same) {
    if (o.stride.h != 1 || o.stride.w != 1) {
      throw ShapeError("conv2d: padding='same' needs stride 1 (as in PyTorch), got stride " + pair_to_string(o.stride));
    }
    const int64_t th = o.dilation.h * (KH - 1), tw = o.dilation.w * (KW - 1);
    top = th / 2, bottom = th - top, left = tw / 2, right = tw - left;
  }
  const int64_t span_h = o.dilation.h * (KH - 1) + 1, span_w = o.dilation.w * (KW - 1) + 1;
  const int64_t padded_h = H + top + bottom, padded_w = W + left + right;
  if (span_h > padded_h || span_w > padded_w) {
    throw ShapeError("conv2d: kernel " + pair_to_string({KH, KW}) + " with dilation " + pair_to_string(o.dilation) +
                     " spans " + std::to_string(span_h) + "x" + std::to_string(span_w) +
                     ", larger than the padded input " + std::to_string(padded_h) + "x" + std::to_string(padded_w) +
                     " (input " + std::to_string(H) + "x" + std::to_string(W) + ", padding " + o.padding.to_string() +
                     ")");
  }
  kernels::Conv2dGeometry g{};
  g.N = N, g.C = C, g.H = H, g.W = W;
  g.OC = OC, g.KH = KH, g.KW = KW;
  g.OH = (padded_h - span_h) / o.stride.h + 1;
  g.OW = (padded_w - span_w) / o.stride.w + 1;
  g.stride_h = o.stride.h, g.stride_w = o.stride.w;
  g.pad_top = top, g.pad_left = left;
  g.dilation_h = o.dilation.h, g.dilation_w = o.dilation.w;
  g.groups = o.groups;
  checked_numel({N, OC, g.OH, g.OW});
  return g;
}

}  // namespace ops

// --- the op and its gradient -------------------------------------------------------------------

namespace {

// Saved: the batched input and the weight (handles: no copies) and the geometry.
struct Conv2dBackward : autograd::Node {
  Tensor input4d, weight;
  Shape input_shape;  // (C, H, W) or (N, C, H, W), as the caller gave it
  kernels::Conv2dGeometry g{};
  bool has_bias = false;
  const char* name() const override { return "Conv2dBackward"; }
  void release() override { input4d = weight = Tensor(); }
  // inputs: {input, weight, bias}
  std::vector<Tensor> backward(const Tensor& grad_output) override {
    const Tensor dy = grad_output.reshape({g.N, g.OC, g.OH, g.OW});
    std::vector<Tensor> grads(3);
    if (inputs[0].requires_grad()) {
      Tensor dx = Tensor::empty({g.N, g.C, g.H, g.W});
      ops::conv2d_backward_input(dx.data_to_write(), std::as_const(dy).data(), std::as_const(weight).data(), g);
      grads[0] = dx.reshape(input_shape);
    }
    if (inputs[1].requires_grad()) {
      grads[1] = Tensor::empty(weight.shape());
      ops::conv2d_backward_weight(grads[1].data_to_write(), std::as_const(dy).data(), std::as_const(input4d).data(), g);
    }
    if (has_bias && inputs[2].requires_grad()) {
      grads[2] = Tensor::empty({g.OC});
      ops::conv2d_backward_bias(grads[2].data_to_write(), std::as_const(dy).data(), g);
    }
    return grads;
  }
};

// The kernel rows [lo, hi) along one axis (input size H, output size OH, stride s, dilation d,
// padding p before, K taps) that read inside the input for some output pixel; the taps outside
// read only padding, for every pixel. lo is at most p / d, so that the cropped window's padding
// before stays >= 0 (the taps it keeps there read padding only, as before). With no tap inside
// the input (a window reaching past a small image), tap 0 alone, and `none` says so.
struct LiveTaps {
  int64_t lo, hi;
  bool none = false;
};
LiveTaps live_taps(int64_t H, int64_t OH, int64_t s, int64_t d, int64_t p, int64_t K) {
  auto live = [&](int64_t k) {
    const int64_t first = k * d - p;                           // the input row of output row 0
    const int64_t oh = first >= 0 ? 0 : (-first + s - 1) / s;  // the first output row inside
    return oh < OH && first + oh * s < H;
  };
  int64_t lo = 0, hi = K;
  while (lo < K && !live(lo)) ++lo;
  while (hi > lo && !live(hi - 1)) --hi;
  if (lo == K) return {0, 1, true};
  return {std::min(lo, p / d), hi};
}

// Whether every tap of the window reads only padding, for every output pixel (along either axis).
bool reads_no_input(const kernels::Conv2dGeometry& g) {
  return g.OH * g.OW > 0 && (live_taps(g.H, g.OH, g.stride_h, g.dilation_h, g.pad_top, g.KH).none ||
                             live_taps(g.W, g.OW, g.stride_w, g.dilation_w, g.pad_left, g.KW).none);
}

// The layer without the kernel rows and columns that read only padding (live_taps), or nullopt
// when every tap reads the input somewhere. A small image under a large window (a 3x3 layer of
// padding 1 on 1x1 pixels: one tap in nine; the sweep's 7x7 layer on 1x1 pixels, 1 in 49) then
// costs the taps that read it.
std::optional<kernels::Conv2dGeometry> cropped_geometry(const kernels::Conv2dGeometry& g) {
  const LiveTaps h = live_taps(g.H, g.OH, g.stride_h, g.dilation_h, g.pad_top, g.KH);
  const LiveTaps w = live_taps(g.W, g.OW, g.stride_w, g.dilation_w, g.pad_left, g.KW);
  if (h.hi - h.lo == g.KH && w.hi - w.lo == g.KW) return std::nullopt;
  kernels::Conv2dGeometry c = g;
  c.KH = h.hi - h.lo, c.KW = w.hi - w.lo;
  c.pad_top = g.pad_top - h.lo * g.dilation_h, c.pad_left = g.pad_left - w.lo * g.dilation_w;
  return c;
}

// The taps of the weight [OC, CG, KH, KW] at `src` that the cropped layer c keeps, into dst
// [OC, CG, c.KH, c.KW].
void crop_weight(float* dst, const float* src, const kernels::Conv2dGeometry& g, const kernels::Conv2dGeometry& c) {
  const int64_t row = (g.pad_top - c.pad_top) / g.dilation_h, col = (g.pad_left - c.pad_left) / g.dilation_w;
  for (int64_t i = 0, planes = g.OC * g.channels_per_group(); i < planes; ++i) {
    for (int64_t kh = 0; kh < c.KH; ++kh) {
      const float* line = src + (i * g.KH + row + kh) * g.KW + col;
      std::copy(line, line + c.KW, dst + (i * c.KH + kh) * c.KW);
    }
  }
}

Tensor conv2d_output(Conv2dAlgorithm algorithm, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     const kernels::Conv2dGeometry& g, const kernels::OutputStage& stage);

// The output of a call whose window reads only padding with some of its taps: the layer without
// them, on a copy of the weight's other taps. The copy is a prepared form of the weight (kept
// as every prepared weight is: prepared_weights.hpp), so it keeps its address from call to call
// and the algorithm's own prepared form of it is kept too. Not under a FrozenWeights scope, whose
// weights may have been given back once prepared.
std::optional<Tensor> conv2d_cropped(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     const kernels::Conv2dGeometry& g, const kernels::OutputStage& stage) {
  if (reads_no_input(g)) {
    // Every tap reads padding: the bias (the reference skips padding), the weight never read (an
    // eager call would compare all of it with a kept copy: 224 -> 133 channels under a dilated 4x4
    // window on 1x1 pixels spent 47 us on its 1.9 MiB for no multiply-add).
    Tensor y = Tensor::empty({g.N, g.OC, g.OH, g.OW});
    const int64_t P = g.OH * g.OW;
    float* out = y.data_to_write();
    for (int64_t i = 0; i < g.N * g.OC; ++i) {
      std::fill_n(out + i * P, P, bias.defined() ? bias.data()[i % g.OC] : 0.0f);
    }
    ops::apply_stage_all(out, stage, g);
    return y;
  }
  if (ops::frozen_scope_active()) return std::nullopt;
  const std::optional<kernels::Conv2dGeometry> c = cropped_geometry(g);
  if (!c) return std::nullopt;
  const Shape shape{g.OC, g.channels_per_group(), c->KH, c->KW};
  const ops::PreparedTag tag{ops::kCroppedTaps, c->KH, c->KW, g.pad_top - c->pad_top, g.pad_left - c->pad_left};
  const std::shared_ptr<const ops::PreparedWeight> taps =
      ops::prepared_weight(tag, weight.data(), weight.numel(), checked_numel(shape),
                           [&](float* dst) { crop_weight(dst, weight.data(), g, *c); });
  const Tensor w = Tensor::from_blob(const_cast<float*>(taps->prepared.data()), shape,
                                     std::const_pointer_cast<ops::PreparedWeight>(taps));
  // The cropped taps stay as filled while we hold them: their fill vouches for them, so that the
  // algorithm's own prepared form of them is not kept against a copy and compared as well.
  const ops::KnownWeight known(w.data(), taps->filled);
  return conv2d_output(Conv2dAlgorithm::Auto, x, w, bias, *c, stage);
}

// The version of the storage the kernels read the weight from (0: compare it) when that is the
// caller's (not a dense copy made for the call, new every time).
uint64_t weight_version(const Tensor& weight, const Tensor& weight_arg) {
  return weight.storage_id() == weight_arg.storage_id() ? weight.storage_id()->known_version() : 0;
}

// The output [N, OC, OH, OW] of a validated call, by `algorithm` (Auto: the selection's choice,
// on the taps that read the input: conv2d_cropped).
Tensor conv2d_output(Conv2dAlgorithm algorithm, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     const kernels::Conv2dGeometry& g, const kernels::OutputStage& stage) {
  const bool automatic = algorithm == Conv2dAlgorithm::Auto;
  if (automatic) {
    if (std::optional<Tensor> y = conv2d_cropped(x, weight, bias, g, stage)) return *y;
    algorithm = ops::choose_conv2d_algorithm(g);
  }
  if (!ops::conv2d_algorithm_row(algorithm).supports(g)) {
    throw ShapeError("conv2d: algorithm '" + to_string(algorithm) + "' does not support this shape (kernel " +
                     ops::pair_to_string({g.KH, g.KW}) + ", stride " + ops::pair_to_string({g.stride_h, g.stride_w}) +
                     ", padding " + ops::pair_to_string({g.pad_top, g.pad_left}) + ", dilation " +
                     ops::pair_to_string({g.dilation_h, g.dilation_w}) + ", groups " + std::to_string(g.groups) +
                     "; see conv2d_algorithm_supports)");
  }
  Tensor y = Tensor::empty({g.N, g.OC, g.OH, g.OW});
  if (y.numel() > 0) {
    const ops::Conv2dCall call{y.data_to_write(), std::as_const(x).data(), std::as_const(weight).data(),
                               bias.defined() ? std::as_const(bias).data() : nullptr};
    if (automatic) algorithm = ops::choose_conv2d_algorithm(g, &call);  // with autotuning on, a new shape is timed here
    ops::conv2d_algorithm_row(algorithm).run(call.out, call.in, call.w, call.b, g, stage);
  }
  return y;
}

}  // namespace

Tensor conv2d_with(Conv2dAlgorithm algorithm, const Tensor& input_arg, const Tensor& weight_arg, const Tensor& bias_arg,
                   const Conv2dOptions& options) {
  trace::Op op;
  const Tensor input = ops::dense_float(input_arg);
  const Tensor weight = ops::dense_float(weight_arg);
  const Tensor bias = ops::optional_dense_float(bias_arg);
  ops::check_image_input(input);
  const Tensor x = ops::as_batch(input);
  const kernels::Conv2dGeometry g = ops::conv2d_geometry(x.shape(), weight.shape(), bias, options);
  // A weight that requires grad under grad mode is a training step's: the optimizer changes it
  // before the next call, so its prepared form is not kept against a copy (prepared_weights.hpp).
  std::optional<ops::ChangingWeights> changing;
  if (autograd::needs_grad({&weight})) changing.emplace();
  const ops::KnownWeight known(weight.data(), weight_version(weight, weight_arg));
  const Tensor y = conv2d_output(algorithm, x, weight, bias, g, kernels::OutputStage{});
  changing.reset();
  Tensor out = input.dim() == 4 ? y : y.reshape({g.OC, g.OH, g.OW});  // [1, OC, OH, OW] -> [OC, OH, OW]
  if (autograd::needs_grad({&input, &weight, &bias})) {
    auto node = std::make_shared<Conv2dBackward>();
    node->input4d = x.detach();
    node->weight = weight.detach();
    node->input_shape = input.shape();
    node->g = g;
    node->has_bias = bias.defined();
    node->inputs = {input, weight, bias};
    attach_grad_fn(out, node);
  }
  if (op.recording()) {
    // ONNX's pads are (top, left, bottom, right); "same" puts an odd extra row at the bottom.
    const bool same = options.padding.mode == Padding2d::Mode::Same;
    const int64_t bottom = same ? g.dilation_h * (g.KH - 1) - g.pad_top : g.pad_top;
    const int64_t right = same ? g.dilation_w * (g.KW - 1) - g.pad_left : g.pad_left;
    op.record("Conv", {input_arg, weight_arg, bias_arg}, out,
              {{"kernel_shape", std::vector<int64_t>{g.KH, g.KW}},
               {"strides", std::vector<int64_t>{g.stride_h, g.stride_w}},
               {"pads", std::vector<int64_t>{g.pad_top, g.pad_left, bottom, right}},
               {"dilations", std::vector<int64_t>{g.dilation_h, g.dilation_w}},
               {"group", g.groups}});
  }
  return out;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  return conv2d_with(Conv2dAlgorithm::Auto, input, weight, bias, options);
}

namespace ops {

Tensor conv2d_fused(const Tensor& input, const Tensor& weight_arg, const Tensor& bias_arg, const Conv2dOptions& options,
                    const kernels::Epilogue& epilogue, const Tensor& residual) {
  const Tensor x = dense_float(input);
  const Tensor weight = dense_float(weight_arg);
  const Tensor bias = optional_dense_float(bias_arg);
  if (x.dim() != 4) throw ShapeError("conv2d_fused: expected an input (N, C, H, W), got " + shape_to_string(x.shape()));
  const kernels::Conv2dGeometry g = conv2d_geometry(x.shape(), weight.shape(), bias, options);
  kernels::OutputStage stage{epilogue, nullptr};
  Tensor r;
  if (residual.defined()) {
    const Shape out_shape{g.N, g.OC, g.OH, g.OW};
    if (residual.shape() != out_shape) {
      throw ShapeError("conv2d_fused: expected a residual of the output's shape " + shape_to_string(out_shape) +
                       ", got " + shape_to_string(residual.shape()));
    }
    r = dense_float(residual);
    stage.residual = std::as_const(r).data();
  }
  const KnownWeight known(weight.data(), weight_version(weight, weight_arg));
  return conv2d_output(Conv2dAlgorithm::Auto, x, weight, bias, g, stage);
}

}  // namespace ops

}  // namespace tinytorch

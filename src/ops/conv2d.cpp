// conv2d: validates once, computes the output geometry, picks an algorithm and runs it.
#include "ops/conv2d.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>

#include "kernels/cpu.hpp"
#include "kernels/gemm_packed.hpp"
#include "kernels/winograd.hpp"
#include "ops/checks.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/runtime.hpp"

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
    throw ShapeError("conv2d: expected a 4D weight (out_channels, in_channels / groups, kernel_h, kernel_w), got shape " +
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
    throw ShapeError("conv2d: groups=" + std::to_string(o.groups) + " must divide out_channels=" +
                     std::to_string(OC));
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
                     ", larger than the padded input " + std::to_string(padded_h) + "x" +
                     std::to_string(padded_w) + " (input " + std::to_string(H) + "x" + std::to_string(W) +
                     ", padding " + o.padding.to_string() + ")");
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

// --- algorithm choice ---------------------------------------------------------------------------

namespace {

struct AlgorithmName {
  Conv2dAlgorithm algorithm;
  const char* name;
};
constexpr AlgorithmName kAlgorithmNames[] = {
    {Conv2dAlgorithm::Auto, "auto"},           {Conv2dAlgorithm::Reference, "reference"},
    {Conv2dAlgorithm::Im2colGemm, "im2col"},   {Conv2dAlgorithm::Gemm1x1, "gemm1x1"},
    {Conv2dAlgorithm::Packed, "packed"},
    {Conv2dAlgorithm::Winograd, "winograd"},   {Conv2dAlgorithm::Depthwise, "depthwise"},
    {Conv2dAlgorithm::Direct, "direct"},
};

Conv2dAlgorithm algorithm_from_environment() {
  const char* env = std::getenv("TINYTORCH_CONV_ALGO");
  if (!env || !*env) return Conv2dAlgorithm::Auto;
  try {
    return conv2d_algorithm_from_string(env);
  } catch (const ShapeError&) {
    return Conv2dAlgorithm::Auto;  // an unknown name falls back to the heuristic, never stops the program
  }
}

std::atomic<Conv2dAlgorithm>& algorithm_setting() {
  static std::atomic<Conv2dAlgorithm> setting{algorithm_from_environment()};
  return setting;
}

bool supports(Conv2dAlgorithm a, const kernels::Conv2dGeometry& g) {
  switch (a) {
    case Conv2dAlgorithm::Auto:
    case Conv2dAlgorithm::Reference:
    case Conv2dAlgorithm::Im2colGemm:
    case Conv2dAlgorithm::Packed:
      return true;
    case Conv2dAlgorithm::Gemm1x1:
      return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
             g.OH == g.H && g.OW == g.W;
    case Conv2dAlgorithm::Winograd:
      return kernels::winograd_f43_supports(g) || kernels::winograd_s2_supports(g);
    case Conv2dAlgorithm::Depthwise:
      return g.groups == g.C && g.groups > 1;
    case Conv2dAlgorithm::Direct:
      return g.groups == 1;
  }
  return false;
}

// The heuristic, from the benchmark shapes (bench/conv_bench.cpp) on both ISAs:
// - depthwise layers: the direct depthwise kernel (2-4x any GEMM form);
// - 3x3, stride 1, at least 16 channels in and out and 4 panels of tiles: Winograd F(4x4, 3x3)
//   (1.5-2.6x the best direct form; with fewer channels or tiles its transforms cost more than
//   the multiplies it saves: seed_conv2, batch 1 on 13x13, is 2x slower in Winograd);
// - 3x3, stride 2, the same conditions: Winograd's stride-2 scheme (25 multiplies for 36; 1.2x
//   the direct kernel on resnet_3x3_s2);
// - other layers with at least 32 taps (C*KH*KW), or at batch 1, except 1x1: direct, which skips
//   the im2col copy (1.1-1.6x packed with AVX-512, 1.0-1.4x with AVX2; the fastest at batch 1);
// - 1x1 stride-1 layers without padding whose pixels fill whole tiles: direct, reading the input
//   in place (1.1x packed on resnet_1x1_expand, 1.3x on mobilenet_pw_1x1);
// - everything else (few taps, 1x1): packed, our micro-kernel on im2col panels (1.5-2.3x
//   OpenBLAS 0.3.21 with AVX-512, which it does not use on this CPU; 1.0-1.2x with AVX2).
// OpenBLAS (im2col, gemm1x1) is never faster on these shapes, and stays available by request.
Conv2dAlgorithm heuristic(const kernels::Conv2dGeometry& g) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  if (supports(Conv2dAlgorithm::Depthwise, g)) return Conv2dAlgorithm::Depthwise;
  const int64_t tiles = g.stride_h == 1 ? kernels::winograd_f43_tiles(g) : kernels::winograd_s2_tiles(g);
  if (supports(Conv2dAlgorithm::Winograd, g) && g.C >= 16 && g.OC >= 16 && tiles >= 4 * tile.nr) {
    return Conv2dAlgorithm::Winograd;
  }
  const bool one_by_one = g.KH == 1 && g.KW == 1;
  if (supports(Conv2dAlgorithm::Direct, g) &&
      ((!one_by_one && (g.C * g.KH * g.KW >= 32 || g.N == 1)) || ops::conv2d_direct_reads_in_place(g))) {
    return Conv2dAlgorithm::Direct;
  }
  return Conv2dAlgorithm::Packed;
}

void run(Conv2dAlgorithm a, float* out, const float* in, const float* w, const float* b, const kernels::Conv2dGeometry& g);

// --- autotuning ---------------------------------------------------------------------------------
// When on, the first call of each shape times every fast algorithm that supports it and keeps the
// fastest, keyed by the shape, the thread count and the ISA (which change what is fastest).

std::atomic<bool>& autotune_setting() {
  static std::atomic<bool> setting{[] {
    const char* env = std::getenv("TINYTORCH_CONV_AUTOTUNE");
    return env && std::string(env) == "1";
  }()};
  return setting;
}

using TuneKey = std::array<int64_t, 18>;

TuneKey tune_key(const kernels::Conv2dGeometry& g) {
  return {g.N,        g.C,        g.H,          g.W,          g.OC,         g.KH,       g.KW,
          g.OH,       g.OW,       g.stride_h,   g.stride_w,   g.pad_top,    g.pad_left, g.dilation_h,
          g.dilation_w, g.groups, get_num_threads(), static_cast<int64_t>(kernels::cpu_isa())};
}

struct TuneCache {
  std::mutex mutex;
  std::map<TuneKey, Conv2dAlgorithm> best;
};

TuneCache& tune_cache() {
  static TuneCache cache;
  return cache;
}

bool tuned(const kernels::Conv2dGeometry& g, Conv2dAlgorithm& algorithm) {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  const auto it = cache.best.find(tune_key(g));
  if (it == cache.best.end()) return false;
  algorithm = it->second;
  return true;
}

// A call's tensors.
struct CallData {
  float* out;
  const float *in, *w, *b;
};

// Times each fast algorithm on the call's own tensors (one warm-up run, then the best of three)
// and remembers the fastest. `out` is overwritten; the caller runs the winner on it afterwards.
Conv2dAlgorithm tune(const kernels::Conv2dGeometry& g, const CallData& d) {
  Conv2dAlgorithm best = heuristic(g);
  double best_seconds = std::numeric_limits<double>::infinity();
  for (Conv2dAlgorithm a : {Conv2dAlgorithm::Packed, Conv2dAlgorithm::Direct, Conv2dAlgorithm::Winograd,
                            Conv2dAlgorithm::Depthwise, Conv2dAlgorithm::Im2colGemm, Conv2dAlgorithm::Gemm1x1}) {
    if (!supports(a, g)) continue;
    run(a, d.out, d.in, d.w, d.b, g);
    double seconds = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      run(a, d.out, d.in, d.w, d.b, g);
      seconds = std::min(seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (seconds < best_seconds) best = a, best_seconds = seconds;
  }
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  cache.best[tune_key(g)] = best;
  return best;
}

// The algorithm for a call: a forced one where it applies; else, with autotuning on, the tuned
// one (tuning now when the call's tensors are given and the shape is new); else the heuristic.
Conv2dAlgorithm choose(const kernels::Conv2dGeometry& g, const CallData* data = nullptr) {
  const Conv2dAlgorithm forced = algorithm_setting().load();
  if (forced != Conv2dAlgorithm::Auto && supports(forced, g)) return forced;
  if (autotune_setting().load()) {
    Conv2dAlgorithm a;
    if (tuned(g, a)) return a;
    if (data) return tune(g, *data);
  }
  return heuristic(g);
}

void run(Conv2dAlgorithm a, float* out, const float* in, const float* w, const float* b, const kernels::Conv2dGeometry& g) {
  switch (a) {
    case Conv2dAlgorithm::Reference: return kernels::conv2d_forward_reference(out, in, w, b, g);
    case Conv2dAlgorithm::Gemm1x1: return ops::conv2d_gemm1x1(out, in, w, b, g);
    case Conv2dAlgorithm::Packed: return ops::conv2d_packed(out, in, w, b, g);
    case Conv2dAlgorithm::Winograd: return ops::conv2d_winograd(out, in, w, b, g);
    case Conv2dAlgorithm::Depthwise: return ops::conv2d_depthwise(out, in, w, b, g);
    case Conv2dAlgorithm::Direct: return ops::conv2d_direct(out, in, w, b, g);
    case Conv2dAlgorithm::Auto:
    case Conv2dAlgorithm::Im2colGemm: return ops::conv2d_im2col_gemm(out, in, w, b, g);
  }
}

kernels::Conv2dGeometry geometry_of(const Shape& input, const Shape& weight, const Conv2dOptions& options) {
  if (input.size() != 3 && input.size() != 4) {
    throw ShapeError("Expected 3D input (channels, height, width), got " + std::to_string(input.size()) +
                     "D (a batch is 4D: (batch, channels, height, width))");
  }
  Shape batched = input;
  if (batched.size() == 3) batched.insert(batched.begin(), 1);
  return ops::conv2d_geometry(batched, weight, Tensor(), options);
}

}  // namespace

std::string to_string(Conv2dAlgorithm algorithm) {
  for (const auto& [a, name] : kAlgorithmNames)
    if (a == algorithm) return name;
  return "unknown";
}

Conv2dAlgorithm conv2d_algorithm_from_string(const std::string& name) {
  std::string known;
  for (const auto& [a, n] : kAlgorithmNames) {
    if (name == n) return a;
    known += known.empty() ? n : std::string(", ") + n;
  }
  throw ShapeError("unknown conv2d algorithm '" + name + "': expected one of " + known);
}

std::vector<Conv2dAlgorithm> all_conv2d_algorithms() {
  std::vector<Conv2dAlgorithm> out;
  for (const auto& [a, name] : kAlgorithmNames)
    if (a != Conv2dAlgorithm::Auto) out.push_back(a);
  return out;
}

void set_conv2d_algorithm(Conv2dAlgorithm algorithm) { algorithm_setting().store(algorithm); }
Conv2dAlgorithm get_conv2d_algorithm() { return algorithm_setting().load(); }

void set_conv2d_autotune(bool enabled) { autotune_setting().store(enabled); }
bool get_conv2d_autotune() { return autotune_setting().load(); }

void clear_conv2d_autotune_cache() {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  cache.best.clear();
}

void set_weight_cache_bytes(int64_t bytes) {
  if (bytes < 0) {
    throw ShapeError("set_weight_cache_bytes: expected a budget of 0 bytes or more, got " + std::to_string(bytes));
  }
  ops::set_prepared_weight_budget(bytes);
}
int64_t get_weight_cache_bytes() { return ops::prepared_weight_stats().budget_bytes; }
int64_t weight_cache_held_bytes() { return ops::prepared_weight_stats().bytes; }
void clear_weight_cache() { ops::clear_prepared_weights(); }

int64_t conv2d_autotune_cache_size() {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  return static_cast<int64_t>(cache.best.size());
}

bool conv2d_algorithm_supports(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options) {
  return supports(algorithm, geometry_of(input, weight, options));
}

Conv2dAlgorithm select_conv2d_algorithm(const Shape& input, const Shape& weight, const Conv2dOptions& options) {
  return choose(geometry_of(input, weight, options));
}

int64_t conv2d_workspace_bytes(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options) {
  const kernels::Conv2dGeometry g = geometry_of(input, weight, options);
  if (algorithm == Conv2dAlgorithm::Auto) algorithm = choose(g);
  switch (algorithm) {
    case Conv2dAlgorithm::Im2colGemm: return ops::conv2d_im2col_workspace_bytes(g);
    case Conv2dAlgorithm::Packed: return ops::conv2d_packed_workspace_bytes(g) + ops::conv2d_packed_shared_bytes(g);
    case Conv2dAlgorithm::Winograd:
      return supports(algorithm, g) ? ops::conv2d_winograd_workspace_bytes(g) + ops::conv2d_winograd_shared_bytes(g) : 0;
    case Conv2dAlgorithm::Direct:
      return supports(algorithm, g) ? ops::conv2d_direct_workspace_bytes(g) + ops::conv2d_direct_shared_bytes(g) : 0;
    case Conv2dAlgorithm::Depthwise:
      return supports(algorithm, g) ? kernels::depthwise_padded_plane_floats(g) * 4 : 0;
    default: return 0;
  }
}

namespace ops {

void conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                    const kernels::Conv2dGeometry& g) {
  const CallData data{out, in, weight, bias};
  run(choose(g, &data), out, in, weight, bias, g);
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
      ops::conv2d_backward_input(dx.data(), dy.data(), weight.data(), g);
      grads[0] = dx.reshape(input_shape);
    }
    if (inputs[1].requires_grad()) {
      grads[1] = Tensor::empty(weight.shape());
      ops::conv2d_backward_weight(grads[1].data(), dy.data(), input4d.data(), g);
    }
    if (has_bias && inputs[2].requires_grad()) {
      grads[2] = Tensor::empty({g.OC});
      ops::conv2d_backward_bias(grads[2].data(), dy.data(), g);
    }
    return grads;
  }
};

}  // namespace

Tensor conv2d_with(Conv2dAlgorithm algorithm, const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const Conv2dOptions& options) {
  ops::check_image_input(input);
  const Tensor x = ops::as_batch(input);
  const kernels::Conv2dGeometry g = ops::conv2d_geometry(x.shape(), weight.shape(), bias, options);
  const bool automatic = algorithm == Conv2dAlgorithm::Auto;
  if (automatic) algorithm = choose(g);
  if (!supports(algorithm, g)) {
    throw ShapeError("conv2d: algorithm '" + to_string(algorithm) + "' does not support this shape (kernel " +
                     ops::pair_to_string({g.KH, g.KW}) + ", stride " + ops::pair_to_string({g.stride_h, g.stride_w}) +
                     ", padding " + ops::pair_to_string({g.pad_top, g.pad_left}) + ", dilation " +
                     ops::pair_to_string({g.dilation_h, g.dilation_w}) + ", groups " + std::to_string(g.groups) +
                     "; see conv2d_algorithm_supports)");
  }
  Tensor y = Tensor::empty({g.N, g.OC, g.OH, g.OW});
  if (y.numel() > 0) {
    const CallData data{y.data(), x.data(), weight.data(), bias.defined() ? bias.data() : nullptr};
    if (automatic) algorithm = choose(g, &data);  // with autotuning on, a new shape is timed here
    run(algorithm, data.out, data.in, data.w, data.b, g);
  }
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
  return out;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  return conv2d_with(Conv2dAlgorithm::Auto, input, weight, bias, options);
}

}  // namespace tinytorch

// The channel-blocked layout's convolution (kernels/blocked/, ops/conv2d_blocked.hpp) against the
// plain reference on randomized shapes: dense layers on blocked and plain inputs, depthwise layers,
// channel counts that leave padding lanes, kernels 1-5 (odd and even), strides 1-3, dilations 1-3,
// plain inputs also as stems (3-8 channels, strides 3-4, windows up to 11),
// asymmetric padding, any cut into work items; at this process's width and at 16 lanes compiled
// for AVX2 (AVX-512's layout, run on any machine), with the fused stage (residual and activation).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/blocked/blocked.hpp"
#include "kernels/conv2d.hpp"
#include "ops/conv2d_blocked.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;
namespace k = tinytorch::kernels;

namespace {

struct Case {
  k::BlockedConv g;
  int64_t pad_bottom, pad_right;
};

Case random_case(std::mt19937& rng, bool depthwise, bool plain_input) {
  auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  while (true) {
    Case c{};
    k::BlockedConv& g = c.g;
    g.N = pick(1, 3), g.H = pick(1, 13), g.W = pick(1, 13);
    if (depthwise && pick(0, 3) == 0) g.N = 1, g.H = pick(50, 70), g.W = pick(50, 70);  // read in place
    g.C = plain_input ? pick(1, 5) : pick(1, 40);
    g.OC = depthwise ? g.C : (pick(0, 3) == 0 ? pick(41, 100) : pick(1, 40));  // several weight panels
    g.KH = pick(1, 5), g.KW = pick(1, 5);
    g.stride_h = pick(1, 3), g.stride_w = pick(1, 3);
    g.dilation_h = pick(0, 3) == 0 ? pick(2, 3) : 1, g.dilation_w = pick(0, 3) == 0 ? pick(2, 3) : 1;
    g.pad_top = pick(0, 2), g.pad_left = pick(0, 2), c.pad_bottom = pick(0, 2), c.pad_right = pick(0, 2);
    if (pick(0, 3) == 0) g.pad_top = g.pad_left = c.pad_bottom = c.pad_right = 0;  // read in place
    if (plain_input && pick(0, 2) == 0) {  // a stem: up to 8 channels, stride 3-4, a window of up to 11
      g.C = pick(3, 8), g.stride_h = pick(3, 4), g.stride_w = pick(3, 4);
      g.KH = pick(g.stride_h, 11), g.KW = pick(g.stride_w, 11), g.dilation_h = g.dilation_w = 1;
      g.H = pick(g.KH, 40), g.W = pick(g.KW, 40);
    }
    g.in_blocked = !plain_input, g.depthwise = depthwise;
    const int64_t eh = g.dilation_h * (g.KH - 1) + 1, ew = g.dilation_w * (g.KW - 1) + 1;
    const int64_t ph = g.H + g.pad_top + c.pad_bottom, pw = g.W + g.pad_left + c.pad_right;
    if (ph < eh || pw < ew) continue;
    g.OH = (ph - eh) / g.stride_h + 1, g.OW = (pw - ew) / g.stride_w + 1;
    return c;
  }
}

std::vector<float> random_floats(std::mt19937& rng, int64_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// Plain [N, C, P] -> blocked, the padding lanes set to `pad` (finite: the kernels must ignore them).
std::vector<float> blocked_of(const std::vector<float>& plain, int64_t N, int64_t C, int64_t P, int64_t lanes,
                              float pad) {
  std::vector<float> out(static_cast<size_t>(N * k::blocked_blocks(C, lanes) * P * lanes), pad);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> one(static_cast<size_t>(k::blocked_blocks(C, lanes) * P * lanes));
    k::to_blocked(one.data(), plain.data() + n * C * P, C, P, lanes);
    for (int64_t cb = 0; cb < k::blocked_blocks(C, lanes); ++cb)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t l = 0; l < lanes && cb * lanes + l < C; ++l) {
          const size_t at = static_cast<size_t>(((n * k::blocked_blocks(C, lanes) + cb) * P + p) * lanes + l);
          out[at] = one[static_cast<size_t>((cb * P + p) * lanes + l)];
        }
  }
  return out;
}

k::Conv2dGeometry plain_geometry(const k::BlockedConv& g) {
  k::Conv2dGeometry p{};
  p.N = g.N, p.C = g.C, p.H = g.H, p.W = g.W, p.OC = g.OC, p.KH = g.KH, p.KW = g.KW, p.OH = g.OH, p.OW = g.OW;
  p.stride_h = g.stride_h, p.stride_w = g.stride_w, p.pad_top = g.pad_top, p.pad_left = g.pad_left;
  p.dilation_h = g.dilation_h, p.dilation_w = g.dilation_w, p.groups = g.depthwise ? g.C : 1;
  return p;
}

using Item = void (*)(float*, const float*, const float*, const float*, const k::BlockedConv&, int64_t, int64_t,
                      int64_t, int64_t, int64_t, float*, const k::OutputStage&);

// The activations the stores fuse, clamps and smooth ones (simd/exp_poly.hpp).
const k::Epilogue kEpilogues[] = {{k::Activation::Clip, -0.5f, 0.75f},        {k::Activation::Swish, 0, 0},
                                  {k::Activation::HardSwish, 1.0f / 6, 0.5f}, {k::Activation::Sigmoid, 0, 0},
                                  {k::Activation::LeakyRelu, 0.1f, 0},        {k::Activation::HardSigmoid, 0.2f, 0.5f}};

// One case at `lanes` through `item`, cut into random work items, against the reference; with a
// residual and the activation `epilogue` when given.
void check(std::mt19937& rng, const Case& c, int64_t lanes, Item item, const k::Epilogue* epilogue) {
  const bool staged = epilogue != nullptr;
  const k::BlockedConv& g = c.g;
  SCOPED_TRACE(::testing::Message() << "lanes " << lanes << (g.depthwise ? " depthwise" : "")
                                    << (g.in_blocked ? "" : " plain input") << " N" << g.N << " C" << g.C << " " << g.H
                                    << "x" << g.W << " OC" << g.OC << " k" << g.KH << "x" << g.KW << " s" << g.stride_h
                                    << "," << g.stride_w << " d" << g.dilation_h << "," << g.dilation_w << " pads "
                                    << g.pad_top << "," << g.pad_left << "," << c.pad_bottom << "," << c.pad_right);
  const int64_t P = g.H * g.W, OP = g.OH * g.OW, OB = k::blocked_blocks(g.OC, lanes);
  const std::vector<float> x = random_floats(rng, g.N * g.C * P);
  const std::vector<float> w = random_floats(rng, g.OC * (g.depthwise ? 1 : g.C) * g.KH * g.KW);
  const std::vector<float> bias = random_floats(rng, g.OC);
  std::vector<float> want(static_cast<size_t>(g.N * g.OC * OP)), bound(want.size());
  k::conv2d_forward_reference(want.data(), x.data(), w.data(), bias.data(), plain_geometry(g));
  std::vector<float> ax(x.size()), aw(w.size()), ab(bias.size());
  std::transform(x.begin(), x.end(), ax.begin(), [](float v) { return std::fabs(v); });
  std::transform(w.begin(), w.end(), aw.begin(), [](float v) { return std::fabs(v); });
  std::transform(bias.begin(), bias.end(), ab.begin(), [](float v) { return std::fabs(v); });
  k::conv2d_forward_reference(bound.data(), ax.data(), aw.data(), ab.data(), plain_geometry(g));

  const std::vector<float> in = g.in_blocked ? blocked_of(x, g.N, g.C, P, lanes, 7.0f) : x;
  std::vector<float> packed(static_cast<size_t>(k::blocked_weight_floats(g, lanes)));
  // in two calls, as threads share it: the units are independent
  const int64_t units = k::blocked_weight_units(g, lanes);
  k::pack_blocked_weight(packed.data(), w.data(), g, lanes, units / 2, units);
  k::pack_blocked_weight(packed.data(), w.data(), g, lanes, 0, units / 2);
  std::vector<float> packed_bias(static_cast<size_t>(OB * lanes));
  k::pack_blocked_bias(packed_bias.data(), bias.data(), g, lanes);
  const std::vector<float> residual = random_floats(rng, g.N * OB * OP * lanes);
  k::OutputStage stage;
  if (staged) stage = {*epilogue, residual.data()};

  std::vector<float> out(static_cast<size_t>(g.N * OB * OP * lanes), NAN);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  // Items of 1-6 blocks: a dense item's range starts and ends anywhere in the weight panels.
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oh0 = 0; oh0 < g.OH;) {
      const int64_t oh1 = std::min(g.OH, oh0 + pick(1, 4));
      for (int64_t ob0 = 0; ob0 < OB;) {
        const int64_t ob1 = std::min(OB, ob0 + pick(1, 6));
        std::vector<float> scratch(static_cast<size_t>(k::blocked_scratch_floats(g, oh1 - oh0, lanes)) + 16, NAN);
        item(out.data(), in.data(), packed.data(), packed_bias.data(), g, n, ob0, ob1, oh0, oh1, scratch.data(), stage);
        ob0 = ob1;
      }
      oh0 = oh1;
    }
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc)
      for (int64_t p = 0; p < OP; ++p) {
        const size_t at = static_cast<size_t>(((n * OB + oc / lanes) * OP + p) * lanes + oc % lanes);
        const double sum = want[static_cast<size_t>((n * g.OC + oc) * OP + p)] + (staged ? residual[at] : 0.0f);
        const double expect = staged ? k::activation_reference(sum, *epilogue) : sum;
        // The bound a float32 sum of K products can reach (README, "Numerics"), with the residual's
        // add; through an activation of slope at most 1.1 (HardSwish), plus its own few ulp.
        const double K = static_cast<double>((g.depthwise ? 1 : g.C) * g.KH * g.KW), u = std::ldexp(1.0, -24);
        const double tol =
            1.1 * (K + 3) * u * (bound[static_cast<size_t>((n * g.OC + oc) * OP + p)] + std::fabs(residual[at])) +
            8 * u * std::fabs(expect) + 1e-30;
        ASSERT_NEAR(out[at], expect, tol) << "image " << n << " channel " << oc << " pixel " << p;
      }
  for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << "output float " << i << " not written";
}

// An item run as the fused pointwise-depthwise layer runs its parts: on a band of the image, the
// input rows [e0, e1) its output rows [oh0, oh1) read, read in place through in_plane (the full
// input's plane) and written in place through out_plane (the full output's), the padding above
// the band's first row what is left of pad_top. The residual goes at the output's offset.
template <Item Run, int64_t Lanes>
void band_item(float* out, const float* in, const float* weight, const float* bias, const k::BlockedConv& g, int64_t n,
               int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1, float*, const k::OutputStage& stage) {
  const int64_t B = Lanes > 0 ? Lanes : k::blocked_lanes();
  const int64_t e0 = std::max<int64_t>(0, oh0 * g.stride_h - g.pad_top);
  const int64_t e1 = std::min(g.H, (oh1 - 1) * g.stride_h - g.pad_top + (g.KH - 1) * g.dilation_h + 1);
  k::BlockedConv band = g;
  band.N = 1;
  band.H = std::max<int64_t>(0, e1 - e0);  // 0: rows that read the bottom padding only
  band.pad_top = g.pad_top + e0 - oh0 * g.stride_h;
  band.OH = oh1 - oh0;
  band.in_plane = g.H * g.W * B;
  band.out_plane = g.OH * g.OW * B;
  const int64_t at = n * k::blocked_blocks(g.OC, B) * g.OH * g.OW * B + oh0 * g.OW * B;
  const float* from = in + n * k::blocked_blocks(g.C, B) * g.H * g.W * B + (band.H > 0 ? e0 * g.W * B : 0);
  std::vector<float> scratch(static_cast<size_t>(k::blocked_scratch_floats(band, band.OH, B)) + 16, NAN);
  const k::OutputStage shifted{stage.epilogue, stage.residual ? stage.residual + at : nullptr};
  Run(out + at, from, weight, bias, band, 0, ob0, ob1, 0, band.OH, scratch.data(), shifted);
}

void sweep(int seed, bool depthwise, bool plain_input) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (int i = 0; i < 60; ++i) {
    const Case c = random_case(rng, depthwise, plain_input);
    const k::Epilogue* e = &kEpilogues[i / 3 % 6];
    check(rng, c, k::blocked_lanes(), &k::blocked_conv, i % 3 == 0 ? e : nullptr);
    if (::testing::Test::HasFatalFailure()) return;
    check(rng, c, 16, &k::blocked_conv_wide_on_avx2, i % 3 == 1 ? e : nullptr);  // every machine here has AVX2
    if (::testing::Test::HasFatalFailure()) return;
    if (plain_input) continue;  // the planes' strides are a blocked input's
    check(rng, c, k::blocked_lanes(), &band_item<&k::blocked_conv, 0>, i % 3 == 2 ? e : nullptr);
    if (::testing::Test::HasFatalFailure()) return;
    check(rng, c, 16, &band_item<&k::blocked_conv_wide_on_avx2, 16>, i % 3 == 0 ? e : nullptr);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace

TEST(BlockedLayout, DenseOnBlockedInputsMatchesTheReference) { sweep(1, false, false); }

// Runs of many pixels, which the random cases (13 columns at most) reach rarely: pointwise layers
// read in place (one run over the item's rows, tiles of 24 pixels of one output block on AVX-512,
// then 12, 6 and the rest) and an unpadded 3x3 layer on 30-pixel rows, for 1-3 output blocks.
TEST(BlockedLayout, DenseRunsOfManyPixels) {
  std::mt19937 rng(11);
  for (const int64_t OC : {5, 16, 24, 40}) {
    for (const int64_t K : {1, 3}) {
      Case c{};
      k::BlockedConv& g = c.g;
      g.N = 2, g.C = K == 1 ? 37 : 19, g.H = K == 1 ? 9 : 6, g.W = K == 1 ? 31 : 32, g.OC = OC, g.KH = g.KW = K;
      g.stride_h = g.stride_w = g.dilation_h = g.dilation_w = 1;
      g.OH = g.H - K + 1, g.OW = g.W - K + 1;
      const k::Epilogue* e = OC == 24 ? &kEpilogues[1] : OC == 40 ? &kEpilogues[0] : nullptr;
      check(rng, c, k::blocked_lanes(), &k::blocked_conv, e);
      check(rng, c, 16, &k::blocked_conv_wide_on_avx2, e);
      check(rng, c, k::blocked_lanes(), &band_item<&k::blocked_conv, 0>, nullptr);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  // Pointwise layers of many input blocks, the last one part full (the weights in chunks whose
  // sums go through the output), on pixel counts that end in shorter tiles: 7x7 (49 = 4 x 6 + 5 x
  // 5 on 8 lanes), 5x5, 3x3 and one pixel per image, stride 1 read in place and stride 2.
  for (const int64_t HW : {7, 5, 3, 1}) {
    for (const int64_t OC : {16, 24, 9}) {
      Case c{};
      k::BlockedConv& g = c.g;
      const int64_t s = HW == 5 ? 2 : 1;
      g.N = 2, g.C = 8 * 70 + 3, g.H = g.W = HW * s, g.OC = OC, g.KH = g.KW = 1;
      g.stride_h = g.stride_w = s, g.dilation_h = g.dilation_w = 1;
      g.OH = g.OW = HW;
      check(rng, c, k::blocked_lanes(), &k::blocked_conv, OC == 24 ? &kEpilogues[2] : nullptr);
      check(rng, c, 16, &k::blocked_conv_wide_on_avx2, nullptr);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(BlockedLayout, DenseOnPlainInputsMatchesTheReference) { sweep(2, false, true); }
TEST(BlockedLayout, DepthwiseMatchesTheReference) { sweep(3, true, false); }

// The op layer: blocked in, blocked out, the same as the plain convolution with the stage, on 1
// and 2 threads; and the layout changes round-trip.
TEST(BlockedLayout, OpsMatchThePlainConvolutionOnOneAndTwoThreads) {
  const int threads_before = tt::get_num_threads();
  for (int i = 0; i < 12; ++i) {
    const bool depthwise = i % 3 == 2;
    const int64_t N = 1 + i % 2, C = depthwise ? 24 : 5 + 7 * i, OC = depthwise ? C : 8 + 5 * i, H = 9 + i, W = 17 - i;
    const int64_t K = 1 + 2 * (i % 3), s = 1 + i % 2, p = K / 2;
    const tt::Tensor x = tt::Tensor::randn({N, C, H, W});
    const tt::Tensor w = tt::Tensor::randn({OC, depthwise ? 1 : C, K, K});
    const tt::Tensor b = tt::Tensor::randn({OC});
    tt::Conv2dOptions o;
    o.stride = tt::Size2{s, s}, o.padding = tt::Padding2d(p, p), o.groups = depthwise ? C : 1;
    const tt::Tensor plain = tt::relu(tt::conv2d(x, w, b, o));
    tt::ops::BlockedConvOptions bo;
    bo.stride = {s, s}, bo.pads = {p, p, p, p}, bo.depthwise = depthwise;
    const tt::kernels::Epilogue relu{tt::kernels::Activation::Relu};
    const tt::Tensor bx = tt::ops::to_blocked(x);
    for (int threads : {1, 2}) {
      tt::set_num_threads(threads);
      const tt::Tensor from_blocked = tt::ops::conv2d_blocked(bx, C, w, b, bo, relu, tt::Tensor());
      const tt::Tensor from_plain =
          depthwise ? from_blocked : tt::ops::conv2d_blocked(x, C, w, b, bo, relu, tt::Tensor());
      for (const tt::Tensor& y : {from_blocked, from_plain}) {
        const tt::Tensor back = tt::ops::from_blocked(y, OC);
        ASSERT_EQ(back.shape(), plain.shape());
        for (int64_t j = 0; j < back.numel(); ++j)
          ASSERT_NEAR(back.data()[j], plain.data()[j], 1e-5 * (1 + std::fabs(plain.data()[j])) * C) << "case " << i;
      }
    }
  }
  tt::set_num_threads(threads_before);
  const tt::Tensor x = tt::Tensor::randn({2, 13, 3, 5});
  const tt::Tensor back = tt::ops::from_blocked(tt::ops::to_blocked(x), 13);
  for (int64_t j = 0; j < x.numel(); ++j) EXPECT_EQ(back.data()[j], x.data()[j]);
  const tt::Tensor pooled = tt::ops::from_blocked(tt::ops::global_average_pool_blocked(tt::ops::to_blocked(x)), 13);
  const tt::Tensor want = tt::mean(x, {2, 3}, true);
  ASSERT_EQ(pooled.shape(), want.shape());
  for (int64_t j = 0; j < want.numel(); ++j) EXPECT_NEAR(pooled.data()[j], want.data()[j], 1e-6);
  // Planes of many runs of 32 pixels (float runs, double across them): within a few ulp of the
  // double mean, relative to the mean magnitude (values offset by 3 so the mean is far from 0).
  const tt::Tensor big = tt::Tensor::randn({2, 20, 37, 41}) + tt::Tensor::full({2, 20, 37, 41}, 3.0f);
  const tt::Tensor big_pooled =
      tt::ops::from_blocked(tt::ops::global_average_pool_blocked(tt::ops::to_blocked(big)), 20);
  for (int64_t plane = 0; plane < 40; ++plane) {
    double sum = 0, magnitude = 0;
    for (int64_t q = 0; q < 37 * 41; ++q)
      sum += big.data()[plane * 37 * 41 + q], magnitude += std::fabs(big.data()[plane * 37 * 41 + q]);
    const double mean = sum / (37 * 41), scale = magnitude / (37 * 41);
    EXPECT_NEAR(big_pooled.data()[plane], mean, 40 * std::ldexp(1.0, -24) * scale) << "plane " << plane;
  }
  // A squeeze-excitation gate: x [2, 13, 3, 5] * s [2, 13, 1, 1], in the blocked layout.
  const tt::Tensor gate = tt::Tensor::randn({2, 13, 1, 1});
  const tt::Tensor scaled = tt::ops::scale_blocked(tt::ops::to_blocked(x), tt::ops::to_blocked(gate));
  ASSERT_TRUE(scaled.defined());
  const tt::Tensor gated = tt::ops::from_blocked(scaled, 13), gated_want = tt::mul(x, gate);
  for (int64_t j = 0; j < x.numel(); ++j) EXPECT_EQ(gated.data()[j], gated_want.data()[j]);
  EXPECT_FALSE(tt::ops::scale_blocked(tt::ops::to_blocked(x), tt::ops::to_blocked(x)).defined());  // not a gate
}

// A call is cut into enough work items to keep the threads busy: at least one per thread, or one
// per output row of each image where there are fewer. (A layer with one output panel whose rows
// fit one band was once a single item: 16 -> 64 channels 3x3 at 55x55 ran on one thread of two.)
TEST(BlockedLayout, CallsAreCutIntoEnoughWorkItems) {
  std::mt19937 rng(5);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int i = 0; i < 300; ++i) {
    const bool depthwise = i % 3 == 0;
    const int64_t N = pick(1, 3), C = i == 0 ? 16 : pick(1, 96), H = i == 0 ? 55 : pick(1, 60), K = pick(1, 3) * 2 - 1;
    const int64_t OC = depthwise ? C : (i == 0 ? 64 : pick(1, 96)), pad = K / 2;
    tt::ops::BlockedConvOptions o;
    o.stride = {pick(1, 2), 1}, o.pads = {pad, pad, pad, pad}, o.depthwise = depthwise;
    const int64_t B = tt::ops::blocked_lanes();
    const tt::Tensor x = tt::Tensor::zeros({N, (C + B - 1) / B, H, H, B});
    const tt::Tensor w = tt::Tensor::zeros({OC, depthwise ? 1 : C, K, K});
    const int64_t OH = (H + 2 * pad - K) / o.stride[0] + 1;
    for (int threads : {2, 4, 7}) {
      const int64_t items = tt::ops::conv2d_blocked_work_items(x, C, w, o, threads);
      EXPECT_GE(items, std::min<int64_t>(threads, N * OH))
          << "N" << N << " C" << C << " OC" << OC << " " << H << "x" << H << " k" << K << " s" << o.stride[0]
          << (depthwise ? " depthwise" : "") << ", " << threads << " threads";
    }
  }
}

// A pointwise layer and the depthwise layer after it in one call (the graph runtime's fused node)
// give the two calls' values bit for bit, fused (a middle tensor past 1 MiB per image: large
// images) or not, with a residual and activations, any window of the depthwise layer, on 1 and 2
// threads; its bad shapes are ShapeErrors.
TEST(BlockedLayout, PointwiseThenDepthwiseInOneCallEqualsTwoCalls) {
  const int threads_before = tt::get_num_threads();
  std::mt19937 rng(11);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const int64_t B = tt::ops::blocked_lanes();
  int fused = 0;
  for (int i = 0; i < 24; ++i) {
    const bool large = i % 2 == 0;
    const int64_t N = pick(1, 2), C = pick(1, 40), M = large ? pick(48, 100) : pick(1, 40);
    const int64_t H = large ? pick(64, 90) : pick(1, 20), W = large ? pick(64, 90) : pick(1, 20);
    const int64_t K = pick(1, 5), s = pick(1, 3), d = pick(0, 3) == 0 ? 2 : 1;
    tt::ops::BlockedConvOptions o;
    o.stride = {s, pick(1, 2)}, o.dilation = {d, 1}, o.depthwise = true;
    o.pads = {pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)};
    if ((H + o.pads[0] + o.pads[2] - (K - 1) * d - 1) < 0 || W + o.pads[1] + o.pads[3] < K) continue;
    SCOPED_TRACE(::testing::Message() << "N" << N << " C" << C << " M" << M << " " << H << "x" << W << " k" << K << " s"
                                      << o.stride[0] << "," << o.stride[1] << " d" << d << " pads " << o.pads[0] << ","
                                      << o.pads[1] << "," << o.pads[2] << "," << o.pads[3]);
    const tt::Tensor x = tt::ops::to_blocked(tt::Tensor::randn({N, C, H, W}));
    const tt::Tensor w1 = tt::Tensor::randn({M, C, 1, 1}), b1 = tt::Tensor::randn({M});
    const tt::Tensor w2 = tt::Tensor::randn({M, 1, K, K}), b2 = i % 3 == 0 ? tt::Tensor() : tt::Tensor::randn({M});
    const tt::kernels::Epilogue e1{tt::kernels::Activation::Clip, 0.0f, 6.0f}, e2 = kEpilogues[i % 6];
    const tt::Tensor middle = tt::ops::conv2d_blocked(x, C, w1, b1, {}, e1, tt::Tensor());
    const tt::Shape out_shape = tt::ops::conv2d_blocked_shape(middle, M, w2, o);
    const tt::Tensor residual = i % 4 < 2 ? tt::Tensor::randn(out_shape) : tt::Tensor();
    const tt::Tensor want = tt::ops::conv2d_blocked(middle, M, w2, b2, o, e2, residual);
    fused += tt::ops::fuses_pointwise_depthwise(middle.shape()) ? 1 : 0;
    EXPECT_EQ(tt::ops::fuses_pointwise_depthwise(middle.shape()), (M + B - 1) / B * B * H * W > 256 * 1024);
    for (int threads : {1, 2}) {
      tt::set_num_threads(threads);
      const tt::Tensor got = tt::ops::conv2d_blocked_pointwise_depthwise(x, C, w1, b1, e1, w2, b2, o, e2, residual);
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t j = 0; j < got.numel(); ++j) ASSERT_EQ(got.data()[j], want.data()[j]) << "float " << j;
    }
  }
  tt::set_num_threads(threads_before);
  EXPECT_GE(fused, 8);  // the large cases fuse
  const tt::Tensor x = tt::ops::to_blocked(tt::Tensor::randn({1, 8, 6, 6}));
  tt::ops::BlockedConvOptions dw;
  EXPECT_THROW(tt::ops::conv2d_blocked_pointwise_depthwise(x, 8, tt::Tensor::randn({16, 8, 3, 3}), {}, {},
                                                           tt::Tensor::randn({16, 1, 3, 3}), {}, dw, {}, {}),
               tt::ShapeError);  // the first layer is not pointwise
  EXPECT_THROW(tt::ops::conv2d_blocked_pointwise_depthwise(x, 8, tt::Tensor::randn({16, 8, 1, 1}), {}, {},
                                                           tt::Tensor::randn({12, 1, 3, 3}), {}, dw, {}, {}),
               tt::ShapeError);  // the depthwise weight does not fit the middle tensor
  EXPECT_THROW(tt::ops::conv2d_blocked_pointwise_depthwise(x, 8, tt::Tensor::randn({16, 8, 1, 1}), {}, {},
                                                           tt::Tensor::randn({16, 1, 3, 3}), {}, dw, {},
                                                           tt::Tensor::randn({1, 2, 6, 6, B})),
               tt::ShapeError);  // a residual of another shape (the output is 4x4)
}

TEST(BlockedLayout, BadShapesAreShapeErrors) {
  const tt::Tensor w = tt::Tensor::randn({16, 8, 3, 3});
  EXPECT_THROW(tt::ops::conv2d_blocked(tt::Tensor::randn({1, 8, 4}), 8, w, {}, {}, {}, {}), tt::ShapeError);
  EXPECT_THROW(tt::ops::conv2d_blocked(tt::Tensor::randn({1, 5, 4, 4}), 5, w, {}, {}, {}, {}), tt::ShapeError);
  EXPECT_THROW(tt::ops::conv2d_blocked(tt::Tensor::randn({1, 8, 2, 2}), 8, w, {}, {}, {}, {}), tt::ShapeError);
  tt::ops::BlockedConvOptions dw;
  dw.depthwise = true;
  EXPECT_THROW(
      tt::ops::conv2d_blocked(tt::Tensor::randn({1, 8, 4, 4}), 8, tt::Tensor::randn({8, 1, 3, 3}), {}, dw, {}, {}),
      tt::ShapeError);  // depthwise needs a blocked input
  EXPECT_THROW(tt::ops::from_blocked(tt::Tensor::randn({1, 8, 4, 4}), 8), tt::ShapeError);
}

namespace {

// x [N, C, H, W] in the blocked layout of `lanes` lanes (any width, on any machine), the padding
// lanes set to `pad`; and a blocked tensor's C channels back in the plain layout.
tt::Tensor blocked_tensor(const tt::Tensor& x, int64_t lanes, float pad) {
  const tt::Shape& s = x.shape();
  const int64_t CB = k::blocked_blocks(s[1], lanes), P = s[2] * s[3];
  const std::vector<float> plain(x.data(), x.data() + x.numel());
  const std::vector<float> b = blocked_of(plain, s[0], s[1], P, lanes, pad);
  tt::Tensor out = tt::Tensor::empty({s[0], CB, s[2], s[3], lanes});
  std::copy(b.begin(), b.end(), out.data());
  return out;
}

tt::Tensor plain_tensor(const tt::Tensor& b, int64_t C) {
  const tt::Shape& s = b.shape();
  const int64_t lanes = s[4], P = s[2] * s[3];
  tt::Tensor out = tt::Tensor::empty({s[0], C, s[2], s[3]});
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p)
        out.data()[(n * C + c) * P + p] = b.data()[((n * s[1] + c / lanes) * P + p) * lanes + c % lanes];
  return out;
}

}  // namespace

// Max and average pooling in the blocked layout against max_pool2d and avg_pool2d (whose kernels
// the pool tests hold to the reference), at 8 and 16 lanes: kernels 1-4, strides 1-3, padding up
// to half the kernel, dilation (max), ceil_mode, count_include_pad, channel counts that leave
// padding lanes (set to a finite value the pools must keep out of the real channels), a NaN that
// must win its windows, ties of +0 and -0, infinities; images up to 70x70 (several bands of rows
// a plane); on 1 and 2 threads.
TEST(BlockedLayout, PoolsMatchThePlainPools) {
  std::mt19937 rng(11);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const int threads_before = tt::get_num_threads();
  for (int i = 0; i < 200; ++i) {
    const bool large = i % 10 == 3;  // bands of a few rows each (max_pool_blocked's bands fit L1)
    const int64_t N = pick(1, 2), C = pick(1, 40), H = large ? pick(30, 70) : pick(1, 12),
                  W = large ? pick(30, 70) : pick(1, 12), lanes = i % 2 ? 16 : 8;
    const tt::Size2 kernel{pick(1, 4), pick(1, 4)}, stride{pick(1, 3), pick(1, 3)};
    const tt::Size2 pad{pick(0, kernel.h / 2), pick(0, kernel.w / 2)};
    const tt::Size2 dilation{pick(0, 3) == 0 ? 2 : 1, pick(0, 3) == 0 ? 2 : 1};
    const bool ceil = pick(0, 1) == 1, include_pad = pick(0, 1) == 1;
    if ((H + 2 * pad.h - dilation.h * (kernel.h - 1) - 1) < 0 || (W + 2 * pad.w - dilation.w * (kernel.w - 1) - 1) < 0)
      continue;
    tt::Tensor x = tt::Tensor::randn({N, C, H, W});
    if (i % 3 == 1) {  // ties, signed zeros among them: the first in scan order wins; infinities
      for (int64_t j = 0; j < x.numel(); ++j)
        x.data()[j] = std::array<float, 6>{-0.0f, 0.0f, -1.0f, 0.5f, -INFINITY, INFINITY}[rng() % 6];
    }
    if (i % 5 == 0) x.data()[pick(0, x.numel() - 1)] = NAN;
    SCOPED_TRACE(::testing::Message() << "lanes " << lanes << " N" << N << " C" << C << " " << H << "x" << W << " k"
                                      << kernel.h << "x" << kernel.w << " s" << stride.h << "," << stride.w << " p"
                                      << pad.h << "," << pad.w << " d" << dilation.h << "," << dilation.w
                                      << (ceil ? " ceil" : "") << (include_pad ? " include_pad" : ""));
    const tt::Tensor bx = blocked_tensor(x, lanes, 7.0f);
    tt::MaxPool2dOptions mo;
    mo.kernel_size = kernel, mo.stride = stride, mo.padding = pad, mo.dilation = dilation, mo.ceil_mode = ceil;
    tt::AvgPool2dOptions ao;
    ao.kernel_size = kernel, ao.stride = stride, ao.padding = pad, ao.ceil_mode = ceil;
    ao.count_include_pad = include_pad;
    const tt::Tensor max_want = tt::max_pool2d(x, mo), avg_want = tt::avg_pool2d(x, ao);
    for (int threads : {1, 2}) {
      tt::set_num_threads(threads);
      const tt::Tensor max_got = plain_tensor(tt::ops::max_pool_blocked(bx, C, mo), C);
      ASSERT_EQ(max_got.shape(), max_want.shape());
      for (int64_t j = 0; j < max_want.numel(); ++j) {
        if (std::isnan(max_want.data()[j])) {
          ASSERT_TRUE(std::isnan(max_got.data()[j])) << "max, output " << j;
        } else {
          ASSERT_EQ(max_got.data()[j], max_want.data()[j]) << "max, output " << j;
          ASSERT_EQ(std::signbit(max_got.data()[j]), std::signbit(max_want.data()[j])) << "max, output " << j;
        }
      }
      if (i % 5 == 0) continue;  // the NaN's average is NaN either way
      const tt::Tensor avg_got = plain_tensor(tt::ops::avg_pool_blocked(bx, C, ao), C);
      ASSERT_EQ(avg_got.shape(), avg_want.shape());
      for (int64_t j = 0; j < avg_want.numel(); ++j) {
        const float a = avg_got.data()[j], b = avg_want.data()[j];
        if (std::isnan(b) || std::isinf(b)) {  // infinities among the ties: inf, or inf - inf
          ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << "avg " << j << ": " << a << " vs " << b;
          continue;
        }
        ASSERT_NEAR(a, b, 1e-6 * (1 + std::fabs(b))) << "avg " << j;
      }
    }
  }
  tt::set_num_threads(threads_before);
  const tt::Tensor x = tt::Tensor::randn({1, 9, 4, 4});
  EXPECT_THROW(tt::ops::max_pool_blocked(x, 9, {}), tt::ShapeError);                         // plain
  EXPECT_THROW(tt::ops::max_pool_blocked(blocked_tensor(x, 8, 0), 17, {}), tt::ShapeError);  // channels
  tt::AvgPool2dOptions too_big;
  too_big.kernel_size = 5;
  EXPECT_THROW(tt::ops::avg_pool_blocked(blocked_tensor(x, 8, 0), 9, too_big), tt::ShapeError);
}

// Concat of blocked inputs: all but the last fill their blocks, the last's padding lanes become the
// output's; the result is the plain cat. Inputs that do not fit are ShapeErrors.
TEST(BlockedLayout, ConcatJoinsBlocks) {
  for (int64_t lanes : {8, 16}) {
    const tt::Tensor a = tt::Tensor::randn({2, lanes, 3, 5}), b = tt::Tensor::randn({2, 2 * lanes, 3, 5});
    const tt::Tensor c = tt::Tensor::randn({2, 5, 3, 5});
    const tt::Tensor got = tt::ops::concat_blocked(
        {blocked_tensor(a, lanes, 7), blocked_tensor(b, lanes, 7), blocked_tensor(c, lanes, 7)}, {lanes, 2 * lanes, 5});
    const tt::Tensor want = tt::cat({a, b, c}, 1);
    const tt::Tensor back = plain_tensor(got, 3 * lanes + 5);
    ASSERT_EQ(back.shape(), want.shape());
    for (int64_t j = 0; j < want.numel(); ++j) ASSERT_EQ(back.data()[j], want.data()[j]);
    EXPECT_THROW(tt::ops::concat_blocked({blocked_tensor(c, lanes, 0), blocked_tensor(a, lanes, 0)}, {5, lanes}),
                 tt::ShapeError);  // the first does not fill its block
    EXPECT_THROW(
        tt::ops::concat_blocked(
            {blocked_tensor(a, lanes, 0), blocked_tensor(tt::Tensor::randn({2, 5, 3, 4}), lanes, 0)}, {lanes, 5}),
        tt::ShapeError);  // sizes differ
  }
}

// The per-channel affine (an inference BatchNormalization) at 8 and 16 lanes, with and without the
// Relu, against the plain arithmetic; the padding lanes stay out of the real channels.
TEST(BlockedLayout, ChannelAffineMatchesThePlainArithmetic) {
  for (int64_t lanes : {8, 16}) {
    for (bool relu : {false, true}) {
      const int64_t C = lanes + 3;
      const tt::Tensor x = tt::Tensor::randn({2, C, 3, 4});
      std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c)
        scale[static_cast<size_t>(c)] = 0.5f - 0.1f * c, shift[static_cast<size_t>(c)] = 0.25f * c - 1;
      const tt::Tensor got =
          plain_tensor(tt::ops::channel_affine_blocked(blocked_tensor(x, lanes, 7), C, scale, shift, relu), C);
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < 12; ++p) {
            const int64_t at = (n * C + c) * 12 + p;
            float want = x.data()[at] * scale[static_cast<size_t>(c)] + shift[static_cast<size_t>(c)];
            if (relu) want = std::max(want, 0.0f);
            ASSERT_NEAR(got.data()[at], want, 1e-6f * (1 + std::fabs(want))) << "lanes " << lanes << " channel " << c;
          }
      EXPECT_THROW(tt::ops::channel_affine_blocked(blocked_tensor(x, lanes, 7), C, {1.0f}, shift, relu),
                   tt::ShapeError);
      // Of a concatenation, in one pass: the same bits as the affine of concat_blocked's output.
      const tt::Tensor head = tt::Tensor::randn({2, 2 * lanes, 3, 4});
      std::vector<float> scale2(static_cast<size_t>(3 * lanes + 3)), shift2(scale2.size());
      for (size_t c = 0; c < scale2.size(); ++c) scale2[c] = 0.3f - 0.02f * c, shift2[c] = 0.1f * c - 1;
      const std::vector<tt::Tensor> parts{blocked_tensor(head, lanes, 7), blocked_tensor(x, lanes, 7)};
      const tt::Tensor joined = tt::ops::concat_affine_blocked(parts, {2 * lanes, C}, scale2, shift2, relu);
      const tt::Tensor apart = tt::ops::channel_affine_blocked(tt::ops::concat_blocked(parts, {2 * lanes, C}),
                                                               3 * lanes + 3, scale2, shift2, relu);
      ASSERT_EQ(joined.shape(), apart.shape());
      const tt::Tensor a = plain_tensor(joined, 3 * lanes + 3), b = plain_tensor(apart, 3 * lanes + 3);
      for (int64_t j = 0; j < a.numel(); ++j) ASSERT_EQ(a.data()[j], b.data()[j]) << "lanes " << lanes << " at " << j;
      EXPECT_THROW(tt::ops::concat_affine_blocked(parts, {2 * lanes, C}, scale, shift, relu), tt::ShapeError);
    }
  }
}

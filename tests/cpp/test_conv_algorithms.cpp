// Every convolution algorithm against the reference on randomized shapes (every dimension above 1
// in most draws, odd sizes, padding, stride, dilation, groups, tiny images), and bit-identical
// results on 1 and 2 threads.
//
// Tolerance: a float32 sum of K products in any order is within gamma_K * sum|x w| of the exact
// sum (Higham 3.1), gamma_K ~ K u, u = 2^-24. The reference is exact to double rounding, so each
// output may differ by (K + 2) u (conv(|x|, |w|) + |b|). Winograd transforms add their own
// rounding (see test WinogradErrorBound for its measured error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/blocked/blocked.hpp"
#include "kernels/cpu.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "kernels/peak/peak.hpp"
#include "ops/conv2d.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/conv2d_select.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

struct ConvCase {
  tt::Shape input, weight;
  tt::Conv2dOptions options;
  bool bias;
  std::string describe() const {
    return "input " + tt::shape_to_string(input) + " weight " + tt::shape_to_string(weight) + " stride (" +
           std::to_string(options.stride.h) + "," + std::to_string(options.stride.w) + ") padding " +
           options.padding.to_string() + " dilation (" + std::to_string(options.dilation.h) + "," +
           std::to_string(options.dilation.w) + ") groups " + std::to_string(options.groups) + (bias ? " bias" : "");
  }
};

ConvCase random_case(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  while (true) {
    ConvCase c;
    const int shape_kind = pick(0, 9);
    int64_t groups = 1, C, OC;
    if (shape_kind == 0) {  // depthwise, channel multiplier 1 or 2, or 24 (the GEMM forms' rule)
      C = pick(2, 12);
      groups = C;
      const int m = pick(1, 5);
      OC = C * (m < 5 ? (m + 1) / 2 : 24);
    } else if (shape_kind == 1) {
      groups = pick(2, 3);
      C = groups * pick(1, 5);
      OC = groups * pick(1, 5);
    } else {
      C = pick(1, 24);
      OC = pick(2, 24);
    }
    const int64_t KH = shape_kind >= 6 ? 3 : shape_kind == 5 ? 1 : pick(1, 5);
    const int64_t KW = shape_kind >= 6 ? 3 : shape_kind == 5 ? 1 : pick(1, 5);
    const int64_t N = pick(1, 3), H = pick(1, 23), W = pick(1, 23);
    c.input = {N, C, H, W};
    c.weight = {OC, C / groups, KH, KW};
    c.options.groups = groups;
    if (shape_kind == 9) {  // 3x3 stride 2: Winograd's stride-2 scheme, any padding
      c.options.stride = tt::Size2(2, 2);
      c.options.padding = tt::Padding2d(pick(0, 2), pick(0, 2));
    } else if (shape_kind >= 6) {  // 3x3 stride 1: the Winograd and direct candidates
      c.options.padding = tt::Padding2d(pick(0, 1));
    } else if (shape_kind != 5) {  // kind 5: 1x1, stride 1, no padding (the direct GEMM case)
      c.options.stride = tt::Size2(pick(1, 3), pick(1, 3));
      c.options.dilation = tt::Size2(pick(1, 2), pick(1, 2));
      c.options.padding = tt::Padding2d(pick(0, 2), pick(0, 2));
    }
    c.bias = pick(0, 3) > 0;
    const int64_t span_h = c.options.dilation.h * (KH - 1) + 1, span_w = c.options.dilation.w * (KW - 1) + 1;
    if (H + 2 * c.options.padding.h >= span_h && W + 2 * c.options.padding.w >= span_w) {
      // Some cases as 'same' (asymmetric where d * (k - 1) is odd) or 'valid', as users write them.
      const int mode = pick(0, 5);
      if (mode == 0 && shape_kind != 9) {  // 'same' needs stride 1 (kind 9 is the stride-2 Winograd case)
        c.options.stride = tt::Size2(1, 1);
        c.options.padding = tt::Padding2d("same");
      } else if (mode == 1 && H >= span_h && W >= span_w) {
        c.options.padding = tt::Padding2d("valid");
      }
      return c;
    }
  }
}

tt::Tensor abs_of(const tt::Tensor& t) {
  tt::Tensor a = t.clone();
  for (int64_t i = 0; i < a.numel(); ++i) a.data()[i] = std::fabs(a.data()[i]);
  return a;
}

// Algorithm a on 1 and on 2 threads: within terms x 2^-24 of the reference, relative to the
// output computed from the magnitudes, and bit-identical between the two.
void expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm a, const tt::Tensor& x, const tt::Tensor& w,
                                             const tt::Tensor& b, const tt::Conv2dOptions& options, double terms) {
  const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, options);
  const tt::Tensor magnitude = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w),
                                               b.defined() ? abs_of(b) : tt::Tensor(), options);
  const int saved = tt::get_num_threads();
  tt::set_num_threads(1);
  const tt::Tensor one = tt::conv2d_with(a, x, w, b, options);
  tt::set_num_threads(2);
  const tt::Tensor got = tt::conv2d_with(a, x, w, b, options);
  tt::set_num_threads(saved);
  for (int64_t i = 0; i < want.numel(); ++i) {
    ASSERT_LE(std::fabs(got.data()[i] - want.data()[i]), terms * 0x1p-24 * magnitude.data()[i]) << i;
    ASSERT_EQ(got.data()[i], one.data()[i]) << i;
  }
}

}  // namespace

TEST(ConvAlgorithms, MatchReferenceOnRandomShapes) {
  std::mt19937 rng(2026);
  tt::Generator gen(99);
  int checked = 0, same_asymmetric = 0, valid = 0, unread_rows = 0, dot_tails = 0;
  std::map<tt::Conv2dAlgorithm, int> per_algorithm;
  for (int trial = 0; trial < 300; ++trial) {
    const ConvCase c = random_case(rng);
    SCOPED_TRACE(c.describe());
    const auto& o = c.options;
    // Input rows no tap reads (a stride past the window's rows): the direct kernel leaves their
    // row phases' planes out.
    std::set<int64_t> phases;
    for (int64_t kh = 0; kh < c.weight[2]; ++kh) phases.insert(kh * o.dilation.h % o.stride.h);
    unread_rows += static_cast<int64_t>(phases.size()) < o.stride.h;
    same_asymmetric += o.padding.mode == tt::Padding2d::Mode::Same &&
                       ((o.dilation.h * (c.weight[2] - 1)) % 2 == 1 || (o.dilation.w * (c.weight[3] - 1)) % 2 == 1);
    valid += o.padding.mode == tt::Padding2d::Mode::Valid;
    const tt::Tensor x = tt::Tensor::randn(c.input, gen), w = tt::Tensor::randn(c.weight, gen);
    const tt::Tensor b = c.bias ? tt::Tensor::randn({c.weight[0]}, gen) : tt::Tensor();
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, c.options);
    const tt::Tensor magnitude = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w),
                                                 c.bias ? abs_of(b) : tt::Tensor(), c.options);
    const int64_t K = c.weight[1] * c.weight[2] * c.weight[3];
    for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
      if (a == tt::Conv2dAlgorithm::Reference || !tt::conv2d_algorithm_supports(a, c.input, c.weight, c.options))
        continue;
      const tt::Tensor got = tt::conv2d_with(a, x, w, b, c.options);
      ASSERT_EQ(got.shape(), want.shape()) << tt::to_string(a);
      // Winograd F(4x4, 3x3): transforms with constants up to 8 cost about 2^7 more; see
      // WinogradErrorBound. The stride-2 scheme's transforms (coefficients 0 and +-1) add a fixed
      // chain of about 8 roundings per output (the input transform's addition, the output
      // transform's, the join of the even and odd parts), which the +2 of the plain bound does not
      // count: negligible for many channels (WinogradStrideTwoErrorBound: 0.015x the plain bound),
      // 1.4x the plain bound on one channel (1x1x6x18 -> 8, padding 2). So K + 10 for it.
      const bool winograd = a == tt::Conv2dAlgorithm::Winograd;
      const double slack = winograd && c.options.stride.h == 1 ? 128.0 : 1.0;
      const double terms = static_cast<double>(K) + (winograd && c.options.stride.h == 2 ? 10 : 2);
      for (int64_t i = 0; i < got.numel(); ++i) {
        const double bound = slack * terms * 0x1p-24 * magnitude.data()[i] + 1e-30;
        const double err = std::fabs(got.data()[i] - want.data()[i]);
        if (err > bound) {
          const int64_t OC = got.size(1), OH = got.size(2), OW = got.size(3);
          FAIL() << tt::to_string(a) << " (" << tt::peak_isa() << ") differs from the reference at n "
                 << i / (OC * OH * OW) << ", oc " << i / (OH * OW) % OC << ", oh " << i / OW % OH << ", ow " << i % OW
                 << ": got " << got.data()[i] << ", want " << want.data()[i] << ", error " << err << " > bound "
                 << bound;
        }
      }
      ++checked;
      ++per_algorithm[a];
      if (a == tt::Conv2dAlgorithm::Direct)
        dot_tails += tt::ops::conv2d_direct_dot_pixels(tt::ops::conv2d_geometry(c.input, c.weight, b, c.options)) > 0;
    }
  }
  for (auto [a, n] : per_algorithm) std::cout << "  " << tt::to_string(a) << ": " << n << " shapes\n";
  EXPECT_GE(checked, 300);
  EXPECT_GE(same_asymmetric, 3) << "'same' padding with an odd total (asymmetric) was hardly tried";
  EXPECT_GE(valid, 10);
  EXPECT_GE(unread_rows, 10) << "strides that skip input rows were hardly tried";
  EXPECT_GE(dot_tails, 3) << "the direct kernel's last pixels by dot products were hardly tried";
  // Every fast algorithm met a fair share of the random shapes:
  // a change to supports() or to the case generator that starves one fails here.
  for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
    if (a == tt::Conv2dAlgorithm::Reference) continue;
    EXPECT_GE(per_algorithm[a], 30) << tt::to_string(a) << " was checked on too few shapes";
  }
}

TEST(ConvAlgorithms, IdenticalOnOneAndTwoThreads) {
  std::mt19937 rng(7);
  tt::Generator gen(5);
  const int saved = tt::get_num_threads();
  for (int trial = 0; trial < 40; ++trial) {
    ConvCase c = random_case(rng);
    c.input[0] = 4;  // enough work to split
    const tt::Tensor x = tt::Tensor::randn(c.input, gen), w = tt::Tensor::randn(c.weight, gen);
    const tt::Tensor b = tt::Tensor::randn({c.weight[0]}, gen);
    for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
      if (!tt::conv2d_algorithm_supports(a, c.input, c.weight, c.options)) continue;
      // (Prepared weights cleared: each run prepares them on its own thread count.)
      tt::ops::clear_prepared_weights();
      tt::set_num_threads(1);
      const tt::Tensor one = tt::conv2d_with(a, x, w, b, c.options);
      tt::ops::clear_prepared_weights();
      tt::set_num_threads(2);
      const tt::Tensor two = tt::conv2d_with(a, x, w, b, c.options);
      EXPECT_TRUE(one.equal(two)) << tt::to_string(a) << " " << c.describe();
    }
  }
  tt::set_num_threads(saved);
}

// Layers whose tile rows are at least 4 tiles wide (outputs 13 and more wide) take F(4x4, 3x3)'s
// permute input path with AVX-512 (kernels/winograd/avx512.cpp): rows a multiple of 4 tiles wide (13-16,
// 29-32) and not (17-28: 4-tile pieces that cross into the next row or image); odd channel
// counts, both paddings, images ending inside a panel, partial last panels.
TEST(ConvAlgorithms, WinogradWideTileRows) {
  tt::Generator gen(41);
  std::mt19937 rng(41);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0;
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t pad = trial % 2, OH = pick(3, 20);
    const int64_t OW = trial % 3 == 0 ? pick(13, 16) : trial % 3 == 1 ? pick(29, 32) : pick(17, 28);
    const int64_t N = pick(1, 3), C = pick(1, 9), OC = pick(1, 13);
    const tt::Shape input{N, C, OH + 2 - 2 * pad, OW + 2 - 2 * pad}, weight{OC, C, 3, 3};
    const tt::Conv2dOptions options{.padding = tt::Padding2d(pad)};
    SCOPED_TRACE(tt::shape_to_string(input) + " pad " + std::to_string(pad));
    const tt::Tensor x = tt::Tensor::randn(input, gen), w = tt::Tensor::randn(weight, gen);
    const tt::Tensor b = tt::Tensor::randn({OC}, gen);
    const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, b, options);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), options);
    ASSERT_EQ(got.shape(), want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) {
      ASSERT_LE(std::fabs(got.data()[i] - want.data()[i]), 128 * (C * 9 + 2) * 0x1p-24 * magnitude.data()[i]) << i;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 24);
}

namespace {

// A 3x3 'same' layer of random weights and bias by Winograd against the reference, and the same
// bits on one thread and two.
void expect_winograd_same_padding(tt::Generator& gen, const tt::Shape& input, int64_t OC) {
  SCOPED_TRACE(tt::shape_to_string(input) + " -> " + std::to_string(OC));
  const tt::Tensor x = tt::Tensor::randn(input, gen), w = tt::Tensor::randn({OC, input[1], 3, 3}, gen);
  const tt::Tensor b = tt::Tensor::randn({OC}, gen);
  expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Winograd, x, w, b,
                                          tt::Conv2dOptions{.padding = tt::Padding2d(1)}, 128.0 * (input[1] * 9 + 2));
}

}  // namespace

// The GEMMs of a panel only partly filled with tiles compute only the vectors the tiles fill (a
// half tile, or AVX-512's narrow ones of 8 and 24 lanes): every width of the last panel, from 1
// tile to a panel and one more (one 4x4 tile per image, N images), near the reference and the
// same bits on one thread and two.
TEST(ConvAlgorithms, WinogradPartialPanelsComputeOnlyTheirTiles) {
  tt::Generator gen(47);
  for (int64_t tiles : {1, 5, 8, 9, 16, 17, 24, 25, 31, 33, 40}) {
    for (int64_t OC : {16, 29}) {
      const tt::Shape input{tiles, 19, 4, 4};
      expect_winograd_same_padding(gen, input, OC);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// Layers of one tile panel or a few (as many tiles as the micro-kernel's tile is wide, or fewer
// panels than threads): the panels split by output-channel groups over the threads, every output
// the same bits as on one thread and near the reference. Batch 2 at 14x14 and batch 8 at 7x7 are
// 32 tiles: one panel with 32-wide tiles (AVX-512), two with 16.
TEST(ConvAlgorithms, WinogradFewPanelsSplitByOutputChannels) {
  tt::Generator gen(43);
  const tt::Shape inputs[] = {{2, 24, 14, 14}, {8, 17, 7, 7}, {1, 20, 12, 12}, {3, 16, 9, 9}};
  for (const tt::Shape& input : inputs) {
    for (int64_t OC : {16, 37, 70}) {
      expect_winograd_same_padding(gen, input, OC);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// 1x1 stride-1 layers read in place by the direct kernel (ops/conv2d_direct.cpp): pixel counts
// that are and are not multiples of the tile width (tiles straddling images read the next image in
// place), odd channel counts, and layers just outside the in-place condition (planes as usual).
// Pointwise layers read their input in place, each work item packing its tiles' rows: tiles cut
// short at the layer's end, tiles straddling two images (P not a multiple of the tile width),
// images smaller than a tile, several K blocks (more than 256 channels per group, the later blocks
// accumulating, straddling tiles among them), groups, 1 and 2 threads.
TEST(ConvAlgorithms, DirectOneByOneInPlace) {
  tt::Generator gen(47);
  const tt::Shape inputs[] = {{2, 16, 8, 8},   {1, 7, 8, 8},   {2, 3, 6, 8},   {4, 5, 4, 12},  {3, 9, 4, 16},
                              {2, 33, 16, 16}, {1, 4, 32, 3},  {3, 5, 5, 5},   {2, 6, 7, 9},   {1, 2, 4, 4},
                              {3, 300, 5, 7},  {2, 520, 3, 3}, {5, 270, 7, 7}, {1, 600, 9, 9}, {4, 64, 6, 6},
                              {1, 1500, 5, 7}, {2, 2100, 3, 3}};  // two K blocks (kPointwiseTapBlock)
  for (const tt::Shape& input : inputs) {
    for (int64_t groups : {1, 2}) {
      for (int64_t OC : {1, 13, 30}) {
        if (input[1] % groups != 0 || OC % groups != 0) continue;
        SCOPED_TRACE(tt::shape_to_string(input) + " -> " + std::to_string(OC) + ", groups " + std::to_string(groups));
        const tt::Tensor x = tt::Tensor::randn(input, gen);
        const tt::Tensor w = tt::Tensor::randn({OC, input[1] / groups, 1, 1}, gen), b = tt::Tensor::randn({OC}, gen);
        tt::Conv2dOptions options;
        options.groups = groups;
        expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Direct, x, w, b, options,
                                                static_cast<double>(input[1] / groups + 2));
      }
    }
  }
}

// A layer of OC outputs in `groups` groups from input x, a k x k window at `stride` with padding
// k / 2, for the tests of one kernel's blocks below.
struct LayerCase {
  tt::Shape x;
  int64_t OC, groups, k, stride;
  tt::Shape weight() const { return {OC, x[1] / groups, k, k}; }
  tt::Conv2dOptions options() const {
    return {.stride = tt::Size2(stride), .padding = tt::Padding2d(k / 2), .groups = groups};
  }
  double terms() const { return static_cast<double>(x[1] / groups * k * k + 2); }  // the sums' length + 2
  std::string describe() const {
    return tt::shape_to_string(x) + " -> " + std::to_string(OC) + ", groups " + std::to_string(groups) + ", " +
           std::to_string(k) + "x" + std::to_string(k) + " stride " + std::to_string(stride);
  }
};

// The direct and packed kernels visit the weight panels in blocks of at most kPanelBlockRows
// output channels (conv2d_algorithms.hpp): groups of more output channels than a block, with a
// short last block and a short last panel, small and large K (one and two K blocks), 1x1 layers
// read in place, strides, and output rows that are not whole cache lines; against the reference
// and bit-identical on 1 and 2 threads.
TEST(ConvAlgorithms, PanelBlocksOfManyOutputChannels) {
  tt::Generator gen(59);
  const LayerCase cases[] = {
      {{1, 8, 19, 19}, 904, 8, 5, 2}, {{2, 1, 13, 11}, 113, 1, 5, 2}, {{1, 4, 10, 10}, 130, 1, 3, 1},
      {{1, 2, 15, 17}, 194, 2, 1, 2}, {{2, 3, 9, 7}, 100, 1, 1, 1},   {{1, 40, 6, 7}, 97, 1, 3, 1},
      {{3, 300, 5, 5}, 60, 1, 1, 1},  {{1, 6, 12, 12}, 98, 2, 3, 1},
  };
  int64_t blocks = 0;
  for (const LayerCase& c : cases) {
    SCOPED_TRACE(c.describe());
    const tt::Tensor x = tt::Tensor::randn(c.x, gen), w = tt::Tensor::randn(c.weight(), gen);
    const tt::Tensor b = tt::Tensor::randn({c.OC}, gen);
    blocks += c.OC / c.groups > tt::ops::kPanelBlockRows;
    for (tt::Conv2dAlgorithm a : {tt::Conv2dAlgorithm::Direct, tt::Conv2dAlgorithm::Packed}) {
      SCOPED_TRACE(tt::to_string(a));
      expect_reference_on_one_and_two_threads(a, x, w, b, c.options(), c.terms());
    }
  }
  EXPECT_GE(blocks, 6) << "too few groups span more than one block of output channels";
}

// The ocblock kernel's register blocks are 16 output channels of up to 6 pixels (with AVX-512 12
// pixels of one vector, and two such pairs at once where a work item holds two or more), or 8 of up
// to 12 where a group's output channels leave half of a 16-lane block empty (OCG % 16 in 1 .. 8):
// group widths on both sides of the line, several blocks per group, K blocks (over 256 taps),
// chunks of pixels (over 240) and short last blocks, stride-1 images wide enough that pixels run
// over the window's width (linear: 37, 29 and 20 columns) and narrow ones that do not, items of
// two and three pairs (enough images and groups that an item holds a group's every pair), against
// the reference and bit-identical on 1 and 2 threads.
TEST(ConvAlgorithms, OcblockLaneBlocksOfEightAndSixteen) {
  tt::Generator gen(53);
  const LayerCase cases[] = {
      {{2, 16, 7, 7}, 16, 2, 3, 1},   {{1, 24, 5, 6}, 24, 3, 3, 1},  {{2, 40, 9, 9}, 40, 1, 3, 2},
      {{1, 12, 16, 17}, 36, 3, 3, 1}, {{3, 64, 6, 5}, 48, 2, 3, 1},  {{1, 30, 4, 4}, 24, 1, 3, 1},
      {{2, 96, 5, 5}, 32, 4, 3, 1},   {{1, 300, 3, 4}, 8, 1, 1, 1},  {{1, 64, 14, 14}, 64, 8, 3, 2},
      {{2, 600, 2, 3}, 20, 1, 3, 1},  {{1, 8, 21, 23}, 8, 1, 3, 1},  {{4, 6, 3, 3}, 10, 2, 2, 1},
      {{2, 24, 9, 37}, 24, 3, 5, 1},  {{1, 18, 6, 20}, 9, 3, 3, 1},  {{2, 32, 13, 29}, 16, 2, 1, 1},
      {{8, 32, 7, 7}, 128, 4, 3, 1},  {{4, 24, 9, 9}, 192, 4, 3, 2}, {{8, 16, 10, 10}, 90, 2, 5, 1},
  };
  for (const LayerCase& c : cases) {
    SCOPED_TRACE(c.describe());
    const tt::Tensor x = tt::Tensor::randn(c.x, gen), w = tt::Tensor::randn(c.weight(), gen);
    const tt::Tensor b = tt::Tensor::randn({c.OC}, gen);
    ASSERT_TRUE(tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Ocblock, c.x, w.shape(), c.options()));
    expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Ocblock, x, w, b, c.options(), c.terms());
  }
}

// Groups of few output channels run ocblock's interleaved blocks (M pixels per vector of lanes / M
// channels: with AVX-512 M = 2 for groups of 5 to 8 or 21 to 24 channels, M = 4 for 1 to 4, 9 to
// 12, 17 to 20 or 25 to 28; with AVX2 M = 2 for 1 to 4, 9 to 12 and 17 to 20; here 4, 6, 8, 12
// and 20), at stride 1 and 2, always over linear pixels,
// strided layers over a window held as stride x stride phase planes (with M = 1 too where the copy
// pays: dense 3 -> 64 and 4 -> 96 here; stride 3 of few channels runs the plain blocks). Odd pixel
// counts (a vector's last pixels computed and not kept), two K blocks (sums carried between blocks
// through the last vector's part), chunks of pixels, images narrow beside the window (7x7, 5x5,
// 4x6), strides 2, 3 and (2, 1), dilation with stride, and 'same' padding of an even window, on
// both ISAs' lane choices; against the reference and bit-identical on 1 and 2 threads.
TEST(ConvAlgorithms, OcblockInterleavedPixelsAndPhasePlanes) {
  tt::Generator gen(61);
  struct Case {
    tt::Shape x;
    int64_t OC, groups, kh, kw;
    tt::Size2 stride, dilation;
    tt::Padding2d padding;
  };
  const Case cases[] = {
      {{2, 16, 14, 14}, 16, 2, 3, 3, {1, 1}, {1, 1}, 1}, {{1, 24, 7, 7}, 24, 6, 3, 3, {1, 1}, {1, 1}, 1},
      {{1, 36, 9, 11}, 36, 3, 3, 3, {1, 1}, {1, 1}, 1},  {{2, 40, 5, 5}, 40, 2, 3, 3, {1, 1}, {1, 1}, 1},
      {{1, 64, 20, 21}, 64, 8, 3, 3, {1, 1}, {1, 1}, 1}, {{1, 64, 9, 10}, 8, 2, 3, 3, {1, 1}, {1, 1}, 1},
      {{3, 30, 4, 6}, 30, 5, 3, 3, {1, 1}, {1, 1}, 1},   {{1, 12, 11, 13}, 18, 3, 4, 4, {1, 1}, {1, 1}, "same"},
      {{2, 32, 15, 17}, 32, 4, 3, 3, {2, 2}, {1, 1}, 1}, {{1, 48, 16, 16}, 24, 6, 5, 5, {2, 2}, {1, 1}, 2},
      {{1, 16, 20, 19}, 16, 2, 3, 3, {3, 3}, {1, 1}, 1}, {{1, 16, 12, 13}, 16, 2, 3, 3, {2, 1}, {1, 1}, 1},
      {{1, 16, 17, 17}, 16, 2, 3, 3, {2, 2}, {2, 2}, 2}, {{2, 40, 23, 9}, 40, 10, 3, 3, {2, 2}, {1, 1}, 1},
      {{1, 3, 30, 30}, 64, 1, 3, 3, {2, 2}, {1, 1}, 1},  {{1, 4, 40, 60}, 96, 1, 7, 7, {3, 3}, {1, 1}, 3},
      {{1, 16, 20, 19}, 8, 2, 3, 3, {3, 3}, {1, 1}, 1},  {{1, 16, 12, 13}, 8, 2, 3, 3, {2, 1}, {1, 1}, 1},
      {{1, 16, 17, 17}, 8, 2, 3, 3, {2, 2}, {2, 2}, 2},
  };
  for (const Case& c : cases) {
    const tt::Conv2dOptions options{
        .stride = c.stride, .padding = c.padding, .dilation = c.dilation, .groups = c.groups};
    SCOPED_TRACE(tt::shape_to_string(c.x) + " -> " + std::to_string(c.OC) + ", groups " + std::to_string(c.groups) +
                 ", " + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " stride " + std::to_string(c.stride.h) +
                 "," + std::to_string(c.stride.w) + " dilation " + std::to_string(c.dilation.h));
    const tt::Tensor x = tt::Tensor::randn(c.x, gen), w = tt::Tensor::randn({c.OC, c.x[1] / c.groups, c.kh, c.kw}, gen);
    const tt::Tensor b = tt::Tensor::randn({c.OC}, gen);
    ASSERT_TRUE(tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Ocblock, c.x, w.shape(), options));
    expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Ocblock, x, w, b, options,
                                            static_cast<double>(c.x[1] / c.groups * c.kh * c.kw + 2));
  }
}

// Images (or batches) whose column planes outgrow L2 run the direct kernel in bands of output
// rows, each band's planes copied into a thread's own buffer (ops/conv2d_direct.cpp): band heights
// that do and do not divide the output, a last tile cut short, batch 1 (more, thinner bands),
// strides, dilation (with stride 2, every tap on even rows: the odd rows' planes left out),
// asymmetric padding. Checked against the reference, for bands (a workspace below all images'
// planes), and for bit-identical results on 1 and 2 threads.
TEST(ConvAlgorithms, DirectBandsOfLargeImages) {
  tt::Generator gen(53);
  const ConvCase layers[] = {
      {{1, 3, 224, 224}, {13, 3, 7, 7}, {.stride = tt::Size2(2), .padding = tt::Padding2d(3)}, true},
      {{2, 5, 97, 131}, {7, 5, 5, 5}, {.padding = tt::Padding2d(2)}, true},
      {{2, 4, 241, 90},
       {11, 4, 3, 3},
       {.stride = tt::Size2(2, 1), .padding = tt::Padding2d(1, 3), .dilation = tt::Size2(2)},
       true},
      {{3, 4, 300, 200}, {5, 4, 5, 3}, {.stride = tt::Size2(1, 3), .dilation = tt::Size2(1, 2)}, true},
      // One image's planes fit a band, all eight's do not: bands of whole images and parts.
      {{8, 6, 57, 43}, {9, 6, 3, 3}, {.padding = tt::Padding2d(1)}, true},
      {{8, 32, 112, 112}, {48, 32, 1, 1}, {.stride = tt::Size2(2)}, false},
  };
  const int saved = tt::get_num_threads();
  for (const ConvCase& layer : layers) {
    SCOPED_TRACE(layer.describe());
    const int64_t C = layer.input[1], KH = layer.weight[2], KW = layer.weight[3];
    const int64_t sh = layer.options.stride.h, dh = layer.options.dilation.h;
    const int64_t OH = (layer.input[2] + 2 * layer.options.padding.h - dh * (KH - 1) - 1) / sh + 1;
    const int64_t OW = (layer.input[3] + 2 * layer.options.padding.w - layer.options.dilation.w * (KW - 1) - 1) /
                           layer.options.stride.w +
                       1;
    // KW planes for each row phase a tap reads (stride 2 with dilation 2 reads even rows only).
    std::set<int64_t> phases;
    for (int64_t kh = 0; kh < KH; ++kh) phases.insert(kh * dh % sh);
    const int64_t all_planes =
        layer.input[0] * C * static_cast<int64_t>(phases.size()) * KW * (OH + (KH - 1) * dh / sh) * OW * 4;
    EXPECT_LT(tt::conv2d_workspace_bytes(tt::Conv2dAlgorithm::Direct, layer.input, layer.weight, layer.options),
              all_planes / 2);
    const tt::Tensor x = tt::Tensor::randn(layer.input, gen), w = tt::Tensor::randn(layer.weight, gen);
    const tt::Tensor b = tt::Tensor::randn({layer.weight[0]}, gen);
    tt::set_num_threads(1);
    const tt::Tensor one = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, b, layer.options);
    tt::set_num_threads(2);
    const tt::Tensor two = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, b, layer.options);
    EXPECT_TRUE(one.equal(two));
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, layer.options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), layer.options);
    ASSERT_EQ(one.shape(), want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) {
      ASSERT_LE(std::fabs(one.data()[i] - want.data()[i]), (C * KH * KW + 2) * 0x1p-24 * magnitude.data()[i]) << i;
    }
  }
  tt::set_num_threads(saved);
}

// Autotuning: the first call of a shape times the candidates and caches the winner; later calls
// (and select_conv2d_algorithm) use it; the thread count is part of the key; a forced algorithm
// still comes first; the results are the winner's, within its bound of the reference.
TEST(ConvAlgorithms, AutotuneTimesOncePerShapeAndStaysCorrect) {
  tt::Generator gen(31);
  const int saved = tt::get_num_threads();
  tt::set_num_threads(1);
  tt::clear_conv2d_autotune_cache();
  tt::set_conv2d_autotune(true);
  struct Layer {
    tt::Shape input, weight;
    tt::Conv2dOptions options;
  };
  const Layer layers[] = {{{2, 16, 12, 12}, {24, 16, 3, 3}, {.padding = tt::Padding2d(1)}},
                          {{2, 8, 10, 10}, {8, 1, 3, 3}, {.padding = tt::Padding2d(1), .groups = 8}},
                          {{2, 16, 8, 8}, {32, 16, 1, 1}, {}},
                          {{3, 16, 15, 15}, {16, 16, 3, 3}, {.stride = tt::Size2(2)}}};
  int64_t expected = 0;
  for (const Layer& l : layers) {
    const tt::Tensor x = tt::Tensor::randn(l.input, gen), w = tt::Tensor::randn(l.weight, gen);
    const tt::Tensor b = tt::Tensor::randn({l.weight[0]}, gen);
    const tt::Tensor first = tt::conv2d(x, w, b, l.options);
    EXPECT_EQ(tt::conv2d_autotune_cache_size(), ++expected);
    const tt::Tensor second = tt::conv2d(x, w, b, l.options);
    EXPECT_EQ(tt::conv2d_autotune_cache_size(), expected);  // not timed again
    const tt::Conv2dAlgorithm chosen = tt::select_conv2d_algorithm(l.input, l.weight, l.options);
    EXPECT_NE(chosen, tt::Conv2dAlgorithm::Reference);
    EXPECT_TRUE(tt::conv2d_algorithm_supports(chosen, l.input, l.weight, l.options));
    EXPECT_TRUE(first.equal(second));
    EXPECT_TRUE(first.equal(tt::conv2d_with(chosen, x, w, b, l.options))) << tt::to_string(chosen);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, l.options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), l.options);
    const double K = static_cast<double>(l.weight[1] * l.weight[2] * l.weight[3]);
    const double slack = chosen == tt::Conv2dAlgorithm::Winograd && l.options.stride.h == 1 ? 128.0 : 1.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      ASSERT_LE(std::fabs(first.data()[i] - want.data()[i]), slack * (K + 2) * 0x1p-24 * magnitude.data()[i]);
    }
  }
  // Another thread count is another key.
  tt::set_num_threads(2);
  const tt::Tensor x = tt::Tensor::randn(layers[0].input, gen), w = tt::Tensor::randn(layers[0].weight, gen);
  tt::conv2d(x, w, tt::Tensor(), layers[0].options);
  EXPECT_EQ(tt::conv2d_autotune_cache_size(), expected + 1);
  // A forced algorithm comes first; clearing empties the cache; off means the heuristic.
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Packed);
  EXPECT_EQ(tt::select_conv2d_algorithm(layers[0].input, layers[0].weight, layers[0].options),
            tt::Conv2dAlgorithm::Packed);
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Auto);
  tt::clear_conv2d_autotune_cache();
  EXPECT_EQ(tt::conv2d_autotune_cache_size(), 0);
  tt::set_conv2d_autotune(false);
  EXPECT_FALSE(tt::get_conv2d_autotune());
  tt::conv2d(x, w, tt::Tensor(), layers[0].options);
  EXPECT_EQ(tt::conv2d_autotune_cache_size(), 0);
  tt::set_num_threads(saved);
}

// With autotuning off, a Conv2dTuningScope (the graph runtime's) still times a shape met for the
// first time once, small layers only: a large one keeps the heuristic's choice untimed against the
// others; both are remembered. Outside the scope the cache answers for the shapes it has.
TEST(ConvAlgorithms, TuningScopeTimesSmallNewShapesOnce) {
  const char* env = std::getenv("TINYTORCH_CONV_AUTOTUNE");
  if (env && std::string(env) == "0") GTEST_SKIP() << "TINYTORCH_CONV_AUTOTUNE=0 turns the scope's tuning off";
  tt::Generator gen(41);
  tt::set_conv2d_autotune(false);
  tt::clear_conv2d_autotune_cache();
  const tt::Conv2dOptions o{.padding = tt::Padding2d(1)};
  const tt::Tensor x = tt::Tensor::randn({1, 16, 9, 9}, gen), w = tt::Tensor::randn({24, 16, 3, 3}, gen);
  const tt::Tensor outside = tt::conv2d(x, w, tt::Tensor(), o);
  EXPECT_EQ(tt::conv2d_autotune_cache_size(), 0);
  {
    const tt::ops::Conv2dTuningScope scope;
    const tt::Tensor first = tt::conv2d(x, w, tt::Tensor(), o);
    EXPECT_EQ(tt::conv2d_autotune_cache_size(), 1);
    const tt::Tensor second = tt::conv2d(x, w, tt::Tensor(), o);
    EXPECT_EQ(tt::conv2d_autotune_cache_size(), 1);
    EXPECT_TRUE(first.equal(second));
    EXPECT_TRUE(first.allclose(outside, 1e-4, 1e-4));
    // A layer whose heuristic choice takes far longer than the scope's limit (2 ms): remembered,
    // not timed against the others, so it stays the heuristic's.
    const tt::Shape big_in{2, 64, 112, 112}, big_w{64, 64, 3, 3};
    const tt::Tensor bx = tt::Tensor::randn(big_in, gen), bw = tt::Tensor::randn(big_w, gen);
    tt::conv2d(bx, bw, tt::Tensor(), o);
    EXPECT_EQ(tt::conv2d_autotune_cache_size(), 2);
    EXPECT_EQ(tt::select_conv2d_algorithm(big_in, big_w, o),
              tt::ops::conv2d_heuristic(tt::ops::conv2d_geometry(big_in, big_w, tt::Tensor(), o)));
  }
  tt::clear_conv2d_autotune_cache();
}

// Winograd splits the last tile panels by output channels when the panels do not divide evenly
// among the threads (ops/conv2d_winograd.cpp): the items then differ with the thread count, the
// bits must not. Layers of 3, 5 and 7 panels, both schemes, on 1, 2 and 3 threads.
TEST(ConvAlgorithms, WinogradSplitPanelsIdenticalOnAnyThreadCount) {
  tt::Generator gen(23);
  const int saved = tt::get_num_threads();
  struct Layer {
    tt::Shape input;
    int64_t OC, stride;
  };
  for (const Layer& l : {Layer{{5, 32, 16, 16}, 40, 1}, Layer{{3, 32, 28, 28}, 40, 2}, Layer{{7, 24, 27, 27}, 30, 2}}) {
    const tt::Conv2dOptions options{.stride = tt::Size2(l.stride), .padding = tt::Padding2d(1)};
    const tt::Tensor x = tt::Tensor::randn(l.input, gen), w = tt::Tensor::randn({l.OC, l.input[1], 3, 3}, gen);
    const tt::Tensor b = tt::Tensor::randn({l.OC}, gen);
    tt::set_num_threads(1);
    const tt::Tensor one = tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, b, options);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), options);
    const double slack = l.stride == 1 ? 128.0 : 1.0, K = static_cast<double>(l.input[1] * 9);
    for (int64_t i = 0; i < want.numel(); ++i) {
      ASSERT_LE(std::fabs(one.data()[i] - want.data()[i]), slack * (K + 2) * 0x1p-24 * magnitude.data()[i]) << i;
    }
    for (int threads : {2, 3}) {
      tt::set_num_threads(threads);
      EXPECT_TRUE(one.equal(tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, b, options)))
          << "stride " << l.stride << ", " << threads << " threads";
    }
  }
  tt::set_num_threads(saved);
}

// kernels::wide_fma_doubles_rate, the key of the few-pixel rule below: false when the kernels run
// AVX2; with AVX-512, its measurement (wide_fma_rate_ratio) gives the answer of a longer one,
// wherever that one is clear (CPUs measure near 1 or near 2). Both are timings on a machine that
// may be busy (ctest runs two tests at a time, and the two vCPUs may share a core): of three short
// measurements, two must agree. The longer one warms the 512-bit units first, as the probe does (a
// core whose wide units were idle runs them slower for a while), and takes the best rate of each
// kind from rounds before and after the probes, so that a neighbour's burst during one part cannot
// decide it.
TEST(ConvAlgorithms, WideFmaRateProbeAgreesWithALongerMeasurement) {
  namespace k = tinytorch::kernels;
  if (k::cpu_isa() != k::Isa::Avx512) {
    EXPECT_FALSE(k::wide_fma_doubles_rate());
    EXPECT_EQ(k::wide_fma_rate_ratio(), 1.0);
    return;
  }
  const int64_t iterations = 1 << 16;
  double wide = 0.0, narrow = 0.0;
  const auto measure = [&] {
    k::fma_lanes_per_second(k::avx512::peak_kernels(), 4 * iterations);
    for (int round = 0; round < 16; ++round) {
      wide = std::max(wide, k::fma_lanes_per_second(k::avx512::peak_kernels(), iterations));
      narrow = std::max(narrow, k::fma_lanes_per_second(k::avx2::peak_kernels(), iterations));
    }
  };
  measure();
  int doubled = 0;
  std::string probes;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const double probe = k::wide_fma_rate_ratio();
    probes += " " + std::to_string(probe);
    doubled += probe > 1.5;
  }
  measure();
  const double ratio = wide / narrow;
  std::cout << "  512-bit FMAs at " << ratio << "x the 256-bit ones' rate; the probe says" << probes << "\n";
  if (ratio > 1.7) {
    EXPECT_GE(doubled, 2);
  }
  if (ratio < 1.3) {
    EXPECT_LE(doubled, 1);
  }
}

TEST(ConvAlgorithms, SelectionAndForcing) {
  const tt::Shape x{2, 16, 8, 8};
  // 1x1: direct, its tiles running through the batch, on images of at least half a tile's pixels
  // (8 with AVX2's 16-pixel tiles, 16 with AVX-512's 32); on smaller ones batched.
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 12, 12}, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({3, 16, 7, 7}, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 7, 7}, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 10, 10}, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 5, 5}, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 5, 5}, {32, 16, 1, 1}, {.padding = tt::Padding2d(1)}),
            tt::Conv2dAlgorithm::Direct);
  // Fewer output pixels per image than a tile (squeeze-excitation 1x1 layers, 2x2 maps): batched.
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 64, 1, 1}, {16, 64, 1, 1}), tt::Conv2dAlgorithm::Batched);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 2, 2}, {16, 64, 2, 2}), tt::Conv2dAlgorithm::Batched);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 64, 2, 3}, {32, 64, 1, 1}), tt::Conv2dAlgorithm::Batched);
  // ... but a pointwise layer of 8 pixels or more per image (fewer than a tile's 16 or 32): direct.
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 64, 1, 8}, {32, 64, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 64, 3, 5}, {32, 64, 1, 1}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 64, 1, 7}, {32, 64, 1, 1}), tt::Conv2dAlgorithm::Batched);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 4, 5}, {32, 64, 1, 1}), tt::Conv2dAlgorithm::Direct);
  // Several pixels and several taps: vectors across output channels (no im2col gather): ocblock,
  // or with 16 lanes (AVX-512) at twice the 8 lanes' rate the blocked kernels for dense layers
  // without dilation, or with 8 lanes (AVX2) for dense layers of 16+ input channels at
  // stride 1 without dilation.
  const bool blocked_16 = tinytorch::kernels::blocked_lanes() == 16 && tinytorch::kernels::wide_fma_doubles_rate();
  const bool blocked_8 = tinytorch::kernels::blocked_lanes() == 8;
  const tt::Conv2dAlgorithm few_pixels =
      blocked_16 || blocked_8 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Ocblock;
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 3, 3}, {16, 64, 2, 2}), few_pixels);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 512, 3, 3}, {64, 512, 3, 3}, {.padding = tt::Padding2d(1)}), few_pixels);
  // With 8 lanes, stride 2 or fewer than 16 input channels stay ocblock.
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 9, 9}, {64, 64, 3, 3}, {.stride = tt::Size2(2)}),
            blocked_16 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 8, 9, 9}, {32, 8, 3, 3}),
            blocked_16 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Ocblock);
  // With fewer than 8 input channels, where 16 lanes would go blocked: direct.
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 7, 9, 9}, {32, 7, 3, 3}),
            blocked_16 ? tt::Conv2dAlgorithm::Direct : tt::Conv2dAlgorithm::Ocblock);
  // ... but where that is blocked with 16 lanes, an eager call of one image whose weight is larger
  // than L2 (9 MiB here) reads the weight's rows in place: direct; at batch 2, or with the weights
  // frozen (the graph runtime), still blocked. With 8 lanes blocked all the same.
  {
    const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
    const tt::Shape weight{512, 512, 3, 3};
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 512, 7, 7}, weight, same),
              blocked_16 ? tt::Conv2dAlgorithm::Direct : few_pixels);
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 7, 7}, {64, 64, 3, 3}, same), few_pixels);  // 144 KiB
    // Winograd where its cost model says the multiplies it saves repay its transforms and the
    // stream of its 4x larger weight: 16 tiles at 16x16 (half of AVX-512's panel, all of AVX2's),
    // 256 pixels; 16 tiles at 14x14 with AVX-512 (196 pixels) only where U (9.4 MB) stays in the
    // L3 (at most a sixteenth of it), else its stream outlasts the other kernels' compute; with
    // 512 channels (U 37.7 MB) only in an L3 of 604 MB; nor 8 tiles of two 7x7 images.
    const bool avx512_tiles = tinytorch::kernels::packed_gemm_tile().nr == 32;
    const auto u_fits = [](int64_t channels) {
      return 16 * 36 * channels * channels * 4 <= tinytorch::kernels::l3_bytes();
    };
    const tt::Shape weight256{256, 256, 3, 3};
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 256, 16, 16}, weight256, same), tt::Conv2dAlgorithm::Winograd);
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 256, 14, 14}, weight256, same) == tt::Conv2dAlgorithm::Winograd,
              !avx512_tiles || u_fits(256));
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 512, 14, 14}, weight, same) == tt::Conv2dAlgorithm::Winograd,
              !avx512_tiles || u_fits(512));
    EXPECT_EQ(tt::select_conv2d_algorithm({2, 512, 7, 7}, weight, same), few_pixels);
    const uint64_t owner = tinytorch::ops::new_frozen_owner();
    {
      const tinytorch::ops::FrozenWeights frozen(owner);
      EXPECT_EQ(tt::select_conv2d_algorithm({1, 512, 7, 7}, weight, same), few_pixels);
    }
    tinytorch::ops::release_frozen_weights(owner);
  }
  // First layers of 3-8 channels at stride 3 or more: blocked where its 16 lanes run at twice the
  // rate (AlexNet's 11x11 stride-4 stem, a 4x4 stride-4 patchify layer); not at stride 2 (ResNet's
  // stem), nor with one channel.
  {
    const tt::Conv2dAlgorithm stem = blocked_16 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Direct;
    EXPECT_EQ(tt::select_conv2d_algorithm({1, 3, 224, 224}, {64, 3, 11, 11},
                                          {.stride = tt::Size2(4), .padding = tt::Padding2d(2)}),
              stem);
    EXPECT_EQ(tt::select_conv2d_algorithm({2, 3, 224, 224}, {96, 3, 4, 4}, {.stride = tt::Size2(4)}), stem);
    EXPECT_NE(tt::select_conv2d_algorithm({1, 3, 224, 224}, {64, 3, 7, 7},
                                          {.stride = tt::Size2(2), .padding = tt::Padding2d(3)}),
              tt::Conv2dAlgorithm::Blocked);
    EXPECT_NE(tt::select_conv2d_algorithm({1, 1, 96, 96}, {32, 1, 8, 8}, {.stride = tt::Size2(4)}),
              tt::Conv2dAlgorithm::Blocked);
  }
  // At stride 3 the few-pixel rules' ocblock goes blocked where 16 lanes run at twice 8 lanes' rate;
  // a dilated window stays ocblock.
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 9, 9}, {64, 64, 3, 3}, {.stride = tt::Size2(3)}),
            blocked_16 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 9, 9}, {64, 64, 3, 3}, {.dilation = tt::Size2(2)}),
            tt::Conv2dAlgorithm::Ocblock);
  // Depthwise layers: the depthwise kernel, but a 1x1 one with 8 (8 lanes) or 4 (16 lanes) or more
  // outputs per channel (a broadcast multiply) goes as a grouped layer: direct, or packed at a
  // stride past its window.
  const tt::Conv2dOptions dw16{.groups = 16};
  const bool depthwise_eight = tt::kernels::depthwise_block_lanes() == 8;
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {16, 1, 1, 1}, dw16), tt::Conv2dAlgorithm::Depthwise);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {64, 1, 3, 3}, {.padding = tt::Padding2d(1), .groups = 16}),
            tt::Conv2dAlgorithm::Depthwise);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {48, 1, 1, 1}, dw16), tt::Conv2dAlgorithm::Depthwise);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {64, 1, 1, 1}, dw16),
            depthwise_eight ? tt::Conv2dAlgorithm::Depthwise : tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {112, 1, 1, 1}, dw16),
            depthwise_eight ? tt::Conv2dAlgorithm::Depthwise : tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {128, 1, 1, 1}, dw16), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 16, 5, 5}, {192, 1, 1, 1}, dw16),
            tt::Conv2dAlgorithm::Direct);  // not batched
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 8, 8}, {128, 1, 1, 1}, dw16),
            tt::Conv2dAlgorithm::Direct);  // 64 pixels
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 16, 40, 40}, {128, 1, 1, 1}, {.stride = tt::Size2(2), .groups = 16}),
            tt::Conv2dAlgorithm::Packed);
  // With a window, from 16 outputs per channel on: the GEMM forms (direct), never ocblock (whose
  // vectors across a group's outputs meet one input channel), whatever the pixels; 15: depthwise.
  const tt::Conv2dOptions dw16pad{.padding = tt::Padding2d(1), .groups = 16};
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {240, 1, 3, 3}, dw16pad), tt::Conv2dAlgorithm::Depthwise);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 20, 20}, {256, 1, 3, 3}, dw16pad), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 16, 4, 4}, {512, 1, 3, 3}, dw16pad), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 40, 40}, {1024, 1, 5, 5}, {.stride = tt::Size2(2), .groups = 16}),
            tt::Conv2dAlgorithm::Direct);
  // Dense layers of at most 16 output channels, strided, of 8 or more input channels: ocblock (one
  // window copied, where the direct kernel copies a plane per row phase and column); at stride 1,
  // with fewer input channels or more outputs, the rules below.
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 40, 40}, {8, 64, 3, 3}, {.stride = tt::Size2(2)}),
            tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 32, 60, 50}, {16, 32, 5, 5}, {.stride = tt::Size2(1, 3)}),
            tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 40, 40}, {8, 64, 3, 3}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 4, 40, 40}, {8, 4, 3, 3}, {.stride = tt::Size2(2)}),
            tt::Conv2dAlgorithm::Direct);
  // With 8-lane blocks (AVX2) a dense layer of 8 or more input and output channels and a window of
  // more than 9 taps at stride 1 or 2 goes blocked; 3x3 windows, fewer channels, dilation or
  // stride 3 stay.
  const tt::Conv2dAlgorithm wide_window = blocked_8 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Direct;
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 40, 40}, {24, 64, 5, 5}, {.stride = tt::Size2(2)}), wide_window);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 8, 40, 40}, {64, 8, 7, 7}, {.padding = tt::Padding2d(3)}), wide_window);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 7, 40, 40}, {64, 7, 7, 7}, {.padding = tt::Padding2d(3)}),
            tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 40, 40}, {4, 64, 7, 7}, {.padding = tt::Padding2d(3)}),
            tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 40, 40}, {64, 64, 5, 5}, {.dilation = tt::Size2(2)}),
            tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 64, 100, 100}, {64, 64, 5, 5}, {.stride = tt::Size2(3)}),
            tt::Conv2dAlgorithm::Direct);
  // Grouped layers as dense ones per group: direct, or packed when a group has few taps at batch > 1
  // and the stride passes over input rows or columns that no tap reads.
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 40, 40}, {32, 4, 2, 2}, {.groups = 4}), tt::Conv2dAlgorithm::Direct);
  EXPECT_EQ(tt::select_conv2d_algorithm(x, {32, 4, 3, 3}, {.groups = 4}), tt::Conv2dAlgorithm::Ocblock);  // few tiles
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 8, 40, 40}, {16, 2, 1, 1}, {.stride = tt::Size2(2), .groups = 4}),
            tt::Conv2dAlgorithm::Packed);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 3, 64, 64}, {24, 3, 2, 2}, {.stride = tt::Size2(3)}),
            tt::Conv2dAlgorithm::Packed);
  EXPECT_EQ(
      tt::select_conv2d_algorithm({8, 3, 64, 64}, {24, 3, 3, 3}, {.stride = tt::Size2(2), .padding = tt::Padding2d(1)}),
      tt::Conv2dAlgorithm::Direct);  // a stem: the windows overlap
  // Groups of 8 or more output channels (a vector of ocblock's), 3x3 windows or larger: ocblock.
  // With AVX-512 (32-pixel tiles) 5 to 32 channels per group, or more when strided; beyond, at
  // stride 1, the direct kernel's wider vectors win.
  const bool avx2_tile = tinytorch::kernels::packed_gemm_tile().nr == 16;
  const tt::Conv2dOptions g32{.padding = tt::Padding2d(1), .groups = 32};
  const tt::Conv2dOptions g32_s2{.stride = tt::Size2(2), .padding = tt::Padding2d(1), .groups = 32};
  EXPECT_EQ(tt::select_conv2d_algorithm({16, 1024, 7, 7}, {1024, 32, 3, 3}, g32), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 512, 28, 28}, {512, 16, 3, 3}, g32_s2), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 256, 28, 28}, {256, 8, 3, 3}, g32), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 1024, 56, 56}, {1024, 32, 3, 3}, g32), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 96, 56, 56}, {192, 48, 3, 3}, {.padding = tt::Padding2d(1), .groups = 2}),
            avx2_tile ? tt::Conv2dAlgorithm::Ocblock : tt::Conv2dAlgorithm::Direct);  // 96 per group
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 96, 56, 56}, {192, 48, 3, 3},
                                        {.stride = tt::Size2(2), .padding = tt::Padding2d(1), .groups = 2}),
            tt::Conv2dAlgorithm::Ocblock);  // 96 per group, strided
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 256, 28, 28}, {256, 8, 1, 1}, {.groups = 32}),
            tt::Conv2dAlgorithm::Direct);  // 1x1: one tap
  // Groups of 1-4 output channels and 2 or more input channels, a window of several taps: ocblock
  // (its interleaved blocks, 4 or 2 pixels per vector, fill the lanes); with one input channel per
  // group or a 1x1 window, the rules below.
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 128, 14, 14}, {128, 4, 3, 3}, g32), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 8, 8, 8}, {16, 2, 3, 3}, {.groups = 4}), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 40, 40}, {16, 4, 2, 2}, {.groups = 4}), tt::Conv2dAlgorithm::Ocblock);
  const tt::Conv2dOptions g4_s2{.stride = tt::Size2(2), .padding = tt::Padding2d(2), .groups = 4};
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 60, 60}, {8, 16, 5, 5}, g4_s2), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 288, 17, 18}, {96, 9, 7, 7}, {.stride = tt::Size2(2), .groups = 32}),
            tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 60, 60}, {8, 16, 5, 5}, {.padding = tt::Padding2d(2), .groups = 4}),
            tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 16, 60, 60}, {8, 4, 5, 5}, g4_s2), tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm({2, 64, 60, 60}, {8, 16, 1, 1}, {.stride = tt::Size2(2), .groups = 4}),
            tt::Conv2dAlgorithm::Packed);  // 16 taps, a stride past the window
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 16, 32, 32}, {32, 16, 3, 3}), tt::Conv2dAlgorithm::Winograd);
  // Fewer than 16 pixel tiles in all and a 3x3 window: ocblock (121 and 36 pixels here); with
  // more tiles, direct.
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 13, 13}, {32, 16, 3, 3}), few_pixels);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 80, 80}, {32, 16, 3, 3}, {.stride = tt::Size2(3)}),
            tt::Conv2dAlgorithm::Direct);
  // Winograd takes padding up to 1 only (its error follows the whole tile: see winograd.hpp).
  EXPECT_TRUE(
      tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, x, {16, 16, 3, 3}, {.padding = tt::Padding2d(1)}));
  EXPECT_FALSE(
      tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, x, {16, 16, 3, 3}, {.padding = tt::Padding2d(2)}));
  // At stride 2 (the 5x5 scheme, whose outputs only meet their own windows) any padding.
  const tt::Conv2dOptions s2{.stride = tt::Size2(2), .padding = tt::Padding2d(2)};
  EXPECT_TRUE(tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, x, {16, 16, 3, 3}, s2));
  EXPECT_FALSE(tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, x, {16, 16, 3, 3},
                                             {.stride = tt::Size2(2), .dilation = tt::Size2(2)}));
  EXPECT_EQ(tt::select_conv2d_algorithm({8, 128, 28, 28}, {256, 128, 3, 3},
                                        {.stride = tt::Size2(2), .padding = tt::Padding2d(1)}),
            tt::Conv2dAlgorithm::Winograd);
  EXPECT_EQ(tt::select_conv2d_algorithm({1, 16, 13, 13}, {32, 16, 3, 3}, {.stride = tt::Size2(2)}),
            blocked_16 ? tt::Conv2dAlgorithm::Blocked : tt::Conv2dAlgorithm::Ocblock);
  EXPECT_EQ(tt::select_conv2d_algorithm(x, {32, 1, 3, 3}, {.groups = 16}), tt::Conv2dAlgorithm::Depthwise);
  EXPECT_EQ(tt::conv2d_algorithm_from_string("im2col"), tt::Conv2dAlgorithm::Im2colGemm);
  EXPECT_THROW(tt::conv2d_algorithm_from_string("fft"), tt::ArgumentError);
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Reference);
  EXPECT_EQ(tt::select_conv2d_algorithm(x, {32, 16, 1, 1}), tt::Conv2dAlgorithm::Reference);
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Gemm1x1);  // does not support 3x3: the heuristic decides
  EXPECT_NE(tt::select_conv2d_algorithm(x, {32, 16, 3, 3}), tt::Conv2dAlgorithm::Gemm1x1);
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Auto);
  EXPECT_THROW(tt::conv2d_with(tt::Conv2dAlgorithm::Gemm1x1, tt::Tensor::randn(x), tt::Tensor::randn({4, 16, 3, 3})),
               tt::ShapeError);
  EXPECT_GT(tt::conv2d_workspace_bytes(tt::Conv2dAlgorithm::Im2colGemm, x, {32, 16, 3, 3}), 0);
  EXPECT_EQ(tt::conv2d_workspace_bytes(tt::Conv2dAlgorithm::Gemm1x1, x, {32, 16, 1, 1}), 0);
}

// Winograd's error, measured against the bound a plain float32 sum can reach, on random layers
// with 16 to 256 channels (K up to 2304), next to the direct kernel's on the same layers.
struct ErrorStats {
  double worst_winograd = 0, worst_direct = 0, mean_winograd = 0, mean_direct = 0;
  int64_t outputs = 0;
};

ErrorStats winograd_error(int64_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  tt::Generator gen(17);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  ErrorStats e;
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t C = int64_t{1} << pick(4, 8), OC = pick(16, 40), N = pick(1, 3);
    const int64_t H = pick(6, 20) * stride, W = pick(6, 20) * stride;
    const tt::Conv2dOptions options{.stride = tt::Size2(stride), .padding = tt::Padding2d(pick(0, 1))};
    const tt::Tensor x = tt::Tensor::randn({N, C, H, W}, gen), w = tt::Tensor::randn({OC, C, 3, 3}, gen);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, tt::Tensor(), options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), tt::Tensor(), options);
    const tt::Tensor wino = tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, tt::Tensor(), options);
    const tt::Tensor direct = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), options);
    const double K = static_cast<double>(C * 9);
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double unit = (K + 2) * 0x1p-24 * magnitude.data()[i];
      const double rw = std::fabs(wino.data()[i] - want.data()[i]) / unit;
      const double rd = std::fabs(direct.data()[i] - want.data()[i]) / unit;
      e.worst_winograd = std::max(e.worst_winograd, rw);
      e.worst_direct = std::max(e.worst_direct, rd);
      e.mean_winograd += rw;
      e.mean_direct += rd;
    }
    e.outputs += want.numel();
  }
  e.mean_winograd /= static_cast<double>(e.outputs);
  e.mean_direct /= static_cast<double>(e.outputs);
  std::cout << "  stride " << stride << ": error / ((K + 2) u sum|x w|) over " << e.outputs
            << " outputs: winograd worst " << e.worst_winograd << " mean " << e.mean_winograd << "; direct worst "
            << e.worst_direct << " mean " << e.mean_direct << "\n";
  return e;
}

// F(4x4, 3x3): its transforms B^T d B and A^T m A add and scale by up to 5 (input) and 8 (output)
// in each of two directions, and the weight transform's 1/6, 1/12 and 1/24 are inexact in binary,
// so in the worst case its error can exceed (K + 2) u sum|x w| by up to ~2^7: the slack
// MatchReferenceOnRandomShapes allows. Measured, its worst error is about 8x the direct kernel's
// and still a quarter of the plain bound; this holds it under the plain bound, and above the
// direct kernel's error (Winograd's rounding is visible: the test is not vacuous).
TEST(ConvAlgorithms, WinogradErrorBound) {
  const ErrorStats e = winograd_error(1, 4);
  EXPECT_LT(e.worst_winograd, 1.0);
  EXPECT_LT(e.worst_direct, 1.0);
  EXPECT_GT(e.worst_winograd, e.worst_direct);
}

// The stride-2 scheme's coefficients are 0 and +-1 and each output meets only its own window's
// inputs (kernels/winograd.hpp): a few more roundings per product than a direct sum.
TEST(ConvAlgorithms, WinogradStrideTwoErrorBound) {
  const ErrorStats e = winograd_error(2, 5);
  EXPECT_LT(e.worst_winograd, 1.0);
  EXPECT_LT(e.worst_direct, 1.0);
  EXPECT_LT(e.worst_winograd, 2 * e.worst_direct);  // measured: 0.5x
}

// Outputs of 16 MiB and more are written with non-temporal stores (ops::stream_output): the same
// values, checked here on layers big enough to take that path (the random shapes above are not).
TEST(ConvAlgorithms, LargeOutputsStreamedCorrectly) {
  tt::Generator gen(23);
  struct Big {
    tt::Shape input, weight;
    tt::Conv2dOptions options;
  };
  const Big cases[] = {
      {{2, 3, 255, 259}, {33, 3, 1, 1}, {}},  // 1x1: packed, one K block; odd rows: some not 64-byte aligned
      {{2, 4, 257, 256}, {32, 4, 3, 3}, {.padding = tt::Padding2d(1)}},                          // direct, one K block
      {{1, 3, 520, 520}, {64, 3, 7, 7}, {.stride = tt::Size2(2), .padding = tt::Padding2d(3)}},  // stem-like
  };
  for (const Big& c : cases) {
    const tt::Tensor x = tt::Tensor::randn(c.input, gen), w = tt::Tensor::randn(c.weight, gen);
    const tt::Tensor b = tt::Tensor::randn({c.weight[0]}, gen);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, c.options);
    ASSERT_GE(want.numel() * 4, int64_t{16} << 20);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), c.options);
    const double K = static_cast<double>(c.weight[1] * c.weight[2] * c.weight[3]);
    for (tt::Conv2dAlgorithm a : {tt::Conv2dAlgorithm::Packed, tt::Conv2dAlgorithm::Direct}) {
      const tt::Tensor got = tt::conv2d_with(a, x, w, b, c.options);
      int64_t bad = 0;
      for (int64_t i = 0; i < got.numel(); ++i) {
        bad += std::fabs(got.data()[i] - want.data()[i]) > (K + 2) * 0x1p-24 * magnitude.data()[i] + 1e-30;
      }
      EXPECT_EQ(bad, 0) << tt::to_string(a) << " " << tt::shape_to_string(c.input);
    }
  }
}

// The fused output stage (out = activation(conv + bias + residual), the graph runtime's fused
// nodes) as every algorithm applies it to the outputs its work items finish, against the
// reference convolution followed by the reference activation: on random shapes (several images,
// groups, strides, tiles straddling images, tails of panels), and on outputs large enough to be
// streamed, where the stage is a pass of its own.
TEST(ConvAlgorithms, OutputStageInEveryAlgorithm) {
  namespace k = tt::kernels;
  std::mt19937 rng(77);
  tt::Generator gen(78);
  const k::Epilogue epilogues[] = {{k::Activation::None, 0, 0},
                                   {k::Activation::Relu, 0, 0},
                                   {k::Activation::Clip, -0.5f, 0.7f},
                                   {k::Activation::LeakyRelu, 0.1f, 0},
                                   {k::Activation::HardSwish, 1.0f / 6, 0.5f},
                                   {k::Activation::Swish, 0, 0}};
  auto check = [&](const tt::Shape& input, const tt::Shape& weight, const tt::Conv2dOptions& options,
                   const std::vector<tt::Conv2dAlgorithm>& algorithms, int which) -> int {
    const tt::Tensor x = tt::Tensor::randn(input, gen), w = tt::Tensor::randn(weight, gen);
    const tt::Tensor b = tt::Tensor::randn({weight[0]}, gen);
    const tt::Tensor conv = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, options);
    const tt::Tensor magnitude =
        tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), options);
    const k::Epilogue e = epilogues[which % 6];
    const bool with_residual = which % 2 == 0 || e.activation == k::Activation::None;
    const tt::Tensor residual = with_residual ? tt::Tensor::randn(conv.shape(), gen) : tt::Tensor();
    const k::OutputStage stage{e, with_residual ? residual.data() : nullptr};
    const k::Conv2dGeometry g = tt::ops::conv2d_geometry(input, weight, b, options);
    const double K = static_cast<double>(weight[1] * weight[2] * weight[3]);
    int checked = 0;
    for (tt::Conv2dAlgorithm a : algorithms) {
      const auto& row = tt::ops::conv2d_algorithm_row(a);
      if (!row.supports(g)) continue;
      tt::Tensor got = tt::Tensor::empty(conv.shape());
      row.run(got.data(), x.data(), w.data(), b.data(), g, stage);
      // The convolution's bound (MatchReferenceOnRandomShapes; Winograd's wider), the residual's
      // addition, then the activation, whose slope is at most 1.1 (HardSwish) and whose own
      // rounding is a few ulp.
      const double slack = a == tt::Conv2dAlgorithm::Winograd ? 128.0 : 1.0;
      for (int64_t i = 0; i < got.numel(); ++i) {
        const double sum = conv.data()[i] + (with_residual ? residual.data()[i] : 0.0f);
        const double want = k::activation_reference(sum, e);
        const double bound = 1.1 * (slack * (K + 12) * 0x1p-24 * magnitude.data()[i] + 0x1p-23 * std::fabs(sum)) +
                             8 * 0x1p-24 * std::fabs(want) + 1e-30;
        if (std::fabs(got.data()[i] - want) > bound) {
          ADD_FAILURE() << tt::to_string(a) << " (" << tt::peak_isa() << ") with " << k::to_string(e)
                        << (with_residual ? " + residual" : "") << " on input " << tt::shape_to_string(input)
                        << " weight " << tt::shape_to_string(weight) << ": output " << i << " is " << got.data()[i]
                        << ", want " << want;
          return -1;
        }
      }
      ++checked;
    }
    return checked;
  };
  std::map<tt::Conv2dAlgorithm, int> per_algorithm;
  for (int trial = 0; trial < 120; ++trial) {
    const ConvCase c = random_case(rng);
    for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms())
      per_algorithm[a] += check(c.input, c.weight, c.options, {a}, trial);
  }
  for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
    EXPECT_GE(per_algorithm[a], a == tt::Conv2dAlgorithm::Reference ? 100 : 10) << tt::to_string(a);
  }
  // Streamed outputs (16 MiB and more): the stage after all items.
  const std::vector<tt::Conv2dAlgorithm> streaming = {tt::Conv2dAlgorithm::Packed, tt::Conv2dAlgorithm::Direct};
  EXPECT_EQ(check({2, 4, 257, 256}, {32, 4, 3, 3}, {.padding = tt::Padding2d(1)}, streaming, 2), 2);
  EXPECT_EQ(check({2, 3, 255, 259}, {33, 3, 1, 1}, {}, streaming, 3), 2);
}

// The batched algorithm's in-place form (a window that is the whole input: the GEMM reads the
// input and writes the output where they lie) with several groups and enough images for more than
// one block of rows, and its patch form on the same layers padded; against the reference.
TEST(ConvAlgorithms, BatchedWholeWindowGroupsAndRowBlocks) {
  tt::Generator gen(23);
  struct Case {
    tt::Shape x, w;
    tt::Conv2dOptions o;
  };
  const std::vector<Case> cases = {
      {{70, 1024, 1, 1}, {8, 1024, 1, 1}, {}},                                    // 2 row blocks of 1x1 maps
      {{70, 1024, 1, 1}, {24, 256, 1, 1}, {.groups = 4}},                         // groups, 2 row blocks
      {{5, 12, 3, 2}, {6, 4, 3, 2}, {.groups = 3}},                               // a whole 3x2 window, groups
      {{70, 256, 2, 2}, {16, 128, 2, 2}, {.groups = 2}},                          // whole 2x2 windows
      {{9, 12, 3, 2}, {6, 4, 3, 2}, {.padding = tt::Padding2d(1), .groups = 3}},  // patches
      // One row in all: a matrix-vector product (in place, or from the patches); a few: sgemm.
      {{1, 1024, 1, 1}, {40, 1024, 1, 1}, {}},
      {{1, 64, 2, 2}, {20, 32, 2, 2}, {.groups = 2}},
      {{1, 6, 3, 3}, {5, 6, 3, 3}, {.stride = tt::Size2(3), .padding = tt::Padding2d(1)}},  // one padded pixel
      {{1, 12, 3, 2}, {6, 4, 3, 2}, {.stride = tt::Size2(2), .padding = tt::Padding2d(1), .groups = 3}},  // 2x2 pixels
      {{3, 64, 2, 2}, {20, 32, 2, 2}, {.groups = 2}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(tt::shape_to_string(c.x) + " * " + tt::shape_to_string(c.w));
    const tt::Tensor x = tt::Tensor::randn(c.x, gen), w = tt::Tensor::randn(c.w, gen);
    const tt::Tensor b = tt::Tensor::randn({c.w[0]}, gen);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, c.o);
    const tt::Tensor magnitude = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(w), abs_of(b), c.o);
    const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Batched, x, w, b, c.o);
    ASSERT_EQ(got.shape(), want.shape());
    const double K = static_cast<double>(c.w[1] * c.w[2] * c.w[3]);
    for (int64_t i = 0; i < got.numel(); ++i) {
      ASSERT_LE(std::fabs(got.data()[i] - want.data()[i]), (K + 2) * 0x1p-24 * magnitude.data()[i] + 1e-30)
          << "flat index " << i;
    }
  }
}

// The depthwise algorithm on MobileNet-like 3x3 layers, which the random shapes above almost never
// draw: every height from 6 rows up, widths around the vector widths and the 8x8 transposes,
// padding 0 and 1, channel multipliers 1 and 2.
TEST(ConvAlgorithms, DepthwiseThreeByThreeRows) {
  tt::Generator gen(31);
  int checked = 0;
  for (int64_t h = 6; h <= 17; ++h) {
    for (int64_t w : {18, 19, 25, 34, 40}) {
      const int64_t C = 3, multiplier = 1 + (h + w) % 2;
      const tt::Conv2dOptions options{.padding = tt::Padding2d((h + w / 2) % 2), .groups = C};
      const tt::Tensor x = tt::Tensor::randn({2, C, h, w}, gen), wt = tt::Tensor::randn({C * multiplier, 1, 3, 3}, gen);
      const tt::Tensor b = tt::Tensor::randn({C * multiplier}, gen);
      const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, wt, b, options);
      const tt::Tensor magnitude =
          tt::conv2d_with(tt::Conv2dAlgorithm::Reference, abs_of(x), abs_of(wt), abs_of(b), options);
      const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Depthwise, x, wt, b, options);
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < got.numel(); ++i) {
        ASSERT_LE(std::fabs(got.data()[i] - want.data()[i]), 11 * 0x1p-24 * magnitude.data()[i] + 1e-30)
            << "input " << h << "x" << w << " at flat index " << i;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 60);
}

// The depthwise kernel on its own over randomized geometries: kernels 1-7 (even too), strides
// and dilations 1-3, any padding on either side, images from 1 pixel to wider than two vectors,
// channel multipliers 1-3, channel counts that leave a partial lane block, and random bands of
// output rows.
TEST(ConvAlgorithms, DepthwiseKernelMatchesReferenceOnRandomShapes) {
  namespace k = tinytorch::kernels;
  std::mt19937 rng(416);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  tt::Generator gen(17);
  int checked = 0;
  while (checked < 250) {
    k::Conv2dGeometry g{};
    g.N = pick(1, 2), g.C = pick(2, 40), g.OC = g.C * pick(1, 3), g.groups = g.C;
    g.H = pick(1, 30), g.W = pick(1, 40), g.KH = pick(1, 7), g.KW = pick(1, 7);
    g.stride_h = pick(1, 3), g.stride_w = pick(1, 3), g.dilation_h = pick(1, 3), g.dilation_w = pick(1, 3);
    if (pick(0, 2) == 0) g.KH = g.KW = 3, g.stride_h = g.stride_w = g.dilation_h = g.dilation_w = 1;  // MobileNet's
    g.pad_top = pick(0, 3), g.pad_left = pick(0, 3);
    const int64_t pad_bottom = pick(0, 3), pad_right = pick(0, 3);
    const int64_t span_h = (g.KH - 1) * g.dilation_h + 1, span_w = (g.KW - 1) * g.dilation_w + 1;
    if (g.H + g.pad_top + pad_bottom < span_h || g.W + g.pad_left + pad_right < span_w) continue;
    g.OH = (g.H + g.pad_top + pad_bottom - span_h) / g.stride_h + 1;
    g.OW = (g.W + g.pad_left + pad_right - span_w) / g.stride_w + 1;
    SCOPED_TRACE(::testing::Message() << g.N << "x" << g.C << "x" << g.H << "x" << g.W << " -> " << g.OC << ", " << g.KH
                                      << "x" << g.KW << ", stride " << g.stride_h << "x" << g.stride_w << ", dilation "
                                      << g.dilation_h << "x" << g.dilation_w << ", padding " << g.pad_top << ","
                                      << g.pad_left << " -> " << g.OH << "x" << g.OW);
    const tt::Tensor x = tt::Tensor::randn({g.N, g.C, g.H, g.W}, gen),
                     w = tt::Tensor::randn({g.OC, 1, g.KH, g.KW}, gen);
    const tt::Tensor b = tt::Tensor::randn({g.OC}, gen);
    const int64_t out_numel = g.N * g.OC * g.OH * g.OW;
    std::vector<float> want(out_numel), magnitude(out_numel), block(out_numel, NAN);
    k::conv2d_forward_reference(want.data(), x.data(), w.data(), b.data(), g);
    const tt::Tensor ax = abs_of(x), aw = abs_of(w), ab = abs_of(b);
    k::conv2d_forward_reference(magnitude.data(), ax.data(), aw.data(), ab.data(), g);

    const int64_t P = g.OH * g.OW, taps = g.KH * g.KW;
    const int64_t L = k::depthwise_block_lanes();
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t oc0 = 0; oc0 < g.OC; oc0 += L) {
        for (int64_t oh0 = 0; oh0 < g.OH;) {
          const int64_t oh1 = std::min<int64_t>(g.OH, oh0 + pick(1, 12));
          std::vector<float> scratch(k::depthwise_block_scratch_floats(g, oh1 - oh0), NAN);
          k::conv2d_depthwise_block(block.data() + n * g.OC * P, x.data() + n * g.C * g.H * g.W, w.data(), b.data(),
                                    oc0, oh0, oh1, scratch.data(), g);
          oh0 = oh1;
        }
      }
    }
    for (int64_t i = 0; i < out_numel; ++i) {
      const double bound = (taps + 2) * 0x1p-24 * magnitude[i] + 1e-30;
      ASSERT_LE(std::fabs(block[i] - want[i]), bound) << "flat index " << i;
    }
    ++checked;
  }
}

// Winograd keeps its transformed weights between calls, and the direct kernel its packed weights
// (ops/prepared_weights.hpp). A weight changed in place - same address, same shape - must be seen:
// every output is checked against a fresh preparation, bit for bit, after changing one element,
// all elements, or nothing.
TEST(ConvAlgorithms, PreparedWeightsFollowInPlaceChanges) {
  namespace ops = tt::ops;
  tt::Generator gen(31);
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::set_prepared_weight_budget(int64_t{64} << 20);  // on, whatever TINYTORCH_WEIGHT_CACHE_MB says
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  const tt::Conv2dOptions s2{.stride = tt::Size2(2, 2), .padding = tt::Padding2d(1)};
  const std::pair<tt::Conv2dAlgorithm, tt::Conv2dOptions> runs[] = {
      {tt::Conv2dAlgorithm::Winograd, same}, {tt::Conv2dAlgorithm::Winograd, s2}, {tt::Conv2dAlgorithm::Direct, same}};
  for (const auto& [algorithm, options] : runs) {
    SCOPED_TRACE(tt::to_string(algorithm) + " stride " + std::to_string(options.stride.h));
    // 3 x 11 x 9 pixels: more than the direct kernel reads in the weight's rows (reads_weight_rows).
    const tt::Tensor x = tt::Tensor::randn({3, 13, 11, 9}, gen), b = tt::Tensor::randn({17}, gen);
    tt::Tensor w = tt::Tensor::randn({17, 13, 3, 3}, gen);
    // A fresh transform of the weight's values now: the same call on a copy (another address,
    // so never a cached entry of w's), run with the cache emptied and put back to 0 entries after.
    auto cold = [&] {
      const tt::Tensor copy = w.clone();
      return tt::conv2d_with(algorithm, x, copy, b, options);
    };
    ops::clear_prepared_weights();
    const tt::Tensor want_first = cold();
    ops::clear_prepared_weights();
    const tt::Tensor first = tt::conv2d_with(algorithm, x, w, b, options);
    EXPECT_TRUE(first.equal(want_first));
    EXPECT_EQ(ops::prepared_weight_stats().misses, 1);
    const tt::Tensor again = tt::conv2d_with(algorithm, x, w, b, options);
    EXPECT_TRUE(again.equal(first));
    EXPECT_EQ(ops::prepared_weight_stats().hits, 1);

    w.data()[w.numel() - 1] += 0.5f;  // the last element only: the comparison must reach it
    const tt::Tensor changed = tt::conv2d_with(algorithm, x, w, b, options);
    EXPECT_EQ(ops::prepared_weight_stats().misses, 2);
    EXPECT_FALSE(changed.equal(first));
    EXPECT_TRUE(changed.equal(cold()));

    for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = -w.data()[i];  // an optimizer step, say
    const int64_t entries = ops::prepared_weight_stats().entries;
    const tt::Tensor stepped = tt::conv2d_with(algorithm, x, w, b, options);
    EXPECT_EQ(ops::prepared_weight_stats().entries, entries);  // w's entry refilled, not a second one
    EXPECT_TRUE(stepped.equal(cold()));
  }
  {
    // A weight of several comparison chunks (65536 floats each, compared across threads): a change
    // inside a middle chunk is seen too.
    const tt::Tensor x = tt::Tensor::randn({1, 128, 17, 17}, gen);
    tt::Tensor w = tt::Tensor::randn({160, 128, 3, 3}, gen);
    const tt::Tensor first = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
    const int64_t misses = ops::prepared_weight_stats().misses;
    EXPECT_TRUE(tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same).equal(first));
    EXPECT_EQ(ops::prepared_weight_stats().misses, misses);
    w.data()[70000] += 0.5f;
    const tt::Tensor changed = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
    EXPECT_EQ(ops::prepared_weight_stats().misses, misses + 1);
    EXPECT_TRUE(changed.equal(tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w.clone(), tt::Tensor(), same)));
    EXPECT_FALSE(changed.equal(first));
  }
  ops::set_prepared_weight_budget(saved);
  ops::clear_prepared_weights();
}

// Eager direct calls of at most 256 pixels in all images read the weight's rows in place (no packed
// copy kept or compared); frozen weights (the graph runtime's) keep packed panels. Both give the
// same bits (but for the last pixels that dot products on the rows take: the same sums in another
// order, within the reference's bound), on every path of the kernel: 1x1 read in place, column
// planes, bands of a large image's planes, tiles straddling two images, groups, the last panel
// short of MR rows, the wide tile. And the rows follow the weight's changes with no entry in the
// cache.
TEST(ConvAlgorithms, DirectWeightRowsAsThePackedPanels) {
  namespace ops = tt::ops;
  tt::Generator gen(35);
  struct Case {
    tt::Shape input, weight;
    tt::Conv2dOptions options;
  };
  const Case cases[] = {
      {{1, 64, 7, 7}, {100, 64, 1, 1}, {}},
      {{3, 20, 9, 9}, {26, 20, 1, 1}, {}},
      {{2, 16, 10, 11}, {30, 16, 3, 3}, {.padding = tt::Padding2d(1)}},
      {{4, 6, 13, 13}, {14, 3, 3, 2}, {.stride = tt::Size2(2), .dilation = tt::Size2(2, 1), .groups = 2}},
      {{1, 160, 16, 16}, {20, 160, 3, 3}, {.padding = tt::Padding2d(1)}},  // planes of 1.8 MB: bands
      {{1, 300, 5, 5}, {64, 300, 5, 5}, {.padding = tt::Padding2d(2)}},
      // rows 4 KiB apart (1024 taps), in tiles of at most the L1's ways: 1x1 in place, tiles
      // straddling two images, column planes, groups
      {{1, 1024, 5, 5}, {30, 1024, 1, 1}, {}},
      {{2, 1024, 6, 6}, {21, 1024, 1, 1}, {}},
      {{1, 1024, 4, 3}, {13, 1024, 3, 3}, {.padding = tt::Padding2d(1)}},
      {{1, 2048, 3, 3}, {18, 1024, 1, 1}, {.stride = tt::Size2(2), .groups = 2}},
      // a last tile of at most an eighth of its lanes by dot products (tiles of 32 pixels with
      // AVX-512, 16 with AVX2): 1x1 in place (196 = 6 x 32 + 4), column planes in groups, images
      // smaller than a tile, the last tile straddling two images (68 = 2 x 32 + 4), 18 = 16 + 2
      {{1, 160, 14, 14}, {40, 160, 1, 1}, {}},
      {{1, 64, 10, 10}, {18, 32, 3, 3}, {.padding = tt::Padding2d(1), .groups = 2}},
      {{2, 160, 1, 2}, {30, 160, 1, 1}, {}},
      {{2, 136, 2, 17}, {20, 136, 1, 1}, {}},
      {{1, 96, 9, 2}, {24, 96, 1, 1}, {}},
      // the wide tile with AVX-512 (48 pixels, 8 rows; direct_tile): 1x1 in place with a half-height
      // last tile (100 = 12 x 8 + 4), column planes (50 = 48 + 2), rows 4 KiB apart in four K
      // blocks, groups of 64 outputs
      {{1, 256, 7, 7}, {100, 256, 1, 1}, {}},
      {{1, 24, 5, 10}, {70, 24, 3, 3}, {.padding = tt::Padding2d(1)}},
      {{1, 1024, 7, 7}, {64, 1024, 1, 1}, {}},
      {{1, 64, 7, 7}, {128, 32, 3, 3}, {.padding = tt::Padding2d(1), .groups = 2}},
  };
  const int saved = tt::get_num_threads();
  int dot_cases = 0, wide_cases = 0;
  // Rows 4 KiB apart go in tiles of as many rows as L1 has ways: both an 8-way L1 (Zen 4,
  // Skylake-X: tiles of 8 with AVX-512) and a 12-way one (Sapphire Rapids: whole tiles), whatever
  // this machine's.
  const auto runs = [](const Case& c) {
    const bool aliased = c.weight[1] * c.weight[2] * c.weight[3] % 1024 == 0;
    return aliased ? std::vector<int>{8, 12} : std::vector<int>{0};
  };
  for (const Case& c : cases)
    for (int ways : runs(c)) {
      tt::kernels::set_l1d_ways(ways);
      SCOPED_TRACE(tt::shape_to_string(c.input) + " * " + tt::shape_to_string(c.weight) + ", L1 ways " +
                   std::to_string(ways));
      const tt::Tensor x = tt::Tensor::randn(c.input, gen), b = tt::Tensor::randn({c.weight[0]}, gen);
      tt::Tensor w = tt::Tensor::randn(c.weight, gen);
      tt::Tensor packed;
      // An owner per run: the next run's weight may be allocated where this one's was.
      const uint64_t owner = ops::new_frozen_owner();
      {
        const ops::FrozenWeights frozen(owner);
        packed = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, b, c.options);
      }
      const int64_t entries = ops::prepared_weight_stats().entries;
      // The last pixels a short last tile would hold go to dot products on the rows: the same
      // sums in another order.
      const ops::Conv2dGeometry g = ops::conv2d_geometry(c.input, c.weight, b, c.options);
      const int64_t dots = ops::conv2d_direct_dot_pixels(g), P = g.OH * g.OW;
      dot_cases += dots > 0;
      wide_cases += ops::conv2d_direct_tile_width(g) != tt::kernels::packed_gemm_tile().nr;
      // Whether pixel p of image n is one of the dot products' (the last of all images' pixels in one
      // run, or of each image's where an image is smaller than a tile: conv2d_direct_dot_pixels).
      const bool one_run = P >= ops::conv2d_direct_tile_width(g);
      const auto dotted = [&](int64_t n, int64_t p) {
        return one_run ? n * P + p >= g.N * P - dots : p >= P - dots / g.N;
      };
      for (int threads : {1, 2}) {
        tt::set_num_threads(threads);
        const tt::Tensor rows = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, b, c.options);
        int64_t differ = 0;  // outside the dot products' pixels, bit for bit (theirs: against the reference, below)
        for (int64_t i = 0; i < rows.numel(); ++i)
          differ += !dotted(i / (g.OC * P), i % P) && rows.data()[i] != packed.data()[i];
        EXPECT_EQ(differ, 0) << threads;
      }
      EXPECT_EQ(ops::prepared_weight_stats().entries, entries);
      w.data()[w.numel() - 1] += 0.5f;
      const tt::Tensor changed = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, b, c.options);
      EXPECT_FALSE(changed.equal(packed));
      expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Direct, x, w, b, c.options,
                                              static_cast<double>(c.weight[1] * c.weight[2] * c.weight[3] + 2));
      ops::release_frozen_weights(owner);
    }
  tt::kernels::set_l1d_ways(0);
  tt::set_num_threads(saved);
  EXPECT_GE(dot_cases, 2) << "no case took the dot products of the last pixels on " << tt::peak_isa();
  if (tt::kernels::wide_gemm_tile().nr > 0) EXPECT_GE(wide_cases, 4) << "the wide tile was hardly taken";
}

// A frozen owner's (a loaded model's) prepared weights are its own: a budget far below them, even
// 0, evicts none, and two owners' calls in turn each hit their own entries. Eager entries still
// go by the budget.
TEST(ConvAlgorithms, FrozenOwnersKeepTheirPreparedWeightsOutsideTheBudget) {
  namespace ops = tt::ops;
  tt::Generator gen(34);
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::clear_prepared_weights();
  ops::set_prepared_weight_budget(0);
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  const tt::Tensor x = tt::Tensor::randn({1, 16, 17, 17}, gen);
  const tt::Tensor w1 = tt::Tensor::randn({16, 16, 3, 3}, gen), w2 = tt::Tensor::randn({16, 16, 3, 3}, gen);
  const uint64_t a = ops::new_frozen_owner(), b = ops::new_frozen_owner();
  const auto call = [&](uint64_t owner, const tt::Tensor& w) {
    const ops::FrozenWeights frozen(owner);
    return tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, tt::Tensor(), same);
  };
  const tt::Tensor y1 = call(a, w1), y2 = call(b, w2);
  EXPECT_EQ(ops::prepared_weight_stats().entries, 2);
  EXPECT_EQ(ops::prepared_weight_stats().bytes, 0);  // the budget's count: eager entries only
  EXPECT_GT(ops::prepared_weight_stats().frozen_bytes, 0);
  const int64_t misses = ops::prepared_weight_stats().misses;
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(call(a, w1).equal(y1));
    EXPECT_TRUE(call(b, w2).equal(y2));
  }
  EXPECT_EQ(ops::prepared_weight_stats().misses, misses);
  tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w1, tt::Tensor(), same);  // eager: over the budget of 0
  EXPECT_EQ(ops::prepared_weight_stats().entries, 2);
  ops::release_frozen_weights(a);
  EXPECT_EQ(ops::prepared_weight_stats().entries, 1);
  ops::release_frozen_weights(b);
  EXPECT_EQ(ops::prepared_weight_stats().entries, 0);
  EXPECT_EQ(ops::prepared_weight_stats().frozen_bytes, 0);
  ops::set_prepared_weight_budget(saved);
  ops::clear_prepared_weights();
}

// The budget evicts least recently used entries; calls stay right whatever it holds.
// What autotuning prepared for the algorithms that lost goes: drop_prepared_weights keeps only
// the kinds it is told for that weight, and other weights' entries.
TEST(ConvAlgorithms, DropPreparedWeightsKeepsTheWinnersKind) {
  namespace ops = tt::ops;
  tt::Generator gen(33);
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::set_prepared_weight_budget(int64_t{64} << 20);
  ops::clear_prepared_weights();
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  const tt::Tensor x = tt::Tensor::randn({1, 16, 17, 17}, gen);  // 289 pixels: direct keeps packed panels
  const tt::Tensor w = tt::Tensor::randn({16, 16, 3, 3}, gen), other = tt::Tensor::randn({16, 16, 3, 3}, gen);
  for (tt::Conv2dAlgorithm a :
       {tt::Conv2dAlgorithm::Winograd, tt::Conv2dAlgorithm::Direct, tt::Conv2dAlgorithm::Ocblock})
    tt::conv2d_with(a, x, w, tt::Tensor(), same);
  tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, other, tt::Tensor(), same);
  ASSERT_EQ(ops::prepared_weight_stats().entries, 4);
  ops::drop_prepared_weights(w.data(), {ops::kDirectPacked});
  EXPECT_EQ(ops::prepared_weight_stats().entries, 2);  // w's direct packing and other's Winograd U
  const int64_t hits = ops::prepared_weight_stats().hits;
  tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
  tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, other, tt::Tensor(), same);
  EXPECT_EQ(ops::prepared_weight_stats().hits, hits + 2);
  ops::drop_prepared_weights(w.data(), {});
  EXPECT_EQ(ops::prepared_weight_stats().entries, 1);
  ops::set_prepared_weight_budget(saved);
  ops::clear_prepared_weights();
}

// The kernels load prepared forms 16 floats at a time: every one starts on a 64-byte cache line,
// small ones (from malloc's heap) and large ones (mmap'd pages behind its 16-byte header) alike.
TEST(ConvAlgorithms, PreparedWeightsStartOnACacheLine) {
  namespace ops = tt::ops;
  std::vector<float> weight(64, 1.0f);
  for (int64_t floats : {int64_t{1}, int64_t{13}, int64_t{1000}, int64_t{40000}, int64_t{3} << 20}) {
    const ops::PreparedTag tag{ops::kDirectPacked, floats, 7, 7, 7};
    auto entry = ops::prepared_weight(tag, weight.data(), 64, floats, [&](float* out) { out[floats - 1] = 2.0f; });
    ASSERT_EQ(static_cast<int64_t>(entry->prepared.size()), floats);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(entry->prepared.data()) % 64, 0U) << floats << " floats";
    EXPECT_EQ(entry->prepared[static_cast<size_t>(floats - 1)], 2.0f);
  }
  ops::clear_prepared_weights();
}

TEST(ConvAlgorithms, PreparedWeightsBudget) {
  namespace ops = tt::ops;
  tt::Generator gen(32);
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::set_prepared_weight_budget(int64_t{64} << 20);  // on, whatever TINYTORCH_WEIGHT_CACHE_MB says
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  const tt::Tensor x = tt::Tensor::randn({1, 8, 10, 10}, gen);
  std::vector<tt::Tensor> weights;
  for (int i = 0; i < 6; ++i) weights.push_back(tt::Tensor::randn({8, 8, 3, 3}, gen));
  ops::clear_prepared_weights();
  tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, weights[0], tt::Tensor(), same);
  const int64_t one = ops::prepared_weight_stats().bytes;
  ASSERT_GT(one, 0);
  ops::set_prepared_weight_budget(3 * one);
  for (int round = 0; round < 2; ++round) {
    for (const tt::Tensor& w : weights) {
      const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, tt::Tensor(), same);
      const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, tt::Tensor(), same);
      for (int64_t i = 0; i < got.numel(); ++i) ASSERT_NEAR(got.data()[i], want.data()[i], 1e-3);
      EXPECT_LE(ops::prepared_weight_stats().bytes, 3 * one);
    }
  }
  EXPECT_EQ(ops::prepared_weight_stats().entries, 3);
  // weights[0]'s first call in the loop finds the entry measured above; after that six weights
  // cycle through three places, least recently used out first: no hits.
  EXPECT_EQ(ops::prepared_weight_stats().hits, 1);
  // The public controls (tinytorch/backends.hpp) over the same cache.
  tt::set_weight_cache_bytes(0);
  EXPECT_EQ(ops::prepared_weight_stats().entries, 0);
  EXPECT_EQ(tt::weight_cache_held_bytes(), 0);
  EXPECT_EQ(tt::get_weight_cache_bytes(), 0);
  try {
    tt::set_weight_cache_bytes(-5);
    ADD_FAILURE() << "a negative budget was accepted";
  } catch (const tt::ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("expected a budget of 0 bytes or more, got -5"), std::string::npos)
        << e.what();
  }
  tt::set_weight_cache_bytes(saved);
  ops::clear_prepared_weights();
}

// Threads calling layers at once, each changing its own weight between calls (ThreadSanitizer
// runs this: the lookups, the comparisons outside the lock, the refills).
TEST(ConvAlgorithms, PreparedWeightsFromManyThreads) {
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  std::vector<std::thread> threads;
  std::vector<int> failures(3, 0);
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      tt::Generator gen(100 + t);
      const tt::Tensor x = tt::Tensor::randn({1, 6, 9, 9}, gen);
      tt::Tensor w = tt::Tensor::randn({7, 6, 3, 3}, gen);
      for (int step = 0; step < 20; ++step) {
        if (step % 3 == 0) w.data()[step] += 1.0f;
        const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Winograd, x, w, tt::Tensor(), same);
        const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, tt::Tensor(), same);
        for (int64_t i = 0; i < got.numel(); ++i) failures[t] += std::fabs(got.data()[i] - want.data()[i]) > 1e-3;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 3; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  tt::ops::clear_prepared_weights();
}

// The algorithm table (src/ops/conv2d_table.cpp) is complete: every value of Conv2dAlgorithm but
// Auto has exactly one row, at its place, with a unique name that round-trips through the public
// API; and every row is reachable: some shape of a small zoo is supported and, forced, runs and
// matches the reference (so a row cannot be added that the op never reaches, nor a value left
// without a row).
TEST(ConvAlgorithms, TableIsCompleteAndEveryRowIsReachable) {
  const auto& table = tt::ops::conv2d_algorithm_table();
  const int last = static_cast<int>(tt::Conv2dAlgorithm::Blocked);
  ASSERT_EQ(table.size(), static_cast<size_t>(last));
  std::set<std::string> names{"auto"};
  for (int v = 1; v <= last; ++v) {
    const auto a = static_cast<tt::Conv2dAlgorithm>(v);
    const auto& row = tt::ops::conv2d_algorithm_row(a);
    EXPECT_EQ(row.id, a);
    EXPECT_TRUE(names.insert(row.name).second) << "name given twice: " << row.name;
    EXPECT_EQ(tt::conv2d_algorithm_from_string(row.name), a);
    EXPECT_EQ(tt::to_string(a), row.name);
    ASSERT_NE(row.supports, nullptr);
    ASSERT_NE(row.run, nullptr);
    ASSERT_NE(row.workspace_bytes, nullptr);
  }
  EXPECT_EQ(tt::all_conv2d_algorithms().size(), table.size());
  struct Zoo {
    tt::Shape x, w;
    tt::Conv2dOptions o;
  };
  const std::vector<Zoo> zoo = {
      {{2, 16, 9, 11}, {16, 16, 3, 3}, {.padding = tt::Padding2d(1)}},            // 3x3 stride 1
      {{2, 16, 9, 11}, {16, 16, 3, 3}, {.stride = tt::Size2(2)}},                 // 3x3 stride 2
      {{2, 8, 5, 7}, {6, 8, 1, 1}, {}},                                           // 1x1
      {{2, 6, 7, 5}, {12, 1, 3, 3}, {.padding = tt::Padding2d(1), .groups = 6}},  // depthwise, multiplier 2
      {{1, 4, 6, 6}, {6, 2, 2, 3}, {.dilation = tt::Size2(2), .groups = 2}},      // grouped, dilated
  };
  for (const auto& row : table) {
    int reached = 0;
    for (const Zoo& z : zoo) {
      if (!tt::conv2d_algorithm_supports(row.id, z.x, z.w, z.o)) continue;
      ++reached;
      const tt::Tensor x = tt::Tensor::randn(z.x), w = tt::Tensor::randn(z.w);
      const tt::Tensor got = tt::conv2d_with(row.id, x, w, {}, z.o);
      const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, {}, z.o);
      EXPECT_TRUE(got.allclose(want, 1e-4, 1e-4)) << row.name;
    }
    EXPECT_GT(reached, 0) << row.name << " supports no shape of the zoo";
  }
}

// A gradient of one shape, `grad` (an op of conv2d_backward.cpp) against `reference`, both
// (out, dy, operand, g): the same bits on one thread and two, and within the sum's rounding of
// `terms` products of the reference.
namespace {
using GradientFn = void (*)(float*, const float*, const float*, const tt::kernels::Conv2dGeometry&);

void check_gradient(const char* what, GradientFn grad, GradientFn reference, const tt::Tensor& dy,
                    const tt::Tensor& operand, size_t count, double terms, const tt::kernels::Conv2dGeometry& g,
                    const tt::Shape& input, const tt::Shape& weight) {
  std::vector<float> one(count), two(count), want(count), size(count);
  const int saved = tt::get_num_threads();
  tt::set_num_threads(1);
  grad(one.data(), dy.data(), operand.data(), g);
  tt::set_num_threads(2);
  grad(two.data(), dy.data(), operand.data(), g);
  tt::set_num_threads(saved);
  reference(want.data(), dy.data(), operand.data(), g);
  reference(size.data(), abs_of(dy).data(), abs_of(operand).data(), g);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(one[i], two[i]) << what << " " << i << " differs between one thread and two";
    ASSERT_NEAR(one[i], want[i], (terms + 2) * 0x1p-24 * size[i] + 1e-30)
        << what << " " << i << " of input " << tt::shape_to_string(input) << " weight " << tt::shape_to_string(weight);
  }
}

// The weight gradient of one shape (a sum over every output pixel of every image).
void check_weight_gradient(const tt::Shape& input, const tt::Shape& weight, const tt::Conv2dOptions& o,
                           tt::Generator& gen) {
  const tt::Tensor x = tt::Tensor::randn(input, gen), w = tt::Tensor::randn(weight, gen);
  const tt::kernels::Conv2dGeometry g = tt::ops::conv2d_geometry(input, weight, tt::Tensor(), o);
  const tt::Tensor dy = tt::Tensor::randn({input[0], g.OC, g.OH, g.OW}, gen);
  check_gradient("weight gradient", tt::ops::conv2d_backward_weight, tt::kernels::conv2d_backward_weight_reference, dy,
                 x, static_cast<size_t>(w.numel()), static_cast<double>(input[0] * g.OH * g.OW), g, input, weight);
}
}  // namespace

// The weight gradient (ops/conv2d_backward.cpp) against the reference: images in chunks side by
// side, the 1x1 case read in place, groups, strides, dilations, padding; and the same bits on one
// thread and two. Shapes large enough that a chunk holds one image (the in-place 1x1 path) run too.
TEST(ConvBackward, WeightGradientMatchesTheReferenceOnAnyThreadCount) {
  std::mt19937 rng(41);
  tt::Generator gen(42);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int saved = tt::get_num_threads();
  for (int trial = 0; trial < 24; ++trial) {
    const bool big = trial < 3;                       // per image (groups K + OC) P above half the chunk's 4M floats
    const bool depthwise = trial >= 3 && trial < 12;  // groups == C == OC: its own loop
    const int64_t groups = big ? 1 : depthwise ? pick(2, 40) : std::vector<int64_t>{1, 2, 3}[pick(0, 2)];
    const int64_t cg = big ? 64 : depthwise ? 1 : pick(1, 6), ocg = big ? 64 : depthwise ? 1 : pick(1, 7);
    const int64_t kh = big ? (trial == 2 ? 3 : 1) : pick(1, depthwise ? 5 : 3);  // trial 2: not in place
    const int64_t kw = big ? kh : pick(1, depthwise ? 5 : 3);
    tt::Conv2dOptions o;
    o.stride = big ? tt::Size2(1, 1) : tt::Size2(pick(1, 2), pick(1, 2));
    o.dilation = big ? tt::Size2(1, 1) : tt::Size2(pick(1, 2), pick(1, 2));
    o.padding = big ? tt::Padding2d(0, 0) : tt::Padding2d(pick(0, depthwise ? 2 : 1), pick(0, depthwise ? 2 : 1));
    o.groups = groups;
    const int64_t N = big ? 2 : pick(1, 9), H = big ? 130 : pick(10, 40), W = big ? 131 : pick(10, 40);
    check_weight_gradient({N, groups * cg, H, W}, {groups * ocg, cg, kh, kw}, o, gen);
  }
  tt::set_num_threads(saved);
}

// The weight gradient by channel lanes (kernels/depthwise/block.hpp) against the reference.
// Depthwise layers: channel multipliers 1-3, channel counts off the vector width, kernels of 1-9
// taps a side (rows of taps in runs of up to 7), images narrower than a vector, padding wider than
// the kernel, strides and dilations 1-3, one image cut in bands over several items and many images
// in runs. Grouped and dense layers the lanes rule takes (2+ taps, 8+ outputs or one group, OCG <=
// 64, OCG * stride_h * stride_w <= 4 * taps): lanes spanning groups, 1-9 input channels per group,
// dense layers of 1-6 outputs, and
// groups of 8, 16 or 24 outputs (blocks of lanes inside one group, the input broadcast; 24 with 16
// lanes: blocks inside one group and blocks across two). The same bits on one thread and two.
TEST(ConvBackward, WeightGradientByChannelLanesMatchesTheReference) {
  std::mt19937 rng(46);
  tt::Generator gen(47);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 48; ++trial) {
    const bool depthwise = trial < 24, whole = trial >= 40;  // whole: groups of 8-24 outputs
    const int64_t groups = depthwise ? pick(2, 40) : pick(1, 8), cg = depthwise ? 1 : pick(1, 9);
    const int64_t ocg = depthwise ? pick(1, 3) : whole ? 8 * pick(1, 3) : pick(1, 6);
    const int64_t kh = pick(depthwise ? 1 : 2, 9), kw = pick(1, 9);
    tt::Conv2dOptions o;
    o.stride = tt::Size2(pick(1, 3), pick(1, 3));
    o.dilation = tt::Size2(pick(1, 3), pick(1, 3));
    o.padding = tt::Padding2d(pick(0, 4), pick(0, 4));
    o.groups = groups;
    const int64_t N = pick(1, 5), H = pick(1, 40), W = pick(1, 40);
    const bool fits = (kh - 1) * o.dilation.h + 1 <= H + 2 * o.padding.h &&
                      (kw - 1) * o.dilation.w + 1 <= W + 2 * o.padding.w;  // the window fits the padded image
    const bool lanes = (groups * ocg >= 8 || groups == 1) && ocg * o.stride.h * o.stride.w <= 4 * kh * kw;
    if (!fits || (!depthwise && !lanes)) {
      --trial;
      continue;
    }
    check_weight_gradient({N, groups * cg, H, W}, {groups * ocg, cg, kh, kw}, o, gen);
  }
}

// The weight gradient on our micro-kernels (tiles_rule: a window, a tile's width of output
// channels per group, more taps than those and enough pixels) against the reference, the same
// bits on one thread and two: random layers (groups, strides, dilations, padding, windows up to
// 5x4, batches of small images whose slabs of col span several images), and the shape cases: dy
// in two chunks of images with the pixels cut in parts (one block of taps, the parts' sums added
// at the end), three blocks of taps in one chunk (each item writing its own taps of dw), a
// last panel of output channels short of the tile's width, groups.
TEST(ConvBackward, WeightGradientOnTheTilesMatchesTheReference) {
  std::mt19937 rng(48);
  tt::Generator gen(49);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t groups = pick(1, 3), cg = pick(1, 40), ocg = pick(16, 80), kh = pick(1, 5), kw = pick(1, 4);
    tt::Conv2dOptions o;
    o.stride = tt::Size2(pick(1, 3), pick(1, 3));
    o.dilation = tt::Size2(pick(1, 2), pick(1, 2));
    o.padding = tt::Padding2d(pick(0, 2), pick(0, 2));
    o.groups = groups;
    const tt::Shape input{pick(1, 6), groups * cg, pick(3, 40), pick(3, 40)}, weight{groups * ocg, cg, kh, kw};
    const bool fits = (kh - 1) * o.dilation.h + 1 <= input[2] + 2 * o.padding.h &&
                      (kw - 1) * o.dilation.w + 1 <= input[3] + 2 * o.padding.w;
    if (!fits || !tt::ops::conv2d_backward_weight_on_tiles(tt::ops::conv2d_geometry(input, weight, tt::Tensor(), o))) {
      --trial;
      continue;
    }
    check_weight_gradient(input, weight, o, gen);
  }
  const struct {
    tt::Shape input, weight;
    tt::Conv2dOptions o;
  } cases[] = {
      {{7, 5, 100, 100}, {40, 5, 3, 3}, {.padding = tt::Padding2d(1)}},
      {{2, 40, 9, 9}, {48, 40, 3, 3}, {.padding = tt::Padding2d(1)}},
      {{3, 24, 10, 10}, {80, 12, 3, 3}, {.groups = 2}},
      {{2, 20, 30, 30}, {70, 20, 3, 3}, {.stride = tt::Size2(2)}},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(
        tt::ops::conv2d_backward_weight_on_tiles(tt::ops::conv2d_geometry(c.input, c.weight, tt::Tensor(), c.o)))
        << tt::shape_to_string(c.input) << " * " << tt::shape_to_string(c.weight);
    check_weight_gradient(c.input, c.weight, c.o, gen);
  }
}

// The weight gradient's shape rules: one block of dw (80 rows, 45 or 16 columns) cut in two by
// rows so that two threads share it (its col built once for both); a 1x1 layer's images of 128
// pixels or more (here 1056, 130, 144 and 132) each a chunk of its own, read in place, in two
// halves of the images summed at the end where there are fewer than 8 blocks (not for one image or
// 9 blocks); blocks of 128 columns that start inside a channel's taps building their own rows of
// col for chunks of several images.
TEST(ConvBackward, WeightGradientCutsOneBlockByRowsAndReadsLongImagesInPlace) {
  tt::Generator gen(43);
  check_weight_gradient({3, 5, 11, 12}, {80, 5, 3, 3}, {.padding = tt::Padding2d(1)}, gen);
  check_weight_gradient({3, 16, 33, 32}, {80, 16, 1, 1}, {}, gen);
  check_weight_gradient({2, 16, 33, 32}, {80, 8, 1, 1}, {.groups = 2}, gen);
  check_weight_gradient({3, 200, 10, 13}, {40, 200, 1, 1}, {}, gen);
  check_weight_gradient({1, 40, 12, 12}, {24, 40, 1, 1}, {}, gen);
  check_weight_gradient({2, 1100, 12, 11}, {16, 1100, 1, 1}, {}, gen);
  check_weight_gradient({4, 40, 12, 13}, {24, 40, 3, 3}, {.padding = tt::Padding2d(1)}, gen);
  check_weight_gradient({3, 30, 17, 19}, {6, 30, 5, 4},
                        {.stride = tt::Size2(3), .padding = tt::Padding2d(2), .dilation = tt::Size2(1, 2)}, gen);
}

// The input gradient of one shape (a sum over a group's output channels and the taps).
namespace {
void check_input_gradient(const tt::Shape& input, const tt::Shape& weight, const tt::Conv2dOptions& o,
                          tt::Generator& gen) {
  const tt::Tensor w = tt::Tensor::randn(weight, gen);
  const tt::kernels::Conv2dGeometry g = tt::ops::conv2d_geometry(input, weight, tt::Tensor(), o);
  const tt::Tensor dy = tt::Tensor::randn({input[0], g.OC, g.OH, g.OW}, gen);
  check_gradient("input gradient", tt::ops::conv2d_backward_input, tt::kernels::conv2d_backward_input_reference, dy, w,
                 static_cast<size_t>(input[0] * g.C * g.H * g.W),
                 static_cast<double>(g.out_channels_per_group() * g.KH * g.KW), g, input, weight);
}
}  // namespace

// The input gradient (ops/conv2d_backward.cpp) against the reference, and the same bits on one
// thread and two. Stride 1 runs as a forward convolution; other strides by phases for depthwise
// layers (kernels of 1-5 taps, strides 2-3, padding up to 3: phases no tap reaches, phases whose
// convolution starts past dy's first row) and dense layers of 9-31 outputs and wide windows (of 8
// or fewer: by channel lanes, below), and otherwise through dcol and col2im in blocks of whole
// channels: of one or a few of a group's 2-9 channels on the large images here, whole groups on the
// small.
TEST(ConvBackward, InputGradientMatchesTheReferenceByPhasesAndInChannelBlocks) {
  std::mt19937 rng(44);
  tt::Generator gen(45);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 24; ++trial) {
    const bool blocks = trial < 8, big = trial < 4;  // big: a channel's rows of dcol fill much of a block
    const bool depthwise = trial >= 16;              // else, from trial 8: dense, 4-5 taps down, stride 2
    const int64_t sh = blocks || depthwise ? pick(2, 3) : 2, sw = pick(1, depthwise ? 3 : 2);
    const int64_t groups = depthwise ? pick(2, 12) : blocks ? std::vector<int64_t>{1, 2, 3}[pick(0, 2)] : 1;
    const int64_t cg = depthwise ? 1 : pick(2, 9), ocg = depthwise ? 1 : pick(9, 14);  // past the lanes' 8
    const int64_t kh = pick(blocks ? (big ? 2 : 1) : depthwise ? 1 : 4, 5);
    const int64_t kw = pick(blocks || depthwise ? 1 : 2 * sw, 5);
    tt::Conv2dOptions o;
    o.stride = tt::Size2(sh, sw);
    o.dilation = tt::Size2(blocks ? 2 : pick(1, 2) == 2 && sh == 2 ? 2 : 1, sw == 2 ? pick(1, 2) : 1);
    o.padding = tt::Padding2d(pick(0, 3), pick(0, 3));
    o.groups = groups;
    const int64_t N = pick(1, big ? 2 : 3), H = big ? pick(100, 200) : pick(9, 30),
                  W = big ? pick(100, 200) : pick(9, 30);
    check_input_gradient({N, groups * cg, H, W}, {groups * ocg, cg, kh, kw}, o, gen);
  }
}

// The stride-1 input gradient, a forward convolution of dy with the weight flipped (taps reversed,
// channels swapped per group, in blocks of 16 input channels: here 1-40 per group, so partial
// blocks and several), against the reference, the same bits on one thread and two; 1x1 and
// wider kernels, groups 1-3.
TEST(ConvBackward, InputGradientOfStrideOneMatchesTheReference) {
  std::mt19937 rng(48);
  tt::Generator gen(49);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 16; ++trial) {
    const int64_t groups = pick(1, 3), cg = pick(1, 40), ocg = pick(1, 24);
    const int64_t kh = trial % 2 == 0 ? 1 : pick(1, 4), kw = trial % 2 == 0 ? 1 : pick(1, 4);
    tt::Conv2dOptions o;
    o.padding = tt::Padding2d(pick(0, static_cast<int>(kh - 1)), pick(0, static_cast<int>(kw - 1)));
    o.groups = groups;
    const int64_t N = pick(1, 3), H = pick(kh, 12), W = pick(kw, 12);
    check_input_gradient({N, groups * cg, H, W}, {groups * ocg, cg, kh, kw}, o, gen);
  }
}

// The input gradient of strided layers by channel lanes (kernels/depthwise/block.hpp; up to 8
// outputs per group, more taps than phases) against the reference: strides 2-3, dilations 1-2,
// padding up to 3, groups 2-6 of 1-12 input channels (lanes spanning groups, channel counts off
// the vector width) and of 8, 16 or 24 (blocks of lanes inside one group, dy broadcast; 24 with
// 16 lanes: inside one group and across two), dense layers (one group of 4-40), images of 1 to
// 40 rows cut in bands, rows of up to 40 pixels a phase (tiles of 12, 8, 4 and the rest); the
// same bits on one thread and two.
TEST(ConvBackward, InputGradientByChannelLanesMatchesTheReference) {
  std::mt19937 rng(50);
  tt::Generator gen(51);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 40; ++trial) {
    const bool whole = trial >= 24 && trial < 32, dense = trial >= 32;  // whole: groups of 8-24 inputs
    const int64_t groups = dense ? 1 : pick(2, 6), ocg = pick(1, 8);
    const int64_t cg = dense ? pick(4, 40) : whole ? 8 * pick(1, 3) : pick(1, 12);
    const int64_t kh = pick(1, 7), kw = pick(1, 7);
    tt::Conv2dOptions o;
    o.stride = tt::Size2(pick(1, 3), pick(2, 3));
    o.dilation = tt::Size2(pick(1, 2), pick(1, 2));
    o.padding = tt::Padding2d(pick(0, 3), pick(0, 3));
    o.groups = groups;
    const int64_t N = pick(1, 3), H = pick(1, 40), W = pick(1, 40);
    const bool fits =
        (kh - 1) * o.dilation.h + 1 <= H + 2 * o.padding.h && (kw - 1) * o.dilation.w + 1 <= W + 2 * o.padding.w;
    if (!fits || cg == 1 || kh * kw <= o.stride.h * o.stride.w || groups * cg < 8) {
      --trial;
      continue;
    }
    check_input_gradient({N, groups * cg, H, W}, {groups * ocg, cg, kh, kw}, o, gen);
  }
}

// A training call's weight (requires grad under grad mode) is prepared on every call, with no copy
// kept or compared; the same weight outside training is compared as before. The few-pixel rule
// sends training calls that would pack the weight (ocblock, blocked) to the direct kernel's rows.
TEST(ConvAlgorithms, ChangingWeightsPrepareEveryCallAndKeepNoCopy) {
  namespace ops = tt::ops;
  tt::Generator gen(34);
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::set_prepared_weight_budget(int64_t{64} << 20);
  ops::clear_prepared_weights();
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  const tt::Tensor x = tt::Tensor::randn({1, 16, 17, 17}, gen);  // 289 pixels: direct keeps packed panels
  tt::Tensor w = tt::Tensor::randn({16, 16, 3, 3}, gen);
  static_cast<void>(w.data());  // a pointer handed out: compared (and copied) outside training
  const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
  const auto before = ops::prepared_weight_stats();
  w.set_requires_grad(true);
  for (int i = 0; i < 3; ++i) {
    const tt::Tensor got = tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
    EXPECT_TRUE(got.detach().equal(want));
  }
  const auto during = ops::prepared_weight_stats();
  EXPECT_EQ(during.hits, before.hits);  // never compared, so never a hit
  EXPECT_EQ(during.misses, before.misses + 3);
  EXPECT_LT(during.bytes, before.bytes);  // the entry holds the panels, not the weight's copy
  {
    const tt::NoGradGuard no_grad;  // inference: compared (and copied) again
    tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
    tt::conv2d_with(tt::Conv2dAlgorithm::Direct, x, w, tt::Tensor(), same);
  }
  EXPECT_EQ(ops::prepared_weight_stats().hits, during.hits + 1);
  // the selection: 36 pixels of 3x3 over 64 channels packs (ocblock or blocked) unless training
  const tt::Shape input{1, 64, 6, 6}, weight{64, 64, 3, 3};
  const tt::kernels::Conv2dGeometry g = ops::conv2d_geometry(input, weight, tt::Tensor(), same);
  const tt::Conv2dAlgorithm eager = ops::conv2d_heuristic(g, nullptr);
  EXPECT_TRUE(eager == tt::Conv2dAlgorithm::Ocblock || eager == tt::Conv2dAlgorithm::Blocked);
  {
    const ops::ChangingWeights training;
    EXPECT_EQ(ops::conv2d_heuristic(g, nullptr), tt::Conv2dAlgorithm::Direct);
  }
  ops::set_prepared_weight_budget(saved);
  ops::clear_prepared_weights();
}

// A weight no pointer to which was handed out is vouched for by its storage's version (tensor.hpp,
// Storage): the second call trusts the prepared form without comparing and no copy is kept. Every
// way tinytorch writes it (copy_, fill_ through a view, an optimizer step) advances the version,
// and the next call follows; a storage made anew at the same address has a new version; once a
// pointer is handed out (data()) the weight is compared, so a write through that pointer after
// the call is seen too. Each call against the reference, for every algorithm that prepares.
TEST(ConvAlgorithms, WeightsOnlyTinytorchWroteAreVouchedForByTheirVersion) {
  namespace ops = tt::ops;
  const int64_t saved = ops::prepared_weight_stats().budget_bytes;
  ops::set_prepared_weight_budget(int64_t{64} << 20);
  const tt::Conv2dOptions same{.padding = tt::Padding2d(1)};
  for (const tt::Conv2dAlgorithm a : {tt::Conv2dAlgorithm::Direct, tt::Conv2dAlgorithm::Winograd,
                                      tt::Conv2dAlgorithm::Ocblock, tt::Conv2dAlgorithm::Blocked}) {
    SCOPED_TRACE(tt::to_string(a));
    ops::clear_prepared_weights();
    tt::Generator gen(35);
    const tt::Tensor x = tt::Tensor::randn({2, 16, 19, 17}, gen);
    auto check = [&](const tt::Tensor& w) {
      const tt::Tensor got = tt::conv2d_with(a, x, w, tt::Tensor(), same);
      const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w.clone(), tt::Tensor(), same);
      EXPECT_TRUE(got.allclose(want, 1e-4, 1e-4));
    };
    tt::Tensor w = tt::Tensor::randn({24, 16, 3, 3}, gen);
    check(w);
    const auto first = ops::prepared_weight_stats();
    check(w);
    const auto second = ops::prepared_weight_stats();
    EXPECT_EQ(second.trusted, first.trusted + 1);
    EXPECT_EQ(second.misses, first.misses);
    w.copy_(tt::Tensor::randn({24, 16, 3, 3}, gen));
    check(w);
    w[5].fill_(0.25f);  // a view's write: the same storage
    check(w);
    tt::Tensor moved = w.clone();
    moved.set_requires_grad(true);
    moved.set_grad(tt::Tensor::randn({24, 16, 3, 3}, gen));
    tt::SGD(std::vector<tt::Tensor>{moved}, 0.5).step();
    {
      const tt::NoGradGuard no_grad;
      check(moved);
      check(moved);
    }
    EXPECT_EQ(ops::prepared_weight_stats().misses, second.misses + 3);
    for (int i = 0; i < 3; ++i) {  // new storages, perhaps at the address of the last
      w = tt::Tensor::randn({24, 16, 3, 3}, gen);
      check(w);
    }
    float* kept = w.data();  // exposed: compared from now on
    check(w);
    kept[7] += 1.0f;
    const auto before = ops::prepared_weight_stats();
    check(w);
    EXPECT_EQ(ops::prepared_weight_stats().trusted, before.trusted);
  }
  // A cropped window (conv2d_cropped): its kept taps are vouched for by their fill, so on a
  // second call neither they nor the algorithm's form of them are compared.
  ops::clear_prepared_weights();
  tt::Generator gen(36);
  const tt::Tensor x = tt::Tensor::randn({2, 16, 2, 2}, gen);
  tt::Tensor w = tt::Tensor::randn({24, 16, 5, 5}, gen);
  const tt::Conv2dOptions wide{.padding = tt::Padding2d(2)};
  for (int i = 0; i < 4; ++i) {
    if (i == 2) w.copy_(tt::Tensor::randn({24, 16, 5, 5}, gen));
    const auto before = ops::prepared_weight_stats();
    const tt::Tensor got = tt::conv2d(x, w, tt::Tensor(), wide);
    const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w.clone(), tt::Tensor(), wide);
    EXPECT_TRUE(got.allclose(want, 1e-4, 1e-4));
    const auto after = ops::prepared_weight_stats();
    if (i % 2 == 1) {
      EXPECT_EQ(after.trusted - before.trusted, after.hits - before.hits);  // nothing compared
      EXPECT_GE(after.trusted - before.trusted, 1);
    }
  }
  ops::set_prepared_weight_budget(saved);
  ops::clear_prepared_weights();
}

// The automatic choice leaves out the kernel rows and columns that read only padding for every
// output pixel (ops/conv2d.cpp, conv2d_cropped): small images under large, dilated or strided
// windows with padding on either side ('same' with even spans too), groups, and windows reading
// no input at all (the output is the bias). Against the reference on 1 and 2 threads; then the
// weight changed in place, a kept tap and a left-out one, must be followed by the next call.
TEST(ConvAlgorithms, WindowsCroppedToTheTapsThatReadTheInput) {
  std::mt19937 rng(2027);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  tt::Generator gen(7);
  // Whether kernel row k (of K, dilation d, padding p, stride s) reads the input for an output row.
  auto reads = [](int64_t k, int64_t H, int64_t OH, int64_t s, int64_t d, int64_t p) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t ih = oh * s + k * d - p;
      if (ih >= 0 && ih < H) return true;
    }
    return false;
  };
  int cropped = 0, no_input = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const int64_t groups = pick(0, 2) == 0 ? pick(2, 3) : 1;
    const int64_t C = groups * pick(1, 6), OC = groups * pick(1, 9);
    const int64_t KH = pick(1, 7), KW = pick(1, 7);
    tt::Conv2dOptions o{
        .stride = tt::Size2(pick(1, 3), pick(1, 3)), .dilation = tt::Size2(pick(1, 3), pick(1, 3)), .groups = groups};
    const bool same = pick(0, 3) == 0;
    if (same) {
      o.stride = tt::Size2(1, 1);
      o.padding = tt::Padding2d("same");
    } else {
      o.padding = tt::Padding2d(pick(0, 7), pick(0, 7));
    }
    const tt::Shape input{pick(1, 3), C, pick(1, 5), pick(1, 5)};
    const tt::Shape weight{OC, C / groups, KH, KW};
    const int64_t top = same ? o.dilation.h * (KH - 1) / 2 : o.padding.h;
    const int64_t left = same ? o.dilation.w * (KW - 1) / 2 : o.padding.w;
    const int64_t bottom = same ? o.dilation.h * (KH - 1) - top : top,
                  right = same ? o.dilation.w * (KW - 1) - left : left;
    const int64_t span_h = o.dilation.h * (KH - 1) + 1, span_w = o.dilation.w * (KW - 1) + 1;
    if (input[2] + top + bottom < span_h || input[3] + left + right < span_w) continue;
    const int64_t OH = (input[2] + top + bottom - span_h) / o.stride.h + 1;
    const int64_t OW = (input[3] + left + right - span_w) / o.stride.w + 1;
    int64_t live_rows = 0, live_cols = 0;
    for (int64_t k = 0; k < KH; ++k) live_rows += reads(k, input[2], OH, o.stride.h, o.dilation.h, top);
    for (int64_t k = 0; k < KW; ++k) live_cols += reads(k, input[3], OW, o.stride.w, o.dilation.w, left);
    cropped += live_rows < KH || live_cols < KW;
    no_input += live_rows == 0 || live_cols == 0;
    const ConvCase c{input, weight, o, pick(0, 3) > 0};
    SCOPED_TRACE(c.describe());
    tt::Tensor x = tt::Tensor::randn(input, gen), w = tt::Tensor::randn(weight, gen);
    const tt::Tensor b = c.bias ? tt::Tensor::randn({OC}, gen) : tt::Tensor();
    expect_reference_on_one_and_two_threads(tt::Conv2dAlgorithm::Auto, x, w, b, o,
                                            static_cast<double>(C / groups * KH * KW) + 2);
    // In place: the middle tap (read wherever a tap is), then the first (often padding only).
    for (const int64_t i : {(KH / 2) * KW + KW / 2, int64_t{0}}) {
      w.data()[i] += 1.5f;
      const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, o);
      const tt::Tensor got = tt::conv2d(x, w, b, o);
      for (int64_t j = 0; j < want.numel(); ++j)
        ASSERT_NEAR(got.data()[j], want.data()[j], 1e-4 * (1 + std::fabs(want.data()[j]))) << j;
    }
  }
  EXPECT_GE(cropped, 40) << "too few windows with taps reading only padding";
  EXPECT_GE(no_input, 5) << "too few windows reading no input at all";
}

// A window that reads no input (224 -> 133 channels on 1x1 pixels under a 4x4 window of dilation 2
// and padding 3, the shape sweep's, here with fewer channels): the bias, as the reference skips
// padding, whatever the weight holds (NaN, infinities: never read); with the fused stage, the
// activation of the bias plus the residual; no bias: zeros.
TEST(ConvAlgorithms, WindowsReadingNoInputGiveTheBias) {
  tt::Generator gen(11);
  const tt::Conv2dOptions o{.padding = tt::Padding2d(3), .dilation = tt::Size2(2)};
  const tt::Tensor x = tt::Tensor::randn({2, 5, 1, 1}, gen), b = tt::Tensor::randn({7}, gen);
  tt::Tensor w = tt::Tensor::randn({7, 5, 4, 4}, gen);
  w.data()[0] = NAN, w.data()[17] = INFINITY;  // tap 0 of output channel 0, a tap of channel 1
  const tt::Tensor want = tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, w, b, o);
  const tt::Tensor got = tt::conv2d(x, w, b, o);
  ASSERT_EQ(got.shape(), (tt::Shape{2, 7, 1, 1}));
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_EQ(want.data()[i], b.data()[i % 7]) << i;
    EXPECT_EQ(got.data()[i], b.data()[i % 7]) << i;
  }
  const tt::Tensor zeros = tt::conv2d(x, w, tt::Tensor(), o);
  for (int64_t i = 0; i < zeros.numel(); ++i) EXPECT_EQ(zeros.data()[i], 0.0f) << i;
  const tt::Tensor residual = tt::Tensor::randn({2, 7, 1, 1}, gen);
  const tt::Tensor fused =
      tt::ops::conv2d_fused(x, w, b, o, tt::kernels::Epilogue{tt::kernels::Activation::Relu}, residual);
  for (int64_t i = 0; i < fused.numel(); ++i) {
    EXPECT_EQ(fused.data()[i], std::max(0.0f, b.data()[i % 7] + residual.data()[i])) << i;
  }
}

// The fast pooling and linear paths against their references on randomized shapes (every
// dimension above 1 in most draws), and identical results on 1 and 2 threads.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/batch_norm.hpp"
#include "kernels/blas.hpp"
#include "kernels/linear.hpp"
#include "kernels/loss.hpp"
#include "kernels/pool2d.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

struct PoolCase {
  tt::Shape input;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil_mode, count_include_pad;
};

PoolCase random_pool(std::mt19937& rng, bool max) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  while (true) {
    PoolCase c{};
    c.input = {pick(1, 3), pick(1, 6), pick(1, 19), pick(1, 19)};
    const bool common = pick(0, 2) == 0;  // the 2x2 stride-2 fast path
    c.kh = common ? 2 : pick(1, 4), c.kw = common ? 2 : pick(1, 4);
    c.sh = common ? 2 : pick(1, 3), c.sw = common ? 2 : pick(1, 3);
    c.ph = common ? 0 : pick(0, static_cast<int>(c.kh / 2)), c.pw = common ? 0 : pick(0, static_cast<int>(c.kw / 2));
    c.dh = (max && !common) ? pick(1, 2) : 1, c.dw = (max && !common) ? pick(1, 2) : 1;
    c.ceil_mode = pick(0, 1), c.count_include_pad = pick(0, 1);
    try {
      if (max) {
        tt::max_pool2d(tt::Tensor::zeros(c.input),
                       {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil_mode});
      } else {
        tt::avg_pool2d(tt::Tensor::zeros(c.input),
                       {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, c.ceil_mode, c.count_include_pad});
      }
      return c;
    } catch (const tt::ShapeError&) {
    }
  }
}

tt::Tensor abs_of(const tt::Tensor& t) {
  tt::Tensor a = t.clone();
  for (int64_t i = 0; i < a.numel(); ++i) a.data()[i] = std::fabs(a.data()[i]);
  return a;
}

tt::kernels::Pool2dGeometry geometry(const PoolCase& c, const tt::Tensor& y) {
  return {c.input[0], c.input[1], c.input[2], c.input[3], y.size(2), y.size(3), c.kh,
          c.kw,       c.sh,       c.sw,       c.ph,       c.pw,      c.dh,      c.dw};
}

// y (max_pool2d of x for c) against the reference, value for value (a NaN for a NaN); the count of
// NaN the reference gave, -1 at the first difference (reported with `label`).
int64_t max_pool_nans_against_reference(const PoolCase& c, const tt::Tensor& x, const tt::Tensor& y,
                                        const std::string& label) {
  tt::Tensor want = tt::Tensor::empty(y.shape());
  tt::kernels::maxpool2d_forward_reference(want.data(), nullptr, x.data(), geometry(c, y));
  int64_t nans = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float a = y.data()[i], b = want.data()[i];
    nans += std::isnan(b);
    if (!(a == b || (std::isnan(a) && std::isnan(b)))) {
      ADD_FAILURE() << label << " at " << i << ": " << a << " vs " << b;
      return -1;
    }
  }
  return nans;
}

}  // namespace

TEST(PoolFast, MaxPoolEqualsReferenceExactly) {
  std::mt19937 rng(11);
  tt::Generator gen(3);
  for (int trial = 0; trial < 300; ++trial) {
    const PoolCase c = random_pool(rng, true);
    tt::Tensor x = tt::Tensor::randn(c.input, gen);
    if (trial % 3 == 1) {  // ties, signed zeros among them: the first in scan order wins, as in PyTorch
      for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::array<float, 4>{-0.0f, 0.0f, -1.0f, 0.5f}[rng() % 4];
    }
    if (trial % 10 == 0) x.data()[trial % x.numel()] = std::nanf("");  // NaN propagates as in PyTorch
    const tt::Tensor y =
        tt::max_pool2d(x, {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil_mode});
    tt::Tensor want = tt::Tensor::empty(y.shape());
    tt::kernels::maxpool2d_forward_reference(want.data(), nullptr, x.data(), geometry(c, y));
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float a = y.data()[i], b = want.data()[i];
      ASSERT_TRUE((a == b && std::signbit(a) == std::signbit(b)) || (std::isnan(a) && std::isnan(b)))
          << "trial " << trial << " at " << i << ": " << a << " vs " << b;
    }
  }
}

// With the winners' indices (training): the same values and the same indices as the reference,
// plane by plane, ties and NaN included.
TEST(PoolFast, MaxPoolWithIndicesEqualsReferenceExactly) {
  std::mt19937 rng(12);
  tt::Generator gen(4);
  for (int trial = 0; trial < 300; ++trial) {
    const PoolCase c = random_pool(rng, true);
    tt::Tensor x = tt::Tensor::randn(c.input, gen);
    if (trial % 3 == 1) {
      for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::array<float, 4>{-0.0f, 0.0f, -1.0f, 0.5f}[rng() % 4];
    }
    if (trial % 10 == 0) x.data()[trial % x.numel()] = std::nanf("");
    const tt::Tensor y =
        tt::max_pool2d(x, {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil_mode});
    const tt::kernels::Pool2dGeometry g = geometry(c, y);
    const int64_t plane = g.H * g.W, out_plane = g.OH * g.OW;
    std::vector<float> want(static_cast<size_t>(y.numel())), got(want.size());
    std::vector<int64_t> want_at(want.size()), got_at(want.size());
    tt::kernels::maxpool2d_forward_reference(want.data(), want_at.data(), x.data(), g);
    for (int64_t p = 0; p < g.N * g.C; ++p)
      tt::kernels::maxpool2d_plane(got.data() + p * out_plane, got_at.data() + p * out_plane, x.data() + p * plane, g);
    for (size_t i = 0; i < got.size(); ++i) {
      const float a = got[i], b = want[i];
      ASSERT_TRUE((a == b && std::signbit(a) == std::signbit(b)) || (std::isnan(a) && std::isnan(b)))
          << "trial " << trial << " at " << i << ": " << a << " vs " << b;
      ASSERT_EQ(got_at[i], want_at[i]) << "trial " << trial << " at " << i;
    }
  }
}

// The 3-wide stride-2 window row taken apart by rows (each input row's maxima, then the rows):
// any window height, row stride and dilation, padding 0 or 1, ceil mode, odd and even sizes
// (rows of whole vectors of 8 outputs and of a part), planes of one chunk and of many (a row
// wider than a chunk), ties of signed zeros, infinities and NaN: the reference's bits.
TEST(PoolFast, MaxPoolThreeWideStrideTwoEqualsReferenceExactly) {
  std::mt19937 rng(13);
  tt::Generator gen(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const bool wide = trial % 20 == 0;
    PoolCase c{{pick(1, 2), pick(1, 5), pick(1, 40), wide ? pick(4100, 4200) : pick(3, 120)},
               pick(1, 4),
               3,
               pick(1, 3),
               2,
               0,
               pick(0, 1),
               pick(1, 2),
               1,
               pick(0, 1) == 1,
               false};
    c.ph = pick(0, static_cast<int>(c.kh / 2));
    if (wide) c.input[2] = pick(1, 6);
    tt::Tensor x = tt::Tensor::randn(c.input, gen);
    if (trial % 3 == 1) {  // ties, and infinities (the padding the vectors read is -inf)
      constexpr float inf = std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < x.numel(); ++i)
        x.data()[i] = std::array<float, 6>{-0.0f, 0.0f, -1.0f, 0.5f, -inf, inf}[rng() % 6];
    }
    if (trial % 4 == 0) x.data()[pick(0, static_cast<int>(x.numel() - 1))] = std::nanf("");
    tt::Tensor y;
    try {
      y = tt::max_pool2d(x, {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil_mode});
    } catch (const tt::ShapeError&) {
      continue;  // a window larger than the padded input
    }
    tt::Tensor want = tt::Tensor::empty(y.shape());
    tt::kernels::maxpool2d_forward_reference(want.data(), nullptr, x.data(), geometry(c, y));
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float a = y.data()[i], b = want.data()[i];
      ASSERT_TRUE((a == b && std::signbit(a) == std::signbit(b)) || (std::isnan(a) && std::isnan(b)))
          << "trial " << trial << " " << tt::shape_to_string(c.input) << " at " << i << ": " << a << " vs " << b;
    }
    ++checked;
  }
  EXPECT_GT(checked, 150);
}

// A NaN in the last column a row's windows read, where the outputs fill whole vectors of 8 (the
// column the vectors load only as the last window's third tap): it still wins its window.
TEST(PoolFast, MaxPoolThreeWideStrideTwoNaNInTheLastColumn) {
  tt::Generator gen(6);
  for (const auto& [width, pad] : std::vector<std::pair<int64_t, int64_t>>{{17, 0}, {16, 1}, {33, 0}, {32, 1}}) {
    tt::Tensor x = tt::Tensor::randn({1, 2, 7, width}, gen);
    x.data()[(7 + 3) * width - 1] = std::nanf("");  // plane 1, row 3, the last column
    const tt::Tensor y = tt::max_pool2d(x, {{3, 3}, tt::Size2{2, 2}, {pad, pad}, {1, 1}, false});
    ASSERT_EQ(y.size(3) % 8, 0) << width;
    const PoolCase c{{1, 2, 7, width}, 3, 3, 2, 2, pad, pad, 1, 1, false, false};
    EXPECT_GT(max_pool_nans_against_reference(c, x, y, "width " + std::to_string(width)), 0);
  }
}

// The fast max pool works in bands of about 4096 padded floats: several small planes, some rows
// of a larger plane, or one row of a plane wider than a band; a NaN in one band only (the others
// take the no-NaN step). The random shapes above are all small.
TEST(PoolFast, MaxPoolPlanesLargerThanOneBand) {
  tt::Generator gen(9);
  const std::vector<PoolCase> cases = {
      {{1, 2, 4, 4111}, 3, 3, 1, 1, 1, 1, 1, 1, false, true}, {{1, 2, 4, 4111}, 2, 5, 1, 3, 1, 2, 2, 2, true, true},
      {{2, 3, 301, 47}, 3, 3, 1, 1, 1, 1, 1, 1, false, true}, {{2, 3, 301, 47}, 3, 2, 2, 2, 1, 1, 1, 1, true, true},
      {{1, 2, 211, 90}, 4, 3, 3, 2, 2, 1, 2, 3, true, true},  {{1, 5, 97, 129}, 5, 5, 2, 1, 2, 2, 1, 1, false, true},
  };
  for (const PoolCase& c : cases) {
    tt::Tensor x = tt::Tensor::randn(c.input, gen);
    x.data()[x.numel() / 2 + 7] = std::nanf("");
    const tt::Tensor y =
        tt::max_pool2d(x, {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil_mode});
    EXPECT_GT(max_pool_nans_against_reference(c, x, y, "case " + std::to_string(&c - cases.data())), 0);
  }
}

namespace {

// A float sum of at most KH*KW values and a divide: within (KH*KW + 2) u of the exact mean of |x|
// over the window (Higham 3.1), which the reference computes on |x|.
void expect_avg_pool_matches_reference(const PoolCase& c, const tt::Tensor& x, const std::string& label) {
  const tt::Tensor y =
      tt::avg_pool2d(x, {{c.kh, c.kw}, tt::Size2{c.sh, c.sw}, {c.ph, c.pw}, c.ceil_mode, c.count_include_pad});
  tt::Tensor want = tt::Tensor::empty(y.shape());
  tt::kernels::avgpool2d_forward_reference(want.data(), x.data(), geometry(c, y), c.count_include_pad);
  tt::Tensor magnitude = tt::Tensor::empty(y.shape());
  tt::kernels::avgpool2d_forward_reference(magnitude.data(), abs_of(x).data(), geometry(c, y), c.count_include_pad);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double bound = (c.kh * c.kw + 2) * 0x1p-24 * magnitude.data()[i];
    ASSERT_NEAR(y.data()[i], want.data()[i], bound) << label << " at " << i;
  }
}

}  // namespace

TEST(PoolFast, AvgPoolMatchesReference) {
  std::mt19937 rng(12);
  tt::Generator gen(4);
  for (int trial = 0; trial < 300; ++trial) {
    const PoolCase c = random_pool(rng, false);
    expect_avg_pool_matches_reference(c, tt::Tensor::randn(c.input, gen), "trial " + std::to_string(trial));
  }
  // Planes larger than one band of the fast kernel (see MaxPoolPlanesLargerThanOneBand).
  const std::vector<PoolCase> large = {
      {{1, 2, 4, 4111}, 3, 3, 1, 1, 1, 1, 1, 1, false, true},  {{1, 2, 4, 4111}, 2, 5, 1, 3, 1, 2, 1, 1, true, false},
      {{2, 3, 301, 47}, 3, 3, 1, 1, 1, 1, 1, 1, false, false}, {{2, 3, 301, 47}, 3, 2, 2, 2, 1, 1, 1, 1, true, true},
      {{1, 2, 211, 90}, 4, 3, 3, 2, 2, 1, 1, 1, true, false},  {{1, 5, 97, 129}, 5, 5, 2, 1, 2, 2, 1, 1, false, true},
  };
  for (const PoolCase& c : large) {
    expect_avg_pool_matches_reference(c, tt::Tensor::randn(c.input, gen),
                                      "large case " + std::to_string(&c - large.data()));
  }
}

TEST(LinearFast, MatchesReferenceAndThreadCount) {
  std::mt19937 rng(13);
  tt::Generator gen(5);
  const int saved = tt::get_num_threads();
  for (int trial = 0; trial < 60; ++trial) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const int64_t N = pick(1, 9), IN = pick(1, 300), OUT = pick(1, 200);
    const tt::Tensor x = tt::Tensor::randn({N, IN}, gen), w = tt::Tensor::randn({OUT, IN}, gen);
    const tt::Tensor b = tt::Tensor::randn({OUT}, gen);
    tt::set_num_threads(1);
    const tt::Tensor one = tt::linear(x, w, b);
    tt::set_num_threads(2);
    const tt::Tensor two = tt::linear(x, w, b);
    EXPECT_TRUE(one.equal(two)) << N << "x" << IN << " -> " << OUT;
    tt::Tensor want = tt::Tensor::empty({N, OUT});
    tt::kernels::linear_forward_reference(want.data(), x.data(), w.data(), b.data(), N, IN, OUT);
    // Within (IN + 2) u (sum |x w| + |b|) of the exact value: the reference on |x|, |w|, |b|.
    tt::Tensor magnitude = tt::Tensor::empty({N, OUT});
    tt::kernels::linear_forward_reference(magnitude.data(), abs_of(x).data(), abs_of(w).data(), abs_of(b).data(), N, IN,
                                          OUT);
    for (int64_t i = 0; i < one.numel(); ++i) {
      ASSERT_NEAR(one.data()[i], want.data()[i], (IN + 2) * 0x1p-24 * magnitude.data()[i]);
    }
  }
  tt::set_num_threads(saved);
}

// OpenBLAS runs vector kernels: on a CPU model it does not know it falls back to Prescott's SSE3
// ones, which tinytorch replaces before its first call (kernels/blas.cpp), unless the user chose
// with OPENBLAS_CORETYPE (Prescott, say). The build targets AVX2, so every machine it runs on has better ones.
TEST(LinearFast, OpenBlasRunsVectorKernels) {
  const std::string kernels = tt::kernels::blas_kernels();
  if (tt::kernels::blas_kernels_chosen_by_user()) GTEST_SKIP() << "OPENBLAS_CORETYPE chooses the kernels";
  EXPECT_NE(kernels, "Prescott");
  EXPECT_NE(kernels, "Core2");
}

TEST(PoolFast, IdenticalOnOneAndTwoThreads) {
  const tt::Tensor x = tt::Tensor::randn({4, 8, 17, 19});
  const int saved = tt::get_num_threads();
  tt::set_num_threads(1);
  const tt::Tensor a = tt::max_pool2d(x, {3, tt::Size2{2}, 1}),
                   b = tt::avg_pool2d(x, {3, tt::Size2{2}, 1, true, false});
  tt::set_num_threads(2);
  EXPECT_TRUE(a.equal(tt::max_pool2d(x, {3, tt::Size2{2}, 1})));
  EXPECT_TRUE(b.equal(tt::avg_pool2d(x, {3, tt::Size2{2}, 1, true, false})));
  tt::set_num_threads(saved);
}

// Batch norm's per-channel kernels against their references on random layers (every dimension
// above 1, odd sizes, rows shorter and longer than the 16 lanes, an offset mean): sums of M terms
// within (M + 2) u sum|terms|; the elementwise steps within a few ulps of the double result.
TEST(BatchNormKernels, MatchReferenceOnRandomShapes) {
  std::mt19937 rng(4242);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const double u = 0x1p-24;
  for (int trial = 0; trial < 60; ++trial) {
    const tt::kernels::BatchNormGeometry g{pick(2, 5), pick(2, 7), pick(1, 3) * pick(2, 23)};
    const int64_t total = g.N * g.C * g.HW;
    SCOPED_TRACE("N " + std::to_string(g.N) + " C " + std::to_string(g.C) + " HW " + std::to_string(g.HW));
    std::normal_distribution<float> normal(static_cast<float>(pick(-3, 3)), 2.0f);
    std::vector<float> x(total), dy(total), y(total), y_ref(total), xh(total), xh_ref(total), dx(total), dx_ref(total);
    for (float& v : x) v = normal(rng);
    for (float& v : dy) v = normal(rng);
    const double M = static_cast<double>(g.N * g.HW);
    for (int64_t c = 0; c < g.C; ++c) {
      SCOPED_TRACE("channel " + std::to_string(c));
      const auto m = tt::kernels::batch_norm_moments(x.data(), c, g);
      const auto m_ref = tt::kernels::batch_norm_moments_reference(x.data(), c, g);
      double abs_sum = 0.0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.HW; ++i) abs_sum += std::fabs(x[(n * g.C + c) * g.HW + i]);
      EXPECT_LE(std::fabs(m.mean - m_ref.mean), (M + 2) * u * abs_sum / M);
      EXPECT_LE(std::fabs(m.var - m_ref.var), 1e-5 * (m_ref.var + 1e-3));
      const float mean = static_cast<float>(m_ref.mean), inv_std = static_cast<float>(1 / std::sqrt(m_ref.var + 1e-5));
      tt::kernels::batch_norm_normalize(y.data(), xh.data(), x.data(), c, g, mean, inv_std, 1.5f, -0.25f);
      tt::kernels::batch_norm_normalize_reference(y_ref.data(), xh_ref.data(), x.data(), c, g, mean, inv_std, 1.5f,
                                                  -0.25f);
      std::vector<float> y_only(y);  // inference (no x_hat) writes the same bits
      std::fill(y_only.begin(), y_only.end(), 0.0f);
      tt::kernels::batch_norm_normalize(y_only.data(), nullptr, x.data(), c, g, mean, inv_std, 1.5f, -0.25f);
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t at = (n * g.C + c) * g.HW;
        ASSERT_EQ(std::memcmp(y_only.data() + at, y.data() + at, static_cast<size_t>(g.HW) * sizeof(float)), 0)
            << "inference y at n " << n;
      }
      const auto s = tt::kernels::batch_norm_gradient_sums(dy.data(), xh.data(), c, g);
      const auto s_ref = tt::kernels::batch_norm_gradient_sums_reference(dy.data(), xh.data(), c, g);
      double dy_abs = 0.0, dy_xh_abs = 0.0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.HW; ++i) {
          const int64_t at = (n * g.C + c) * g.HW + i;
          dy_abs += std::fabs(dy[at]), dy_xh_abs += std::fabs(dy[at] * xh[at]);
          ASSERT_NEAR(xh[at], xh_ref[at], 4 * u * (std::fabs(xh_ref[at]) + 1)) << "x_hat at n " << n << ", i " << i;
          ASSERT_NEAR(y[at], y_ref[at], 4 * u * (std::fabs(y_ref[at]) + 1)) << "y at n " << n << ", i " << i;
        }
      EXPECT_LE(std::fabs(s.dy - s_ref.dy), (M + 2) * u * dy_abs);
      EXPECT_LE(std::fabs(s.dy_xhat - s_ref.dy_xhat), (M + 2) * u * dy_xh_abs);
      const float k = 0.75f, mean_dy = static_cast<float>(s_ref.dy / M),
                  mean_dy_xhat = static_cast<float>(s_ref.dy_xhat / M);
      tt::kernels::batch_norm_input_gradient(dx.data(), dy.data(), xh.data(), c, g, k, mean_dy, mean_dy_xhat);
      tt::kernels::batch_norm_input_gradient_reference(dx_ref.data(), dy.data(), xh.data(), c, g, k, mean_dy,
                                                       mean_dy_xhat);
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.HW; ++i) {
          const int64_t at = (n * g.C + c) * g.HW + i;
          const double scale = std::fabs(dy[at]) + std::fabs(mean_dy) + std::fabs(xh[at] * mean_dy_xhat);
          ASSERT_NEAR(dx[at], dx_ref[at], 6 * u * k * scale + 1e-30) << "dx at n " << n << ", i " << i;
        }
    }
  }
}

// log-softmax and cross-entropy rows against their long-double references, on rows of 1 to 1000
// classes, small and large logits (up to +-80, where a plain exp would overflow float) and rows
// with -inf entries: within a few ulps of the reference's rounding (the kernel sums in double).
TEST(LossKernels, MatchReferenceOnRandomRows) {
  std::mt19937 rng(77);
  const double u = 0x1p-24;
  for (int64_t K : {1, 2, 3, 7, 10, 129, 1000}) {
    for (float spread : {0.5f, 4.0f, 80.0f}) {
      SCOPED_TRACE("K " + std::to_string(K) + " spread " + std::to_string(spread));
      std::normal_distribution<float> normal(0.0f, spread);
      std::vector<float> row(static_cast<size_t>(K)), out(row.size()), want(row.size()), p(row.size()),
          p_ref(row.size());
      for (float& v : row) v = normal(rng);
      if (K > 3) row[1] = -std::numeric_limits<float>::infinity();  // a class ruled out
      tt::kernels::log_softmax_row(out.data(), row.data(), K);
      tt::kernels::log_softmax_row_reference(want.data(), row.data(), K);
      for (int64_t k = 0; k < K; ++k) {
        if (std::isinf(want[k])) {
          EXPECT_EQ(out[k], want[k]) << "class " << k;
          continue;
        }
        EXPECT_NEAR(out[k], want[k], 2 * u * (std::fabs(row[k]) + std::fabs(want[k]) + 1)) << "class " << k;
      }
      const int64_t target = K > 3 ? 2 : 0;
      const double loss = tt::kernels::softmax_cross_entropy_row(p.data(), row.data(), K, target);
      const double loss_ref = tt::kernels::softmax_cross_entropy_row_reference(p_ref.data(), row.data(), K, target);
      EXPECT_NEAR(loss, loss_ref, 1e-12 * (std::fabs(loss_ref) + std::fabs(row[target]) + 1));
      double total = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        EXPECT_NEAR(p[k], p_ref[k], 2 * u * p_ref[k] + 1e-45) << "class " << k;
        total += p[k];
      }
      EXPECT_NEAR(total, 1.0, (K + 2) * u);
    }
  }
}

TEST(PoolFast, PlaneMeanMatchesTheDoubleMean) {  // a global average pool's plane (ONNX GlobalAveragePool)
  std::mt19937 rng(14);
  tt::Generator gen(6);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 5000)(rng);
    tt::Tensor x = tt::Tensor::randn({n}, gen);
    if (trial % 3 == 0) x = tt::add(x, tt::scalar_tensor(3.0));  // a large common part
    double exact = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < n; ++i) exact += x.data()[i], magnitude += std::fabs(x.data()[i]);
    exact /= static_cast<double>(n), magnitude /= static_cast<double>(n);
    ASSERT_NEAR(tt::kernels::plane_mean(x.data(), n), exact, 40 * 0x1p-24 * magnitude) << "n " << n;
  }
}

// Inside a WarmTeam (a graph's nodes back to back) loops are threaded from the spinning workers'
// threshold on, unless the policy puts workers to sleep at once or TINYTORCH_SERIAL_WORK fixes it.
TEST(Parallel, WarmTeamLowersTheSerialThreshold) {
  const char* fixed = std::getenv("TINYTORCH_SERIAL_WORK");
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const bool passive = policy && (std::string(policy) == "passive" || std::string(policy) == "PASSIVE");
  const int64_t cold = tt::serial_work();
  {
    const tt::WarmTeam warm;
    if ((fixed && *fixed) || passive) {
      EXPECT_EQ(tt::serial_work(), cold);
    } else {
      EXPECT_EQ(tt::serial_work(), tt::kSerialWorkActive);
      EXPECT_LE(tt::kSerialWorkActive, cold);
    }
    const tt::WarmTeam nested;
    EXPECT_LE(tt::serial_work(), cold);
  }
  EXPECT_EQ(tt::serial_work(), cold);  // restored when the scope ends
}

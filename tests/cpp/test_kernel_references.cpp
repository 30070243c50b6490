// The elementwise and dropout kernels against their plain references, over randomized cases: the
// strided walks with every dimension count up to 5, sizes 0, 1 and odd, transposed, stepped and
// broadcast operands, strided outputs, and the flat range cut into chunks as threads cut it; dropout
// over random sizes and probabilities, including 0 and 1; the fused convolution epilogue (residual
// and activation) against its double reference, specials included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/activation.hpp"
#include "kernels/dropout.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/reference/elementwise_reference.hpp"
#include "tinytorch/tinytorch.hpp"

namespace k = tinytorch::kernels;
namespace tt = tinytorch;

namespace {

using Dims = std::vector<int64_t>;

std::string dims(const Dims& d) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < d.size(); ++i) s << (i ? ", " : "") << d[i];
  s << "]";
  return s.str();
}

// Strides for `shape` laid out in a random dimension order, each dim stepped by 1 or 2, and (when
// `broadcast`) some dims of size > 1 given stride 0. Sets *extent to 1 + the largest offset.
Dims random_strides(const Dims& shape, std::mt19937_64& rng, bool broadcast, int64_t* extent, int* kinds) {
  Dims order(shape.size()), strides(shape.size(), 0);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  if (!std::is_sorted(order.begin(), order.end())) kinds[0] = 1;
  int64_t next = 1;
  for (size_t i = order.size(); i-- > 0;) {
    const size_t d = static_cast<size_t>(order[i]);
    const int64_t step = rng() % 3 == 0 ? 2 : 1;
    if (step == 2) kinds[1] = 1;
    if (broadcast && shape[d] > 1 && rng() % 4 == 0) {
      kinds[2] = 1;
      continue;  // stride 0
    }
    strides[d] = next * step;
    next *= step * std::max<int64_t>(shape[d], 1);
  }
  *extent = 1;
  for (size_t d = 0; d < shape.size(); ++d) *extent += (std::max<int64_t>(shape[d], 1) - 1) * strides[d];
  return strides;
}

Dims random_shape(std::mt19937_64& rng) {
  static const int64_t kSizes[] = {1, 2, 3, 5, 7, 1, 4, 0};
  Dims shape(rng() % 6);
  for (auto& s : shape) s = kSizes[rng() % (rng() % 50 == 0 ? 8 : 7)];  // a size-0 dim now and then
  return shape;
}

// [0, numel) cut into 1-4 chunks at random places, as parallel_chunks cuts it among threads.
std::vector<int64_t> random_cuts(int64_t numel, std::mt19937_64& rng) {
  std::vector<int64_t> cuts = {0, numel};
  for (int i = static_cast<int>(rng() % 4); i > 0 && numel > 1; --i) cuts.push_back(1 + rng() % (numel - 1));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

}  // namespace

TEST(ElementwiseKernels, RunsMatchTheReferenceOnRandomStridedOperands) {
  std::mt19937_64 rng(20261201);
  std::normal_distribution<float> normal;
  int kinds[3] = {0, 0, 0};  // transposed, stepped, broadcast operands seen
  int cases = 0, chunked = 0, empty = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const Dims shape = random_shape(rng);
    const int64_t numel = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
    int64_t extent[3];
    const Dims strides[3] = {random_strides(shape, rng, false, &extent[0], kinds),
                             random_strides(shape, rng, true, &extent[1], kinds),
                             random_strides(shape, rng, true, &extent[2], kinds)};
    std::vector<float> a(static_cast<size_t>(extent[1])), b(static_cast<size_t>(extent[2]));
    for (auto& v : a) v = normal(rng);
    for (auto& v : b) v = normal(rng);
    // The output buffer starts as guard values: the kernel must write exactly the output's elements.
    std::vector<float> want(static_cast<size_t>(extent[0]), 1234.5f), got = want;
    std::vector<uint8_t> want_cmp(static_cast<size_t>(extent[0]), 7), got_cmp = want_cmp;
    // One rounding each: a compound expression could be contracted into a multiply-add in one
    // loop and not in another, and differ in the last bit for that reason alone.
    const auto f = [](float x, float y) { return x - y; };
    const auto less = [](float x, float y) { return static_cast<uint8_t>(x < y); };
    const auto g = [](float x) { return x * x; };
    k::binary_reference(want.data(), a.data(), b.data(), shape, strides, f);
    k::binary_reference(want_cmp.data(), a.data(), b.data(), shape, strides, less);
    const auto loop = k::plan_strided_loop<3>(shape, {&strides[0], &strides[1], &strides[2]});
    const std::vector<int64_t> cuts = random_cuts(numel, rng);
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      k::binary_runs(got.data(), a.data(), b.data(), loop, cuts[c], cuts[c + 1], f);
      k::binary_runs(got_cmp.data(), a.data(), b.data(), loop, cuts[c], cuts[c + 1], less);
    }
    const std::string where = "trial " + std::to_string(trial) + ", shape " + dims(shape) + ", strides out " +
                              dims(strides[0]) + " a " + dims(strides[1]) + " b " + dims(strides[2]);
    ASSERT_EQ(got, want) << "binary_runs, " << where;
    ASSERT_EQ(got_cmp, want_cmp) << "binary_runs (comparison), " << where;

    const Dims unary_strides[2] = {strides[0], strides[1]};
    std::vector<float> want1(static_cast<size_t>(extent[0]), -7.0f), got1 = want1;
    k::unary_reference(want1.data(), a.data(), shape, unary_strides, g);
    const auto loop1 = k::plan_strided_loop<2>(shape, {&strides[0], &strides[1]});
    for (size_t c = 0; c + 1 < cuts.size(); ++c) k::unary_runs(got1.data(), a.data(), loop1, cuts[c], cuts[c + 1], g);
    ASSERT_EQ(got1, want1) << "unary_runs, " << where;
    ++cases;
    chunked += cuts.size() > 2;
    empty += numel == 0;
  }
  EXPECT_EQ(cases, 600);
  EXPECT_GT(chunked, 100) << "ranges cut among threads";
  EXPECT_GT(empty, 0) << "a tensor with a size-0 dim";
  EXPECT_EQ(kinds[0] + kinds[1] + kinds[2], 3) << "transposed, stepped and broadcast operands all covered";
}

TEST(DropoutKernels, MatchTheReferenceForRandomSizesAndProbabilities) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  const double fixed[] = {0.0, 1.0, 1e-6, 0.5, 0.999999};
  int cases = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const int64_t n = trial % 7 == 0 ? 1 : static_cast<int64_t>(rng() % 5000);
    const double p = trial < 5 ? fixed[trial] : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
    std::vector<float> x(static_cast<size_t>(n)), u(x.size());
    for (auto& v : x) v = normal(rng);
    tt::Generator gen(1000 + static_cast<uint64_t>(trial));
    for (auto& v : u) v = gen.uniform();
    std::vector<float> mask = u, out(x.size()), want(x.size());
    k::dropout_mask(mask.data(), n, p, scale);
    k::dropout_apply(out.data(), x.data(), mask.data(), n);
    k::dropout_forward_reference(want.data(), x.data(), u.data(), n, p);
    for (int64_t i = 0; i < n; ++i) {
      const auto at = static_cast<size_t>(i);
      ASSERT_EQ(out[at] == 0.0f, want[at] == 0.0f) << "p " << p << ", element " << i << " of " << n;
      // x * float(1 / (1 - p)) against x / (1 - p) in double: two float roundings.
      ASSERT_LE(std::abs(out[at] - want[at]), 2.5e-7f * std::abs(want[at])) << "p " << p << ", element " << i;
    }
    // The op draws the same uniforms from a generator seeded alike, one per element in order.
    const tt::Tensor input(tt::Shape{n}, x);
    tt::Generator op_gen(1000 + static_cast<uint64_t>(trial));
    const tt::Tensor y = tt::dropout(input, p, true, op_gen);
    if (p == 0.0) {
      EXPECT_EQ(y.data(), input.data()) << "p = 0 returns the input itself";
    } else {
      const std::vector<float> op(y.data(), y.data() + n);
      ASSERT_EQ(op, out) << "dropout op, p " << p << ", n " << n;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 120);
}

TEST(PointwiseKernels, ForwardAndBackwardMatchTheReference) {
  using P = k::Pointwise;
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f), narrow(-6.0f, 6.0f);
  const float inf = std::numeric_limits<float>::infinity();
  // the boundaries where the derivatives jump, and the specials
  const float specials[] = {-3.0f,
                            3.0f,
                            std::nextafter(-3.0f, 0.0f),
                            std::nextafter(3.0f, 4.0f),
                            std::nanf(""),
                            inf,
                            -inf,
                            0.0f,
                            -0.0f,
                            88.0f,
                            -88.0f,
                            1e-30f};
  for (int trial = 0; trial < 30; ++trial) {
    const auto n = static_cast<int64_t>(std::uniform_int_distribution<int>(1, 300)(rng));
    std::vector<float> x(static_cast<size_t>(n)), dy(static_cast<size_t>(n)), y(x.size()), dx(x.size());
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(i)] = i % 3 == 0 ? wide(rng) : narrow(rng);
      dy[static_cast<size_t>(i)] = narrow(rng);
    }
    for (size_t i = 0; i < std::size(specials) && i < x.size(); ++i) x[i * 5 % x.size()] = specials[i];
    for (const P f : {P::HardSwish, P::HardSigmoid, P::SiLU, P::Sigmoid}) {
      k::pointwise_forward(f, y.data(), x.data(), n);
      k::pointwise_backward(f, dx.data(), dy.data(), x.data(), n);
      for (size_t i = 0; i < x.size(); ++i) {
        const std::string where = "function " + std::to_string(static_cast<int>(f)) + " at " + std::to_string(x[i]);
        const double want = k::pointwise_reference(f, x[i]);
        const double dwant = dy[i] * k::pointwise_derivative_reference(f, x[i]);
        if (std::isnan(x[i])) {
          EXPECT_TRUE(std::isnan(y[i]) && std::isnan(dx[i])) << where;
          continue;
        }
        if (std::isnan(want)) {  // hardswish(-inf) = -inf * 0, as in PyTorch
          EXPECT_TRUE(std::isnan(y[i])) << where;
        } else if (std::isinf(want)) {
          EXPECT_EQ(y[i], want) << where;
        } else {  // the polynomial exp: a few units in the last place, relative
          EXPECT_NEAR(y[i], want, 4e-7 * std::fabs(want) + 1e-38) << where;
        }
        // 1 - sigmoid(x) in float loses its low bits as sigmoid nears 1 (so does PyTorch's): an
        // absolute allowance of a few float units of dy times the factor |x| scales it by.
        const double cancel = 3e-7 * std::fabs(dy[i]) * (1.0 + std::fabs(x[i]));
        if (!std::isinf(x[i])) EXPECT_NEAR(dx[i], dwant, 1e-6 * std::fabs(dwant) + cancel) << where;
      }
    }
  }
}

TEST(EpilogueKernels, MatchTheReferenceWithAndWithoutResidual) {
  using A = k::Activation;
  const std::vector<k::Epilogue> epilogues = {
      {A::None, 0, 0},         {A::Relu, 0, 0},    {A::Clip, 0.0f, 6.0f},        {A::Clip, -1.5f, 2.25f},
      {A::LeakyRelu, 0.1f, 0}, {A::Sigmoid, 0, 0}, {A::HardSigmoid, 0.2f, 0.5f}, {A::HardSwish, 1.0f / 6, 0.5f},
      {A::Swish, 0, 0}};
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f), narrow(-6.0f, 6.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (int trial = 0; trial < 40; ++trial) {
    const auto n = static_cast<int64_t>(std::uniform_int_distribution<int>(0, 300)(rng));
    std::vector<float> x(static_cast<size_t>(n)), r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(i)] = i % 3 == 0 ? wide(rng) : narrow(rng);
      r[static_cast<size_t>(i)] = narrow(rng);
    }
    const float specials[] = {std::nanf(""), inf, -inf, 0.0f, -0.0f, 88.0f, -88.0f, 1e-30f};
    for (size_t i = 0; i < std::size(specials) && static_cast<int64_t>(i) < n; ++i) x[i * 7 % x.size()] = specials[i];
    for (const k::Epilogue& e : epilogues) {
      for (const bool residual : {false, true}) {
        std::vector<float> out = x;
        k::apply_epilogue(out.data(), residual ? r.data() : nullptr, n, e);
        for (int64_t i = 0; i < n; ++i) {
          const auto u = static_cast<size_t>(i);
          const float in = residual ? x[u] + r[u] : x[u];  // the sum is one float rounding in both
          const double want = k::activation_reference(in, e);
          const std::string where = k::to_string(e) + (residual ? " + residual" : "") + " at " + std::to_string(in);
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(out[u])) << where;
          } else if (std::isinf(want)) {
            EXPECT_EQ(out[u], want) << where;
          } else {  // the polynomial exp: a few units in the last place, relative
            EXPECT_NEAR(out[u], want, 4e-7 * std::fabs(want) + 1e-38) << where;
          }
        }
      }
    }
  }
}

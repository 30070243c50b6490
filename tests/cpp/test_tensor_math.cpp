// Tensor math (math.hpp) and strided views against plain references: each op's output element,
// found by its multi-index, against the same arithmetic in double on the broadcast inputs' elements
// (read through Tensor::element, i.e. the row-major index of a contiguous copy). Randomized shapes
// with every dim above 1 where it matters, size-1 dims to broadcast, operands that are transposed
// views; all three dtypes. Then central-difference checks of every differentiable op.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gradcheck.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

// The element of t (of shape `from`) that broadcasts to multi-index `index` of shape `to`.
double broadcast_element(const tt::Tensor& t, const tt::Shape& to, const std::vector<int64_t>& index) {
  const tt::Shape& from = t.shape();
  const size_t lead = to.size() - from.size();
  int64_t flat = 0;
  for (size_t d = 0; d < from.size(); ++d) flat = flat * from[d] + (from[d] == 1 ? 0 : index[lead + d]);
  return t.element(flat);
}

std::vector<int64_t> unravel(int64_t flat, const tt::Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

// A random tensor of `shape` and `dtype`; for float, values in [-2, 2] away from 0.
tt::Tensor random_tensor(const tt::Shape& shape, tt::DType dtype, std::mt19937& rng) {
  tt::Tensor t = tt::Tensor::empty(shape, dtype);
  std::uniform_real_distribution<double> real(0.2, 2.0);
  std::uniform_int_distribution<int64_t> integer(-6, 6);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = 0.0;
    if (dtype == tt::DType::Float32) {
      v = real(rng) * (rng() % 2 ? 1.0 : -1.0);
    } else if (dtype == tt::DType::Bool) {
      v = static_cast<double>(rng() % 2);
    } else {
      v = static_cast<double>(integer(rng));
    }
    t.reshape({-1}).select(0, i).copy_(tt::scalar_tensor(v, dtype));
  }
  return t;
}

// The same values as `t`, laid out transposed in memory (a strided view), when t has 2+ dims.
tt::Tensor as_strided_view(const tt::Tensor& t) {
  if (t.dim() < 2) return t;
  return t.transpose(0, 1).contiguous().transpose(0, 1);
}

// A shape pair that broadcasts: random dims in 2..4, some set to 1 on one side, some dropped.
std::pair<tt::Shape, tt::Shape> broadcast_pair(std::mt19937& rng) {
  const int ndim = 1 + static_cast<int>(rng() % 3);
  tt::Shape a, b;
  for (int d = 0; d < ndim; ++d) {
    const int64_t size = 2 + static_cast<int64_t>(rng() % 3);
    const unsigned pick = rng() % 4;
    a.push_back(pick == 1 ? 1 : size);
    b.push_back(pick == 2 ? 1 : size);
  }
  if (rng() % 3 == 0) b.erase(b.begin());
  return {a, b};
}

using Reference = std::function<double(double, double)>;

void check_binary(const char* what, tt::Tensor (*op)(const tt::Tensor&, const tt::Tensor&), Reference ref, tt::DType da,
                  tt::DType db, uint64_t seed, double rtol = 1e-6, bool positive_a = false) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (int trial = 0; trial < 12; ++trial) {
    auto [sa, sb] = broadcast_pair(rng);
    tt::Tensor a = random_tensor(sa, da, rng), b = random_tensor(sb, db, rng);
    if (positive_a) a = tt::abs(a);
    if (trial % 2) a = as_strided_view(a), b = as_strided_view(b);
    const tt::Tensor out = op(a, b);
    const tt::Shape shape = out.shape();
    for (int64_t i = 0; i < out.numel(); ++i) {
      const auto index = unravel(i, shape);
      const double want = ref(broadcast_element(a, shape, index), broadcast_element(b, shape, index));
      const double got = out.element(i);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got)) << what;
        continue;
      }
      ASSERT_NEAR(got, want, 1e-6 + rtol * std::fabs(want))
          << what << " " << tt::shape_to_string(sa) << " op " << tt::shape_to_string(sb) << " at " << i;
    }
  }
}

double py_floor_div(double x, double y) { return std::floor(x / y); }
double py_mod(double x, double y) { return x - y * std::floor(x / y); }

}  // namespace

TEST(TensorViews, TransposePermuteSliceSelectShareStorageAndReadRight) {
  tt::Tensor t = tt::Tensor::arange(60).reshape({3, 4, 5});
  const tt::Tensor p = t.permute({2, 0, 1});  // [5, 3, 4]
  EXPECT_EQ(p.shape(), (tt::Shape{5, 3, 4}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.storage(), t.storage());
  for (int64_t i = 0; i < p.numel(); ++i) {
    const auto k = unravel(i, p.shape());  // p[k0, k1, k2] = t[k1, k2, k0]
    ASSERT_EQ(p.element(i), t.element((k[1] * 4 + k[2]) * 5 + k[0]));
  }
  const tt::Tensor s = t.slice(2, 1, 5, 2);  // [3, 4, 2]: columns 1 and 3
  EXPECT_EQ(s.shape(), (tt::Shape{3, 4, 2}));
  EXPECT_EQ(s.element(1), 3.0);
  EXPECT_EQ(t.select(1, -1).element(0), 15.0);
  const tt::Tensor e = tt::Tensor::arange(3).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides(), (tt::Shape{1, 0}));
  EXPECT_EQ(e.element(7), 1.0);
  EXPECT_EQ(t.unsqueeze(1).shape(), (tt::Shape{3, 1, 4, 5}));
  EXPECT_EQ(t.unsqueeze(-1).squeeze().shape(), t.shape());
  // Writes through a strided view land in the base tensor.
  t.transpose(0, 2).select(0, 4).fill_(-1.0f);  // t[:, :, 4] = -1
  EXPECT_EQ(t.element(4), -1.0);
  EXPECT_EQ(t.element(9), -1.0);
  EXPECT_THROW(t.transpose(0, 1).view({-1}), tt::ShapeError);
  EXPECT_EQ(t.transpose(0, 1).reshape({-1}).numel(), 60);
  EXPECT_THROW(t.permute({0, 0, 1}), tt::ShapeError);
  EXPECT_THROW(t.select(3, 0), tt::IndexError);
  EXPECT_THROW(t.slice(0, 0, 2, 0), tt::ShapeError);
  EXPECT_THROW(tt::Tensor::zeros({2, 3}).expand({3, 3}), tt::ShapeError);
}

TEST(TensorViews, DenseFastPathRefusesStridedAndOtherDtypes) {
  const tt::Tensor t = tt::Tensor::zeros({2, 3});
  EXPECT_THROW(t.transpose(0, 1).data(), tt::ArgumentError);
  EXPECT_THROW(tt::Tensor::zeros({2}, tt::DType::Int64).data(), tt::DTypeError);
  EXPECT_THROW(t.data_ptr<int64_t>(), tt::DTypeError);
  EXPECT_THROW(tt::Tensor::zeros({2}, tt::DType::Int64).set_requires_grad(), tt::DTypeError);
}

TEST(TensorMath, ArithmeticMatchesDoubleReferenceWithBroadcastingAndStridedOperands) {
  using D = tt::DType;
  check_binary(
      "add", tt::add, [](double x, double y) { return x + y; }, D::Float32, D::Float32, 1);
  check_binary(
      "sub", tt::sub, [](double x, double y) { return x - y; }, D::Float32, D::Int64, 2);
  check_binary(
      "mul", tt::mul, [](double x, double y) { return x * y; }, D::Int64, D::Int64, 3);
  check_binary(
      "div", tt::div, [](double x, double y) { return x / y; }, D::Float32, D::Float32, 4);
  check_binary(
      "maximum", tt::maximum, [](double x, double y) { return std::max(x, y); }, D::Float32, D::Int64, 5);
  check_binary(
      "minimum", tt::minimum, [](double x, double y) { return std::min(x, y); }, D::Int64, D::Bool, 6);
  check_binary(
      "pow", tt::pow, [](double x, double y) { return std::pow(x, y); }, D::Float32, D::Float32, 7, 1e-5, true);
  check_binary(
      "add bool", tt::add, [](double x, double y) { return (x != 0 || y != 0) ? 1.0 : 0.0; }, D::Bool, D::Bool, 8);
}

TEST(TensorMath, IntegerDivisionAndRemainderFollowPython) {
  tt::Tensor a = tt::Tensor::int64({6}, {7, -7, 7, -7, 0, 5});
  tt::Tensor b = tt::Tensor::int64({6}, {2, 2, -2, -2, 3, 5});
  const tt::Tensor q = tt::floor_divide(a, b), r = tt::remainder(a, b);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(q.element(i), py_floor_div(a.element(i), b.element(i))) << i;
    EXPECT_EQ(r.element(i), py_mod(a.element(i), b.element(i))) << i;
  }
  EXPECT_EQ(q.dtype(), tt::DType::Int64);
  EXPECT_THROW(tt::floor_divide(a, tt::Tensor::zeros({6}, tt::DType::Int64)), tt::ArgumentError);
  EXPECT_THROW(tt::pow(a, tt::scalar_tensor(-1, tt::DType::Int64)), tt::DTypeError);
  EXPECT_THROW(tt::sub(tt::eq(a, b), tt::eq(a, b)), tt::DTypeError);
  EXPECT_EQ(tt::div(a, b).dtype(), tt::DType::Float32);
}

TEST(TensorMath, ComparisonsAndBitwiseGiveBoolAndInt) {
  std::mt19937 rng(11);
  const tt::Tensor a = random_tensor({3, 4}, tt::DType::Int64, rng), b = random_tensor({4}, tt::DType::Float32, rng);
  const tt::Tensor lt = tt::lt(a, b), ge = tt::ge(a, b);
  EXPECT_EQ(lt.dtype(), tt::DType::Bool);
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(lt.element(i), a.element(i) < b.element(i % 4) ? 1.0 : 0.0);
    EXPECT_EQ(ge.element(i) + lt.element(i), 1.0);
  }
  EXPECT_EQ(tt::bitwise_and(lt, ge).element(0), 0.0);
  EXPECT_EQ(tt::bitwise_xor(tt::Tensor::int64({2}, {6, 3}), tt::Tensor::int64({2}, {3, 3})).element(0), 5.0);
  EXPECT_THROW(tt::bitwise_and(b, b), tt::DTypeError);
}

TEST(TensorMath, ReductionsOverAnyDimsMatchReference) {
  std::mt19937 rng(21);
  const tt::Shape shape{3, 4, 5};
  for (int trial = 0; trial < 6; ++trial) {
    tt::Tensor a = random_tensor(shape, tt::DType::Float32, rng);
    if (trial % 2) a = as_strided_view(a);
    // {1, -1} and {} are contiguous runs (20 and 60 elements) on the unstrided trials: summed in eight lanes.
    for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{0}, {1}, {-1}, {0, 2}, {1, -1}, {}}) {
      const tt::Tensor s = tt::sum(a, dims, true), m = tt::mean(a, dims, false), mx = tt::amax(a, dims, true);
      std::vector<bool> reduced(3, dims.empty());
      for (int64_t d : dims) reduced[static_cast<size_t>((d + 3) % 3)] = true;
      tt::Shape keep = shape;
      for (size_t d = 0; d < 3; ++d)
        if (reduced[d]) keep[d] = 1;
      ASSERT_EQ(s.shape(), keep);
      std::vector<double> total(static_cast<size_t>(s.numel()), 0.0), best(total.size(), -1e30);
      for (int64_t i = 0; i < a.numel(); ++i) {
        auto index = unravel(i, shape);
        int64_t o = 0;
        for (size_t d = 0; d < 3; ++d) o = o * keep[d] + (reduced[d] ? 0 : index[d]);
        total[static_cast<size_t>(o)] += a.element(i);
        best[static_cast<size_t>(o)] = std::max(best[static_cast<size_t>(o)], a.element(i));
      }
      const double count = static_cast<double>(a.numel()) / static_cast<double>(s.numel());
      for (int64_t o = 0; o < s.numel(); ++o) {
        ASSERT_NEAR(s.element(o), total[static_cast<size_t>(o)], 1e-5);
        ASSERT_NEAR(m.element(o), total[static_cast<size_t>(o)] / count, 1e-5);
        ASSERT_EQ(mx.element(o), best[static_cast<size_t>(o)]);
      }
    }
  }
  const tt::Tensor ints = tt::Tensor::int64({2, 3}, {1, 9, 3, 9, 2, 2});
  EXPECT_EQ(tt::sum(ints).dtype(), tt::DType::Int64);
  EXPECT_EQ(tt::sum(ints).element(0), 26.0);
  const auto [values, indices] = tt::max(ints, 1);
  EXPECT_EQ(indices.element(0), 1.0);  // the first of equal maxima
  EXPECT_EQ(indices.element(1), 0.0);
  EXPECT_EQ(tt::argmax(ints).element(0), 1.0);
  EXPECT_EQ(tt::argmin(ints, 0).element(2), 1.0);
  EXPECT_THROW(tt::mean(ints, {0}), tt::DTypeError);
  EXPECT_THROW(tt::sum(ints, {0, 0}), tt::ShapeError);
}

TEST(TensorMath, MatmulFollowsNumpyRules) {
  std::mt19937 rng(31);
  struct Case {
    tt::Shape a, b, out;
  };
  for (const Case& c : std::vector<Case>{{{3}, {3}, {}},
                                         {{2, 3}, {3}, {2}},
                                         {{3}, {3, 4}, {4}},
                                         {{2, 3}, {3, 4}, {2, 4}},
                                         {{5, 2, 3}, {3, 4}, {5, 2, 4}},
                                         {{2, 1, 2, 3}, {5, 3, 4}, {2, 5, 2, 4}}}) {
    const tt::Tensor a = random_tensor(c.a, tt::DType::Float32, rng), b = random_tensor(c.b, tt::DType::Float32, rng);
    const tt::Tensor out = tt::matmul(a, b);
    ASSERT_EQ(out.shape(), c.out) << tt::shape_to_string(c.a) << " @ " << tt::shape_to_string(c.b);
    // Reference: promote, broadcast, sum over k in double.
    const tt::Tensor a2 = c.a.size() == 1 ? a.unsqueeze(0) : a, b2 = c.b.size() == 1 ? b.unsqueeze(1) : b;
    const int64_t M = a2.size(-2), K = a2.size(-1), N = b2.size(-1);
    tt::Shape batch = out.shape();
    if (c.a.size() > 1) batch.pop_back();
    if (c.b.size() > 1) batch.pop_back();
    for (int64_t i = 0; i < out.numel(); ++i) {
      auto index = unravel(i, out.shape());
      const int64_t n = c.b.size() > 1 ? index.back() : 0;
      const int64_t m = c.a.size() > 1 ? index[index.size() - (c.b.size() > 1 ? 2 : 1)] : 0;
      std::vector<int64_t> bi(index.begin(), index.begin() + static_cast<int64_t>(batch.size()));
      double want = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        auto ia = bi, ib = bi;
        ia.insert(ia.end(), {m, k});
        ib.insert(ib.end(), {k, n});
        tt::Shape fa = batch, fb = batch;
        fa.insert(fa.end(), {M, K});
        fb.insert(fb.end(), {K, N});
        want += broadcast_element(a2, fa, ia) * broadcast_element(b2, fb, ib);
      }
      ASSERT_NEAR(out.element(i), want, 1e-5);
    }
  }
  EXPECT_THROW(tt::matmul(tt::Tensor::zeros({2, 3}), tt::Tensor::zeros({2, 3})), tt::ShapeError);
  EXPECT_EQ(tt::matmul(tt::Tensor::int64({2}, {2, 3}), tt::Tensor::int64({2}, {4, 5})).element(0), 23.0);
}

TEST(TensorMath, CatStackIndexAndIndexPut) {
  const tt::Tensor a = tt::Tensor::arange(6).reshape({2, 3}), b = tt::Tensor::arange(3).reshape({1, 3});
  const tt::Tensor c = tt::cat({a, b}, 0);
  EXPECT_EQ(c.shape(), (tt::Shape{3, 3}));
  EXPECT_EQ(c.element(7), 1.0);
  EXPECT_EQ(tt::stack({a, a}, 2).shape(), (tt::Shape{2, 3, 2}));
  EXPECT_THROW(tt::cat({a, tt::Tensor::zeros({2, 2})}, 0), tt::ShapeError);

  // x[[1, 0, 1], :, [2, 0, 0]]: indexed dims 0 and 2 are not adjacent, so B comes first.
  const tt::Tensor x = tt::Tensor::arange(24).reshape({2, 3, 4});
  const tt::Tensor i0 = tt::Tensor::int64({3}, {1, 0, 1}), i2 = tt::Tensor::int64({3}, {2, 0, -4});
  const tt::Tensor y = tt::index(x, {i0, tt::Tensor(), i2});
  ASSERT_EQ(y.shape(), (tt::Shape{3, 3}));
  for (int64_t p = 0; p < 3; ++p)
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t k = static_cast<int64_t>(i2.element(p) + 4) % 4;
      EXPECT_EQ(y.element(p * 3 + j), x.element((static_cast<int64_t>(i0.element(p)) * 3 + j) * 4 + k));
    }
  // x[:, [[0], [2]]]: adjacent, B = (2, 1) stays in place of dim 1.
  EXPECT_EQ(tt::index(x, {tt::Tensor(), tt::Tensor::int64({2, 1}, {0, 2})}).shape(), (tt::Shape{2, 2, 1, 4}));
  EXPECT_THROW(tt::index(x, {tt::Tensor::int64({1}, {2})}), tt::IndexError);

  tt::Tensor z = tt::Tensor::zeros({4});
  tt::index_put_(z, {tt::Tensor::int64({3}, {1, 1, 3})}, tt::scalar_tensor(2.0), true);
  EXPECT_EQ(z.element(1), 4.0);
  EXPECT_EQ(z.element(3), 2.0);
  const auto nz = tt::nonzero(tt::gt(x, tt::scalar_tensor(21.0)));
  ASSERT_EQ(nz.size(), 3u);
  EXPECT_EQ(nz[2].element(0), 2.0);  // 22 is x[1, 2, 2]
}

TEST(TensorMath, GradientsMatchCentralDifferences) {
  const double h = 1e-2;
  auto pos = [](tt::Shape s, uint64_t seed) {
    return tt::add(tt::abs(randn(std::move(s), seed)), tt::scalar_tensor(0.5));
  };
  gradcheck(
      "broadcast add/mul/div",
      [](const std::vector<tt::Tensor>& in) { return tt::div(tt::mul(tt::add(in[0], in[1]), in[0]), in[2]); },
      {randn({3, 1, 4}, 1), randn({5, 4}, 2), pos({4}, 3)}, h, 1e-3, 1e-3);
  gradcheck(
      "pow, sub, maximum",
      [](const std::vector<tt::Tensor>& in) { return tt::maximum(tt::sub(tt::pow(in[0], in[1]), in[1]), in[2]); },
      {pos({2, 3}, 4), randn({3}, 5), randn({2, 3}, 6)}, 1e-3, 1e-2, 1e-2);
  gradcheck(
      "unary chain",
      [](const std::vector<tt::Tensor>& in) {
        return tt::tanh(tt::sigmoid(tt::log(tt::sqrt(tt::exp(tt::neg(tt::abs(in[0])))) + tt::scalar_tensor(2.0))));
      },
      {randn({3, 5}, 7)}, 1e-3, 1e-2, 1e-3);
  gradcheck(
      "reductions",
      [](const std::vector<tt::Tensor>& in) {
        return tt::mean(tt::sum(in[0], {0, 2}, true), {1});
      },
      {randn({2, 3, 4}, 8)}, h, 1e-3, 1e-3);
  gradcheck(
      "amax and max over a dim",
      [](const std::vector<tt::Tensor>& in) { return tt::add(tt::amax(in[0], {1}), tt::sum(tt::max(in[0], 0).first)); },
      {randn({3, 4}, 9)}, 1e-3, 1e-3, 1e-3);
  gradcheck(
      "softmax and log_softmax over dims",
      [](const std::vector<tt::Tensor>& in) { return tt::mul(tt::softmax(in[0], 0), tt::log_softmax(in[0], 1)); },
      {randn({3, 4}, 10)}, 1e-3, 1e-2, 1e-3);
  gradcheck(
      "matmul batched and 1-D",
      [](const std::vector<tt::Tensor>& in) { return tt::matmul(tt::matmul(in[0], in[1]), in[2]); },
      {randn({2, 3, 4}, 11), randn({4, 5}, 12), randn({5}, 13)}, h, 1e-3, 1e-3);
  gradcheck(
      "views, cat, index, where, clamp",
      [](const std::vector<tt::Tensor>& in) {
        const tt::Tensor v = tt::cat({in[0].transpose(0, 1), in[1].slice(0, 0, 4, 2)}, 0);  // [4 + 2, 3]
        const tt::Tensor picked = tt::index(v, {tt::Tensor::int64({4}, {5, 0, 5, 2})});
        return tt::where(tt::gt(picked, tt::scalar_tensor(0.0)), tt::clamp(picked, -0.5, 0.7),
                         tt::mul(picked, picked.expand({4, 3})));
      },
      {randn({3, 4}, 14), randn({4, 3}, 15)}, 1e-3, 1e-3, 1e-3);
}

TEST(TensorMath, EmptyTensorsGoThroughEveryOp) {
  const tt::Tensor e = tt::Tensor::zeros({0, 3});
  EXPECT_EQ(tt::add(e, tt::Tensor::ones({3})).shape(), (tt::Shape{0, 3}));
  EXPECT_EQ(tt::sum(e).element(0), 0.0);
  EXPECT_EQ(tt::sum(e, {0}).shape(), (tt::Shape{3}));
  EXPECT_EQ(tt::sum(e, {0}).element(2), 0.0);
  EXPECT_THROW(tt::amax(e, {0}), tt::ShapeError);
  EXPECT_THROW(tt::mean(e), tt::ShapeError);
  EXPECT_EQ(tt::matmul(e, tt::Tensor::ones({3, 2})).shape(), (tt::Shape{0, 2}));
  EXPECT_EQ(tt::matmul(tt::Tensor::ones({2, 0}), tt::Tensor::ones({0, 2})).element(3), 0.0);
  EXPECT_EQ(e.transpose(0, 1).contiguous().shape(), (tt::Shape{3, 0}));
  EXPECT_EQ(tt::cat({e, tt::Tensor::ones({2, 3})}, 0).shape(), (tt::Shape{2, 3}));
  EXPECT_EQ(tt::index(tt::Tensor::ones({4}), {tt::Tensor::int64({0}, {})}).numel(), 0);
  EXPECT_TRUE(tt::nonzero(e)[1].numel() == 0);
}

// Autograd: every op's gradient against central differences (f = sum(op(x) * R), summed in
// double), on randomized shapes with every dimension above 1; and the engine's rules.
//
// Tolerances: conv, linear, pooling, reshapes and arithmetic are piecewise linear, so with a step
// that crosses no kink the difference quotient is exact but for the float rounding of the
// forward pass; smooth ops (softmax, batch norm) add O(h^2) truncation, kept below 1e-3 by h=1e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "gradcheck.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

// Distinct values at least 0.1 apart, shuffled: max pooling has no ties within a step of 0.01.
tt::Tensor distinct(tt::Shape s, uint64_t seed) {
  tt::Tensor t = tt::Tensor::empty(std::move(s));
  std::vector<int64_t> order(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(seed)));
  // ... and none within 0.05 of zero, where relu has its kink.
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = 0.1f * static_cast<float>(order[static_cast<size_t>(i)]) - 3.05f;
  return t;
}

}  // namespace

// An empty batch: the input's gradient is empty and the weight's and bias's are zeros, as in
// PyTorch, for stride 1 (a forward convolution), stride 2 by phases and through dcol, depthwise
// and 1x1 layers (it crashed, or left the weight gradient uninitialized).
TEST(Autograd, Conv2dOfAnEmptyBatchGivesZeroGradients) {
  struct Case {
    tt::Shape x, w;
    tt::Conv2dOptions o;
  };
  const std::vector<Case> cases = {
      {{0, 8, 9, 9}, {8, 1, 3, 3}, {.padding = 1, .groups = 8}},
      {{0, 8, 9, 9}, {8, 1, 3, 3}, {.stride = 2, .padding = 1, .groups = 8}},
      {{0, 8, 9, 9}, {16, 8, 3, 3}, {.padding = 1}},
      {{0, 8, 9, 9}, {16, 8, 3, 3}, {.stride = 2, .padding = 1}},
      {{0, 8, 9, 9}, {4, 8, 5, 5}, {.stride = 2, .padding = 2}},
      {{0, 8, 16, 16}, {16, 8, 1, 1}, {}},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    tt::Tensor x = tt::Tensor::zeros(c.x).set_requires_grad();
    tt::Tensor w = randn(c.w, 40 + k).set_requires_grad(), b = randn({c.w[0]}, 50 + k).set_requires_grad();
    tt::sum(tt::conv2d(x, w, b, c.o)).backward();
    ASSERT_EQ(x.grad().shape(), c.x) << "case " << k;
    ASSERT_EQ(w.grad().shape(), c.w) << "case " << k;
    EXPECT_TRUE(w.grad().allclose(tt::Tensor::zeros(c.w), 0.0, 0.0)) << "case " << k;
    EXPECT_TRUE(b.grad().allclose(tt::Tensor::zeros({c.w[0]}), 0.0, 0.0)) << "case " << k;
  }
}

TEST(Gradcheck, Conv2dEveryOption) {
  struct Case {
    tt::Shape x, w;
    tt::Conv2dOptions o;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {}, true},
      {{2, 3, 9, 8}, {5, 3, 3, 2}, {.stride = {2, 1}, .padding = {1, 0}}, true},
      {{3, 4, 8, 9}, {6, 2, 3, 3}, {.padding = 1, .groups = 2}, false},
      {{2, 2, 10, 9}, {3, 2, 3, 3}, {.padding = "same", .dilation = 2}, true},
      {{2, 4, 7, 7}, {8, 1, 3, 3}, {.stride = 2, .padding = 1, .groups = 4}, true},
      {{2, 3, 6, 5}, {4, 3, 2, 4}, {.padding = "same"}, true},  // even kernel: asymmetric padding
      {{2, 16, 9, 10}, {18, 16, 3, 3}, {.padding = 1}, true},   // Winograd, forced below (too small for the heuristic)
      {{3, 5, 6, 6}, {7, 5, 1, 1}, {}, true},                   // 1x1
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::vector<tt::Conv2dAlgorithm> algorithms = {tt::Conv2dAlgorithm::Auto, tt::Conv2dAlgorithm::Reference};
    if (tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, c.x, c.w, c.o)) {
      algorithms.push_back(tt::Conv2dAlgorithm::Winograd);
    }
    for (tt::Conv2dAlgorithm a : algorithms) {
      tt::set_conv2d_algorithm(a);
      if (a != tt::Conv2dAlgorithm::Auto) ASSERT_EQ(tt::select_conv2d_algorithm(c.x, c.w, c.o), a);  // it really runs
      std::vector<tt::Tensor> in = {randn(c.x, 10 + k), randn(c.w, 20 + k),
                                    c.bias ? randn({c.w[0]}, 30 + k) : tt::Tensor()};
      gradcheck(
          "conv2d case " + std::to_string(k) + " " + tt::to_string(a),
          [&](const std::vector<tt::Tensor>& t) { return tt::conv2d(t[0], t[1], t[2], c.o); }, in, 0.5, 2e-3, 2e-3);
    }
  }
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Auto);
  // The Winograd case above is the only one Winograd supports: assert it was run.
  EXPECT_TRUE(tt::conv2d_algorithm_supports(tt::Conv2dAlgorithm::Winograd, cases[6].x, cases[6].w, cases[6].o));
}

TEST(Gradcheck, Conv2dRandomizedShapes) {
  // 12 random configurations: every dimension above 1, odd sizes, strides, dilations, groups.
  std::mt19937 rng(31);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t groups = pick(1, 2), cg = pick(2, 3), ocg = pick(2, 3);
    const int64_t kh = pick(2, 3), kw = pick(2, 3);
    tt::Conv2dOptions o;
    o.stride = tt::Size2(pick(1, 2), pick(1, 2));
    o.dilation = tt::Size2(pick(1, 2), pick(1, 2));
    o.padding = tt::Padding2d(pick(0, 1), pick(0, 1));
    o.groups = groups;
    const int64_t H = pick(5, 9), W = pick(5, 9);
    std::vector<tt::Tensor> in = {randn({2, groups * cg, H, W}, 100 + trial),
                                  randn({groups * ocg, cg, kh, kw}, 200 + trial), randn({groups * ocg}, 300 + trial)};
    gradcheck(
        "conv2d random " + std::to_string(trial),
        [&](const std::vector<tt::Tensor>& t) { return tt::conv2d(t[0], t[1], t[2], o); }, in, 0.5, 2e-3, 2e-3);
  }
}

TEST(Gradcheck, Conv2dUnbatchedInput) {
  gradcheck(
      "conv2d (C, H, W)", [](const std::vector<tt::Tensor>& t) { return tt::conv2d(t[0], t[1], t[2], {.padding = 1}); },
      {randn({3, 6, 7}, 1), randn({4, 3, 3, 3}, 2), randn({4}, 3)}, 0.5, 2e-3, 2e-3);
}

TEST(Gradcheck, Pooling) {
  gradcheck(
      "max_pool2d 3x3 s2 p1",
      [](const std::vector<tt::Tensor>& t) {
        return tt::max_pool2d(t[0], {3, tt::Size2{2}, 1});
      },
      {distinct({2, 3, 9, 8}, 4)}, 0.01, 1e-3, 1e-3);
  gradcheck(
      "max_pool2d 2x2 ceil dilated",
      [](const std::vector<tt::Tensor>& t) {
        return tt::max_pool2d(t[0], {{2, 3}, tt::Size2{2, 1}, {1, 1}, {1, 2}, true});
      },
      {distinct({2, 2, 7, 9}, 5)}, 0.01, 1e-3, 1e-3);
  gradcheck(
      "max_pool2d 2x2 (the fast path)", [](const std::vector<tt::Tensor>& t) { return tt::max_pool2d(t[0], {2}); },
      {distinct({2, 3, 8, 7}, 8)}, 0.01, 1e-3, 1e-3);
  gradcheck(
      "avg_pool2d count_include_pad",
      [](const std::vector<tt::Tensor>& t) {
        return tt::avg_pool2d(t[0], {3, tt::Size2{2}, 1, true, true});
      },
      {randn({2, 3, 9, 8}, 6)}, 0.5, 1e-3, 1e-3);
  gradcheck(
      "avg_pool2d no pad count",
      [](const std::vector<tt::Tensor>& t) {
        return tt::avg_pool2d(t[0], {{3, 2}, tt::Size2{2, 1}, {1, 1}, false, false});
      },
      {randn({2, 2, 8, 7}, 7)}, 0.5, 1e-3, 1e-3);
}

TEST(Gradcheck, LinearReluAndShapes) {
  gradcheck(
      "linear", [](const std::vector<tt::Tensor>& t) { return tt::linear(t[0], t[1], t[2]); },
      {randn({5, 7}, 8), randn({4, 7}, 9), randn({4}, 10)}, 0.5, 1e-3, 1e-3);
  gradcheck(
      "linear (IN,)", [](const std::vector<tt::Tensor>& t) { return tt::linear(t[0], t[1], t[2]); },
      {randn({7}, 11), randn({3, 7}, 12), randn({3}, 13)}, 0.5, 1e-3, 1e-3);
  gradcheck(
      "relu", [](const std::vector<tt::Tensor>& t) { return tt::relu(t[0]); }, {distinct({3, 4, 5}, 14)}, 0.01, 1e-3,
      1e-3);
  gradcheck(
      "flatten + select + reshape",
      [](const std::vector<tt::Tensor>& t) {
        return tt::flatten(t[0], 1)[1].reshape({3, -1});
      },
      {randn({2, 3, 2, 2}, 15)}, 0.5, 1e-3, 1e-3);
}

TEST(Gradcheck, ArithmeticAndReductions) {
  gradcheck(
      "add/sub/mul/scale/sum",
      [](const std::vector<tt::Tensor>& t) { return tt::sum(((t[0] + t[1]) * t[0] - t[1]) * 0.5f).reshape({1}); },
      {randn({3, 4}, 16), randn({3, 4}, 17)}, 0.01, 1e-3, 1e-3);
  gradcheck(
      "mean", [](const std::vector<tt::Tensor>& t) { return tt::mean(t[0] * t[0]).reshape({1}); }, {randn({2, 5}, 18)},
      0.01, 1e-3, 1e-3);
}

TEST(Gradcheck, SoftmaxAndCrossEntropy) {
  gradcheck(
      "log_softmax", [](const std::vector<tt::Tensor>& t) { return tt::log_softmax(t[0]); }, {randn({4, 6}, 19)}, 1e-2,
      1e-3, 1e-3);
  gradcheck(
      "cross_entropy",
      [](const std::vector<tt::Tensor>& t) {
        return tt::cross_entropy(t[0], {2, 0, 5, 5}).reshape({1});
      },
      {randn({4, 6}, 20)}, 1e-2, 1e-3, 1e-3);
}

TEST(Gradcheck, BatchNormAndDropout) {
  for (bool training : {true, false}) {
    tt::Tensor rm = randn({3}, 21), rv = tt::Tensor::full({3}, 1.5f);
    gradcheck(
        training ? "batch_norm train" : "batch_norm eval",
        [&](const std::vector<tt::Tensor>& t) {
          tt::Tensor m = rm.clone(), v = rv.clone();  // each evaluation sees the same statistics
          return tt::batch_norm(t[0], m, v, t[1], t[2], training);
        },
        {randn({4, 3, 3, 2}, 22), randn({3}, 23), randn({3}, 24)}, 1e-2, 2e-3, 2e-3);
  }
  gradcheck(
      "dropout",
      [](const std::vector<tt::Tensor>& t) {
        tt::Generator g(9);  // the same mask every evaluation
        return tt::dropout(t[0], 0.3, true, g);
      },
      {randn({4, 5}, 25)}, 0.5, 1e-3, 1e-3);
}

// The remaining ops on randomized shapes (every dimension 2..6).
TEST(Gradcheck, RandomizedShapesForEveryOp) {
  std::mt19937 rng(47);
  auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int trial = 0; trial < 6; ++trial) {
    const int64_t N = pick(2, 4), C = pick(2, 4), H = pick(4, 7), W = pick(4, 7), K = pick(2, 6), F = pick(2, 6);
    const std::string at = " trial " + std::to_string(trial);
    gradcheck(
        "max_pool2d" + at,
        [](const std::vector<tt::Tensor>& t) {
          return tt::max_pool2d(t[0], {2, tt::Size2{1}});
        },
        {distinct({N, C, H, W}, 400 + trial)}, 0.01, 1e-3, 1e-3);
    gradcheck(
        "avg_pool2d" + at,
        [](const std::vector<tt::Tensor>& t) {
          return tt::avg_pool2d(t[0], {3, tt::Size2{2}, 1, true, false});
        },
        {randn({N, C, H, W}, 410 + trial)}, 0.5, 1e-3, 1e-3);
    gradcheck(
        "linear" + at, [](const std::vector<tt::Tensor>& t) { return tt::linear(t[0], t[1], t[2]); },
        {randn({N, F}, 420 + trial), randn({K, F}, 430 + trial), randn({K}, 440 + trial)}, 0.5, 1e-3, 1e-3);
    gradcheck(
        "relu" + at, [](const std::vector<tt::Tensor>& t) { return tt::relu(t[0]); },
        {distinct({N, C, H}, 450 + trial)}, 0.01, 1e-3, 1e-3);
    std::vector<int64_t> targets(static_cast<size_t>(N));
    for (auto& y : targets) y = pick(0, static_cast<int>(K) - 1);
    gradcheck(
        "cross_entropy" + at,
        [&](const std::vector<tt::Tensor>& t) { return tt::cross_entropy(t[0], targets).reshape({1}); },
        {randn({N, K}, 460 + trial)}, 1e-2, 1e-3, 1e-3);
    gradcheck(
        "log_softmax" + at, [](const std::vector<tt::Tensor>& t) { return tt::log_softmax(t[0]); },
        {randn({N, K}, 470 + trial)}, 1e-2, 1e-3, 1e-3);
    tt::Tensor rm = tt::Tensor::zeros({C}), rv = tt::Tensor::ones({C});
    gradcheck(
        "batch_norm" + at,
        [&](const std::vector<tt::Tensor>& t) {
          tt::Tensor m = rm.clone(), v = rv.clone();
          return tt::batch_norm(t[0], m, v, t[1], t[2], true);
        },
        {randn({N, C, H, W}, 480 + trial), randn({C}, 490 + trial), randn({C}, 500 + trial)}, 1e-2, 2e-3, 2e-3);
    gradcheck(
        "arithmetic" + at,
        [](const std::vector<tt::Tensor>& t) { return tt::mean((t[0] - t[1]) * t[0] + t[1] * 2.0f).reshape({1}); },
        {randn({N, C, H}, 510 + trial), randn({N, C, H}, 520 + trial)}, 0.01, 1e-3, 1e-3);
  }
}

TEST(Autograd, AccumulatesFreesAndRespectsNoGrad) {
  tt::Tensor w = randn({3, 4}, 1).set_requires_grad();
  tt::Tensor x = randn({2, 4}, 2);
  tt::Tensor loss = tt::sum(tt::linear(x, w));
  loss.backward();
  const tt::Tensor first = w.grad().clone();
  EXPECT_THROW(loss.backward(), std::invalid_argument);  // the graph was freed
  tt::sum(tt::linear(x, w)).backward();                  // accumulates, as in PyTorch
  for (int64_t i = 0; i < first.numel(); ++i) EXPECT_FLOAT_EQ(w.grad().data()[i], 2 * first.data()[i]);
  // d/dw sum(x w^T) = column sums of x, per output row
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(first.at({o, i}), x.at({0, i}) + x.at({1, i}), 1e-5);
  {
    tt::NoGradGuard no_grad;
    EXPECT_FALSE(tt::linear(x, w).requires_grad());
  }
  // A tensor used twice gets the sum of both paths: d/da sum(a * a) = 2a.
  tt::Tensor a = randn({5}, 3).set_requires_grad();
  tt::sum(a * a).backward();
  for (int64_t i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(a.grad().data()[i], 2 * a.data()[i]);
  EXPECT_THROW(tt::sum(a * a).set_requires_grad(), std::invalid_argument);  // not a leaf
  EXPECT_THROW(tt::Tensor::ones({2}).backward(), std::invalid_argument);    // nothing requires grad
  tt::Tensor b = tt::Tensor::ones({2}).set_requires_grad();
  EXPECT_THROW((b * 2.0f).backward(), tt::ShapeError);  // two elements: pass the gradient
}

// A leaf keeps a backward's fresh result as its gradient without a copy, but never a tensor anything
// else can see: the caller's seed, one gradient handed to two inputs (an addition's), a view of
// another gradient. Each leaf's gradient is its own storage, and accumulating into one changes no
// other.
TEST(Autograd, LeafGradientsShareNoStorage) {
  tt::Tensor a = randn({2, 3}, 6).set_requires_grad();
  tt::Tensor b = randn({2, 3}, 7).set_requires_grad();
  const tt::Tensor seed = randn({2, 3}, 8);
  (a + b).backward(seed);
  EXPECT_NE(a.grad().storage_id(), b.grad().storage_id());
  EXPECT_NE(a.grad().storage_id(), seed.storage_id());
  EXPECT_NE(b.grad().storage_id(), seed.storage_id());
  (a + b).backward(seed);  // accumulates into each
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(a.grad().data()[i], 2 * seed.data()[i]);
    EXPECT_FLOAT_EQ(b.grad().data()[i], 2 * seed.data()[i]);
  }
  // The seed of a leaf itself, and of a view of one (its backward a view of the seed).
  tt::Tensor c = randn({6}, 9).set_requires_grad();
  const tt::Tensor own = randn({6}, 10);
  c.backward(own);
  EXPECT_NE(c.grad().storage_id(), own.storage_id());
  tt::Tensor d = randn({6}, 11).set_requires_grad();
  const tt::Tensor flat = randn({2, 3}, 12);
  d.reshape({2, 3}).backward(flat);
  EXPECT_NE(d.grad().storage_id(), flat.storage_id());
  d.reshape({2, 3}).backward(flat);
  for (int64_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(d.grad().data()[i], 2 * flat.data()[i]);
  EXPECT_FLOAT_EQ(flat.data()[5], randn({2, 3}, 12).data()[5]);  // the seed unchanged
  // A fresh result, as a convolution's weight gradient is: the same values kept.
  tt::Tensor w = randn({4, 2, 3, 3}, 13).set_requires_grad();
  const tt::Tensor x = randn({2, 2, 5, 5}, 14);
  tt::sum(tt::conv2d(x, w)).backward();
  const tt::Tensor first = w.grad().clone();
  tt::sum(tt::conv2d(x, w)).backward();
  for (int64_t i = 0; i < first.numel(); ++i) EXPECT_FLOAT_EQ(w.grad().data()[i], 2 * first.data()[i]);
}

TEST(Autograd, LayersExposeGradients) {
  tt::manual_seed(4);
  tt::Conv2D conv(2, 3, 3, 1, 1);
  tt::BatchNorm2d bn(3);
  tt::Linear fc(3 * 4 * 4, 5);
  for (auto& p : conv.parameters()) p.set_requires_grad();
  for (auto& p : bn.parameters()) p.set_requires_grad();
  for (auto& p : fc.parameters()) p.set_requires_grad();
  const tt::Tensor x = randn({2, 2, 8, 8}, 5);
  tt::Tensor y = fc(tt::flatten(tt::max_pool2d(tt::relu(bn(conv(x))), {2}), 1));
  tt::cross_entropy(y, {1, 4}).backward();
  for (auto& p : conv.parameters()) EXPECT_TRUE(p.grad().defined());
  for (auto& p : bn.parameters()) EXPECT_TRUE(p.grad().defined());
  for (auto& p : fc.parameters()) EXPECT_TRUE(p.grad().defined());
  // Running statistics moved from (0, 1) toward the batch's.
  EXPECT_NE(bn.running_mean.data()[0], 0.0f);
  EXPECT_EQ(bn.named_buffers().size(), 3u);  // running_mean, running_var, num_batches_tracked
  EXPECT_EQ(bn.num_batches_tracked.element(0), 1.0);
}

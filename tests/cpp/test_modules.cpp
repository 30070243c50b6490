// Module bookkeeping, Sequential, Linear, Conv2D init and the layer reprs.
#include <gtest/gtest.h>

#include <cmath>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

TEST(Module, NamedParametersAndChildren) {
  tt::Sequential net;
  net.emplace<tt::Conv2D>(3, 4, 3, 1, 0, 1, 1, /*bias=*/false);
  net.emplace<tt::ReLU>();
  auto& fc = net.emplace<tt::Linear>(5, 2);
  const auto params = net.named_parameters();
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(params[0].first, "0.weight");
  EXPECT_EQ(params[1].first, "2.weight");
  EXPECT_EQ(params[2].first, "2.bias");
  EXPECT_TRUE(params[1].second.is_same(fc.weight));  // the parameter itself, not a copy
  EXPECT_EQ(net.num_parameters(), 4 * 3 * 3 * 3 + 5 * 2 + 2);
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net[2].is_training());
  net.train();
  EXPECT_TRUE(net[0].is_training());
  EXPECT_THROW(net[3], tt::IndexError);
}

TEST(Module, SequentialRunsInOrder) {
  auto fc = std::make_shared<tt::Linear>(3, 2);
  tt::Sequential net{fc, std::make_shared<tt::ReLU>()};
  tt::Tensor x({2, 3}, {1, -2, 3, -4, 5, -6});
  tt::Tensor want = tt::relu(tt::linear(x, fc->weight, fc->bias));
  EXPECT_TRUE(net(x).equal(want));
}

TEST(Linear, ComputesXWtPlusB) {
  tt::Linear fc(3, 2);
  fc.weight.copy_(tt::Tensor({2, 3}, {1, 2, 3, -1, 0, 1}));
  fc.bias.copy_(tt::Tensor({2}, {0.5f, -0.5f}));
  // x = [1, 1, 2]: [1 + 2 + 6 + 0.5, -1 + 0 + 2 - 0.5]
  EXPECT_TRUE(fc(tt::Tensor({3}, {1, 1, 2})).equal(tt::Tensor({2}, {9.5f, 0.5f})));
  tt::Tensor batch = fc(tt::Tensor({2, 3}, {1, 1, 2, 0, 0, 0}));
  EXPECT_TRUE(batch.equal(tt::Tensor({2, 2}, {9.5f, 0.5f, 0.5f, -0.5f})));
}

TEST(Linear, InitWithinTorchBound) {
  tt::Linear fc(64, 32);
  const float bound = 1.0f / 8.0f;
  float lo = 1, hi = -1;
  for (int64_t i = 0; i < fc.weight.numel(); ++i) {
    lo = std::min(lo, fc.weight.data()[i]);
    hi = std::max(hi, fc.weight.data()[i]);
  }
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.9f * bound);  // 2048 uniform draws reach the ends of the range
  EXPECT_GT(hi, 0.9f * bound);
  EXPECT_FALSE(tt::Linear(3, 2, false).bias.defined());
}

TEST(Conv2D, HeNormalInitAndZeroBias) {
  tt::Conv2D conv(16, 64, 3);  // fan_in 144: std sqrt(2/144) = 0.1179
  EXPECT_EQ(conv.weight.shape(), (tt::Shape{64, 16, 3, 3}));
  double sq = 0, sum = 0;
  const int64_t n = conv.weight.numel();
  for (int64_t i = 0; i < n; ++i) {
    sum += conv.weight.data()[i];
    sq += conv.weight.data()[i] * conv.weight.data()[i];
  }
  const double std_dev = std::sqrt(sq / n - (sum / n) * (sum / n));
  EXPECT_NEAR(std_dev, std::sqrt(2.0 / 144.0), 0.01);  // 9216 samples: std error ~0.9%
  EXPECT_TRUE(conv.bias.equal(tt::Tensor::zeros({64})));
  tt::Conv2D grouped(8, 4, {3, 5}, 1, 0, 1, 2);
  EXPECT_EQ(grouped.weight.shape(), (tt::Shape{4, 4, 3, 5}));
}

// A batch gives each image's own result. Not always to the bit: the heuristic may pick another
// algorithm for one image than for four (with AVX2 only: direct vs OpenBLAS), which sums the 18
// products in another order, so within (K + 2) u sum|x w| (see test_conv_algorithms.cpp).
TEST(Conv2D, BatchEqualsPerImage) {
  tt::Conv2D conv(3, 5, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 1);
  tt::Tensor batch = tt::Tensor::randn({4, 3, 9, 8});
  tt::Tensor out = conv(batch);
  for (int64_t n = 0; n < 4; ++n) {
    const tt::Tensor one = conv(batch[n]);
    ASSERT_EQ(one.shape(), out[n].shape());
    for (int64_t i = 0; i < one.numel(); ++i) {
      EXPECT_NEAR(one.data()[i], out[n].data()[i], 20 * 0x1p-24 * 20.0) << "image " << n << " index " << i;
    }
  }
}

TEST(Flatten, KeepsBatchAndSharesStorage) {
  tt::Tensor x = tt::Tensor::randn({2, 3, 4, 5});
  tt::Flatten f;
  tt::Tensor y = f(x);
  EXPECT_EQ(y.shape(), (tt::Shape{2, 60}));
  EXPECT_EQ(y.data(), x.data());
  EXPECT_EQ(tt::flatten(x, 1, 2).shape(), (tt::Shape{2, 12, 5}));
  EXPECT_EQ(tt::flatten(x, -2).shape(), (tt::Shape{2, 3, 20}));
  EXPECT_EQ(tt::flatten(x).shape(), (tt::Shape{120}));
}

TEST(Layers, Reprs) {
  EXPECT_EQ(tt::Conv2D(3, 16, 3).repr(), "Conv2D(3, 16, kernel_size=(3, 3), stride=(1, 1))");
  EXPECT_EQ(tt::Conv2D(4, 8, {3, 5}, 1, "same", 2, 2, false).repr(),
            "Conv2D(4, 8, kernel_size=(3, 5), stride=(1, 1), padding='same', dilation=(2, 2), groups=2, bias=False)");
  EXPECT_EQ(tt::MaxPool2D(2).repr(),
            "MaxPool2D(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)");
  EXPECT_EQ(tt::Linear(800, 10).repr(), "Linear(input_size=800, output_size=10, bias=True)");
  tt::Sequential net{std::make_shared<tt::Flatten>(), std::make_shared<tt::ReLU>()};
  EXPECT_EQ(net.repr(), "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): ReLU()\n)");
}

TEST(Relu, ClampsNegativesKeepsNaN) {
  tt::Tensor y = tt::relu(tt::Tensor({4}, {-1.0f, 0.0f, 2.0f, std::nanf("")}));
  EXPECT_EQ(y.data()[0], 0.0f);
  EXPECT_EQ(y.data()[2], 2.0f);
  EXPECT_TRUE(std::isnan(y.data()[3]));
}

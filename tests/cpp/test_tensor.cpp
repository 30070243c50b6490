// Tensor: factories, views, element access, overflow checks, printing and the generator.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

TEST(Tensor, FactoriesFillValues) {
  EXPECT_EQ(tt::Tensor::zeros({2, 3}).shape(), (tt::Shape{2, 3}));
  tt::Tensor f = tt::Tensor::full({2, 3}, 2.5f);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(f.data()[i], 2.5f);
  tt::Tensor o = tt::Tensor::ones({3, 2});
  EXPECT_EQ(o.at({2, 1}), 1.0f);
  tt::Tensor a = tt::Tensor::arange(1.0, 2.0, 0.25);
  EXPECT_TRUE(a.equal(tt::Tensor({4}, {1.0f, 1.25f, 1.5f, 1.75f})));
  EXPECT_EQ(tt::Tensor::arange(0).numel(), 0);
  EXPECT_EQ(tt::Tensor({2, 2}).at({1, 1}), 0.0f);
}

TEST(Tensor, ValuesAreRowMajor) {
  tt::Tensor t({2, 3, 4}, std::vector<float>(24));
  for (int64_t i = 0; i < 24; ++i) t.data()[i] = static_cast<float>(i);
  EXPECT_EQ(t.at({1, 2, 3}), 23.0f);
  EXPECT_EQ(t.at({1, 0, 2}), 14.0f);
  EXPECT_EQ(t.at({-1, -1, -2}), 22.0f);
  t.at({0, 1, 1}) = -7.0f;
  EXPECT_EQ(t.data()[5], -7.0f);
}

TEST(Tensor, ViewsShareStorageAndCloneDoesNot) {
  tt::Tensor t = tt::Tensor::arange(12).reshape({3, 4});
  tt::Tensor v = t.view({2, -1});
  EXPECT_EQ(v.shape(), (tt::Shape{2, 6}));
  v.at({1, 5}) = 100.0f;
  EXPECT_EQ(t.at({2, 3}), 100.0f);
  tt::Tensor row = t[1];
  EXPECT_EQ(row.shape(), (tt::Shape{4}));
  EXPECT_EQ(row.at({0}), 4.0f);
  row.at({2}) = -1.0f;
  EXPECT_EQ(t.at({1, 2}), -1.0f);
  tt::Tensor c = t.clone();
  c.at({0, 0}) = 42.0f;
  EXPECT_EQ(t.at({0, 0}), 0.0f);
  tt::Tensor copy = t;  // a handle: the same tensor
  EXPECT_TRUE(copy.is_same(t));
}

TEST(Tensor, ShapeErrors) {
  EXPECT_THROW(tt::Tensor({2, -1}), tt::ShapeError);
  EXPECT_THROW(tt::Tensor({2, 2}, {1, 2, 3}), tt::ShapeError);
  const int64_t big = int64_t{1} << 40;
  EXPECT_THROW(tt::checked_numel({big, big}), tt::ShapeError);  // 2^80 overflows int64
  EXPECT_THROW(tt::Tensor::zeros({big, big}), tt::ShapeError);
  EXPECT_THROW(tt::Tensor::zeros({int64_t{1} << 62}), std::bad_alloc);  // counts, but cannot be allocated
  tt::Tensor t = tt::Tensor::arange(6);
  EXPECT_THROW(t.reshape({4, -1}), tt::ShapeError);
  EXPECT_THROW(t.reshape({-1, -1}), tt::ShapeError);
  EXPECT_THROW(t.reshape({7}), tt::ShapeError);
  EXPECT_THROW(t.at({6}), tt::IndexError);
  EXPECT_THROW(t.at({0, 0}), tt::IndexError);
  EXPECT_THROW(t[-7], tt::IndexError);
  EXPECT_THROW(t.item(), tt::ShapeError);
  EXPECT_THROW(tt::Tensor().shape(), std::invalid_argument);
  EXPECT_THROW(tt::Tensor::arange(0.0, 1.0, 0.0), tt::ShapeError);
}

TEST(Tensor, AllcloseAndEqual) {
  tt::Tensor a({3}, {1.0f, 2.0f, 3.0f});
  tt::Tensor b({3}, {1.0f, 2.0f + 1e-6f, 3.0f});
  EXPECT_TRUE(a.allclose(b));
  EXPECT_FALSE(a.equal(b));
  EXPECT_FALSE(a.allclose(tt::Tensor({3}, {1.0f, 2.1f, 3.0f})));
  EXPECT_FALSE(a.allclose(a.reshape({1, 3})));
  tt::Tensor n({1}, {std::nanf("")});
  EXPECT_FALSE(n.allclose(n));
  tt::Tensor inf({1}, {std::numeric_limits<float>::infinity()});
  EXPECT_TRUE(inf.allclose(inf));
}

TEST(Tensor, Printing) {
  EXPECT_EQ(tt::Tensor({2, 2}, {1, 2, 3, 4}).to_string(), "tensor([[1, 2],\n        [3, 4]], shape=(2, 2))");
  EXPECT_EQ(tt::Tensor::arange(10).to_string(), "tensor([0, 1, 2, ..., 7, 8, 9], shape=(10,))");
  EXPECT_EQ(tt::Tensor().to_string(), "tensor(undefined)");
}

TEST(Generator, SeededAndDistributed) {
  tt::Generator g1(7), g2(7), g3(8);
  for (int i = 0; i < 10; ++i) {
    const float a = g1.normal();
    EXPECT_EQ(a, g2.normal());
    EXPECT_NE(a, g3.normal());
  }
  tt::manual_seed(3);
  tt::Tensor a = tt::Tensor::randn({4});
  tt::manual_seed(3);
  EXPECT_TRUE(a.equal(tt::Tensor::randn({4})));

  // 200k samples: the mean's standard error is 1/sqrt(200k) ~ 0.0022, so 0.02 is ~9 sigma.
  tt::Generator g(11);
  const int n = 200000;
  double sum = 0, sq = 0, usum = 0;
  float umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    const double x = g.normal();
    sum += x;
    sq += x * x;
    const float u = g.uniform();
    usum += u;
    umin = std::min(umin, u);
    umax = std::max(umax, u);
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
  EXPECT_NEAR(usum / n, 0.5, 0.01);
  EXPECT_GE(umin, 0.0f);
  EXPECT_LT(umax, 1.0f);
}

// Freed blocks of 64 KiB and more are kept for reuse (src/core/tensor.cpp, BlockCache), up to a
// sixteenth of the machine's memory between 256 MiB and 1 GiB: a step that frees 384 MiB of
// blocks gets them back when it allocates the same sizes again, pages and all, so writing them
// faults no page in (with 256 MiB, the eight freed first went back to the system and came back
// fresh: 64 faults of 2 MiB pages or 32768 of 4 KiB ones; under the sanitizers, which fault a few
// pages of their own, 16 were seen with the blocks cached).
TEST(Tensor, FreedBlocksComeBackUpToTheCacheLimit) {
  const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (ram / 16 < 400.0 * (1 << 20)) GTEST_SKIP() << "a machine of under 6.3 GiB keeps less than 384 MiB";
  const int64_t floats = (int64_t{16} << 18) + 123;  // 16 MiB and a size no other test allocates
  auto step = [&] {
    std::vector<tt::Tensor> blocks;
    for (int i = 0; i < 24; ++i) {
      blocks.push_back(tt::Tensor::empty({floats}));
      std::fill(blocks.back().data(), blocks.back().data() + floats, 1.0f);
    }
  };
  auto faults = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
  };
  step();
  const long before = faults();
  step();
  EXPECT_LT(faults() - before, 40);
}

// Released weights (src/onnx/graph.hpp, ReleasedWeights): a model loaded from a file gives a Conv
// weight's pages back once its prepared form is made, and reads every such weight back from the
// file before a run that could read one again. Each case checks the outputs against a model that
// keeps its weights: repeated runs, a new batch size, a prepared form evicted from the cache, a
// forced algorithm, the tuning cleared, autotuning's choices; and a file changed meanwhile is an
// error, not zeros.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "ops/conv2d_select.hpp"
#include "ops/prepared_weights.hpp"
#include "scratch.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

tt::Tensor random(const tt::Shape& shape, uint64_t seed) {
  tt::Generator gen(seed);
  return tt::Tensor::randn(shape, gen);
}

double max_difference(const tt::Tensor& a, const tt::Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const tt::Tensor x = a.contiguous(), y = b.contiguous();
  double d = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) d = std::max(d, std::fabs(double{x.data()[i]} - double{y.data()[i]}));
  return d;
}

// Three convolutions with weights of many pages (64 x 64 x 3 x 3: 144 KiB) and a 1x1: a file in
// the test's scratch folder.
class ReleasedWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
    path_ = tt::testing::scratch_path("onnx_released", "net.onnx");
    tt::onnx::export_to_file(net(1), {random({2, 16, 12, 12}, 9)}, path_);
    // Which layers are released depends on the algorithms their first run picks, which autotuning
    // times: the direct kernel, forced, prepares every weight (UnderAutotuning runs the timed way).
    tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Direct);
  }
  void TearDown() override {
    tt::ops::set_prepared_weight_budget(256 << 20);
    tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Auto);
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }
  static tt::onnx::TracedFunction net(uint64_t seed) {
    const tt::Tensor w1 = random({64, 16, 3, 3}, seed), w2 = random({64, 64, 3, 3}, seed + 1);
    const tt::Tensor w3 = random({64, 64, 3, 3}, seed + 2), w4 = random({32, 64, 1, 1}, seed + 3);
    return [=](const std::vector<tt::Tensor>& x) {
      tt::Tensor y = tt::relu(tt::conv2d(x[0], w1, tt::Tensor(), {.padding = 1}));
      y = tt::relu(tt::conv2d(y, w2, tt::Tensor(), {.padding = 1}));
      y = tt::conv2d(y, w3, tt::Tensor(), {.stride = 2, .padding = 1});
      return std::vector<tt::Tensor>{tt::conv2d(y, w4)};
    };
  }
  // The released model's output on x against the keeping model's, relative to its largest value
  // (the two may time different algorithms on their first call).
  void expect_same(const tt::onnx::Model& released, const tt::onnx::Model& kept, const tt::Tensor& x) {
    const tt::Tensor want = kept(x);
    EXPECT_LE(max_difference(released(x), want), 1e-5 * max_difference(want, tt::Tensor::zeros(want.shape())));
  }

  std::string path_;
};

}  // namespace

TEST_F(ReleasedWeights, RepeatedRunsAndANewBatchSize) {
  const tt::onnx::Model released = tt::onnx::load(path_), kept = tt::onnx::load(path_, {.keep_weights = true});
  const tt::Tensor x = random({2, 16, 12, 12}, 1);
  EXPECT_EQ(released.released_weight_bytes(), 0);
  expect_same(released, kept, x);
  EXPECT_GT(released.released_weight_bytes(), 2 * 64 * 64 * 9 * 4 - 8192);  // the two 64 x 64 layers, at least
  EXPECT_EQ(kept.released_weight_bytes(), 0);
  expect_same(released, kept, x);
  expect_same(released, kept, x);
  // Another batch size may time and prepare other algorithms: the weights come back first.
  expect_same(released, kept, random({3, 16, 12, 12}, 2));
  EXPECT_EQ(released.released_weight_bytes(), 0);
  expect_same(released, kept, x);
}

TEST_F(ReleasedWeights, UnderAutotuningTheOutputsMatch) {
  tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Auto);
  const tt::onnx::Model released = tt::onnx::load(path_), kept = tt::onnx::load(path_, {.keep_weights = true});
  const tt::Tensor x = random({2, 16, 12, 12}, 7);
  for (int run = 0; run < 3; ++run) expect_same(released, kept, x);
  expect_same(released, kept, random({3, 16, 12, 12}, 8));
  expect_same(released, kept, x);
}

TEST_F(ReleasedWeights, AnEvictedPreparedFormReadsTheWeightBack) {
  const tt::onnx::Model released = tt::onnx::load(path_), kept = tt::onnx::load(path_, {.keep_weights = true});
  const tt::Tensor x = random({2, 16, 12, 12}, 3);
  expect_same(released, kept, x);
  const int64_t bytes = released.released_weight_bytes();
  ASSERT_GT(bytes, 0);
  tt::ops::set_prepared_weight_budget(0);  // the budget bounds eager calls' entries, not a model's
  expect_same(released, kept, x);
  EXPECT_EQ(released.released_weight_bytes(), bytes);
  tt::ops::clear_prepared_weights();  // every prepared form goes; the next call prepares again
  expect_same(released, kept, x);
  EXPECT_EQ(released.released_weight_bytes(), 0);
}

TEST_F(ReleasedWeights, AForcedAlgorithmOrClearedTuningReadsTheWeightsBack) {
  const tt::Tensor x = random({2, 16, 12, 12}, 4);
  const tt::onnx::Model kept = tt::onnx::load(path_, {.keep_weights = true});
  {
    const tt::onnx::Model released = tt::onnx::load(path_);
    expect_same(released, kept, x);
    ASSERT_GT(released.released_weight_bytes(), 0);
    tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Im2colGemm);  // reads the weight itself, every call
    expect_same(released, kept, x);
    EXPECT_EQ(released.released_weight_bytes(), 0);
    tt::set_conv2d_algorithm(tt::Conv2dAlgorithm::Direct);
  }
  const tt::onnx::Model released = tt::onnx::load(path_);
  expect_same(released, kept, x);
  ASSERT_GT(released.released_weight_bytes(), 0);
  tt::ops::clear_conv2d_tuning();  // the next run times the candidates again, some reading the weight
  expect_same(released, kept, x);
  EXPECT_EQ(released.released_weight_bytes(), 0);
}

TEST_F(ReleasedWeights, AFileChangedSinceLoadingIsAnError) {
  const tt::onnx::Model released = tt::onnx::load(path_);
  released(random({2, 16, 12, 12}, 5));
  ASSERT_GT(released.released_weight_bytes(), 0);
  tt::onnx::export_to_file(net(100), {random({2, 16, 12, 12}, 9)}, path_);  // other weights, same graph
  EXPECT_THROW(released(random({3, 16, 12, 12}, 6)), tt::DataError);
}

// ONNX export from C++ (onnx.hpp): a traced function read back by the importer gives the
// function's outputs on inputs of another batch size; an op inside another records nothing of its
// own; a value from an op the tracer does not record is refused by name; export_module restores
// the module's mode; traces do not nest. The Python suite (tests/python/test_onnx_export.py) covers
// every op and ONNX Runtime.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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

}  // namespace

TEST(OnnxExport, TracedFunctionRoundTripsAtAnotherBatchSize) {
  if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
  const tt::Tensor w = random({6, 3, 3, 3}, 1), b = random({6}, 2), fc = random({4, 6 * 4 * 4}, 3);
  auto net = [&](const std::vector<tt::Tensor>& x) {
    tt::Tensor y = tt::relu(tt::conv2d(x[0], w, b, {.stride = 1, .padding = 1}));
    tt::MaxPool2dOptions pool;
    pool.kernel_size = 2;
    y = tt::max_pool2d(y, pool);
    return std::vector<tt::Tensor>{tt::linear(tt::flatten(y, 1), fc)};
  };
  const std::string bytes = tt::onnx::export_to_bytes(net, {random({2, 3, 8, 8}, 4)});
  const tt::onnx::Model model = tt::onnx::load_from_bytes(bytes, {.optimize = false});
  // flatten's inner reshape is not a node of its own: one Reshape.
  EXPECT_EQ(model.op_types(), (std::vector<std::string>{"Conv", "Relu", "MaxPool", "Reshape", "Gemm"}));
  ASSERT_EQ(model.inputs().size(), 1u);
  EXPECT_EQ(model.inputs()[0].dims, (tt::Shape{-1, 3, 8, 8}));
  const tt::Tensor x = random({5, 3, 8, 8}, 5);
  // Within 1e-5 of the output's largest magnitude: the runtime times the convolution's algorithms
  // on its first call and may run another than eager conv2d's heuristic, with other rounding.
  const tt::Tensor want = net({x})[0];
  EXPECT_LE(max_difference(model(x), want), 1e-5 * max_difference(want, tt::Tensor::zeros(want.shape())));
}

TEST(OnnxExport, AValueFromAnUnrecordedOpIsRefusedByName) {
  if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
  auto indexed = [](const std::vector<tt::Tensor>& x) {
    // stack is recorded through the ops it is made of; index is refused.
    const tt::Tensor rows = tt::index(x[0], {tt::Tensor::int64({2}, {1, 0})});
    return std::vector<tt::Tensor>{rows};
  };
  try {
    tt::onnx::export_to_bytes(indexed, {random({2, 3}, 1)});
    FAIL() << "expected a DataError";
  } catch (const tt::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("indexing with a tensor"), std::string::npos) << e.what();
  }
  auto stacked = [](const std::vector<tt::Tensor>& x) {
    return std::vector<tt::Tensor>{tt::stack({x[0], tt::relu(x[0])}, 1)};
  };
  const tt::onnx::Model model = tt::onnx::load_from_bytes(tt::onnx::export_to_bytes(stacked, {random({2, 3}, 1)}));
  const tt::Tensor x = random({4, 3}, 2);
  EXPECT_LE(max_difference(model(x), stacked({x})[0]), 0.0);
}

TEST(OnnxExport, ModuleModeIsRestoredAndTracesDoNotNest) {
  if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
  auto model = tt::make_fashion_cnn();
  ASSERT_TRUE(model->is_training());
  const std::string path = ::testing::TempDir() + "/tinytorch_export_test.onnx";
  tt::onnx::export_module(*model, {1, 1, 28, 28}, path);
  EXPECT_TRUE(model->is_training());
  const tt::onnx::Model loaded = tt::onnx::load(path);
  model->eval();
  const tt::Tensor x = random({3, 1, 28, 28}, 9);
  EXPECT_LE(max_difference(loaded(x), (*model)(x)), 1e-4);
  auto nested = [&](const std::vector<tt::Tensor>& in) {
    tt::onnx::export_to_bytes([](const std::vector<tt::Tensor>& y) { return y; }, in);
    return in;
  };
  EXPECT_THROW(tt::onnx::export_to_bytes(nested, {random({1, 2}, 1)}), tt::ArgumentError);
  EXPECT_THROW(tt::onnx::export_module(*model, {0, 1, 28, 28}, path), tt::ShapeError);
  std::remove(path.c_str());
}

// A channel shuffle as ShuffleNet writes it (Concat, Reshape to [N, g, C/g, H, W], Transpose,
// Reshape back), traced and read back: the graph passes make it one ChannelShuffle node
// (src/onnx/optimize.cpp) whose output is the graph's as written; and where the first Reshape's
// target is another shape ([N, g, C/g, H * W, 1]) the node runs the operators as written.
TEST(OnnxExport, ChannelShuffleRunsAsOneNode) {
  if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
  const tt::Tensor w1 = random({6, 4, 1, 1}, 4), w2 = random({10, 4, 1, 1}, 5), x = random({2, 4, 6, 5}, 6);
  for (const bool shuffle : {true, false}) {
    auto net = [&](const std::vector<tt::Tensor>& in) {
      const tt::Tensor c = tt::cat({tt::conv2d(in[0], w1), tt::conv2d(in[0], w2)}, 1);  // 16 channels
      const int64_t n = in[0].size(0);
      const tt::Shape split = shuffle ? tt::Shape{n, 4, 4, 6, 5} : tt::Shape{n, 4, 4, 30, 1};
      return std::vector<tt::Tensor>{c.reshape(split).permute({0, 2, 1, 3, 4}).reshape({n, 16, 6, 5})};
    };
    const std::string bytes = tt::onnx::export_to_bytes(net, {x});
    const tt::onnx::Model fast = tt::onnx::load_from_bytes(bytes);
    const tt::onnx::Model plain = tt::onnx::load_from_bytes(bytes, {.optimize = false});
    const std::vector<std::string> ops = fast.op_types();
    EXPECT_EQ(std::count(ops.begin(), ops.end(), "ChannelShuffle"), 1);
    EXPECT_EQ(std::count(ops.begin(), ops.end(), "Transpose") + std::count(ops.begin(), ops.end(), "Concat"), 0);
    const tt::Tensor got = fast(x), want = plain(x), direct = net({x})[0];
    EXPECT_LE(max_difference(got, want), 1e-5);
    EXPECT_LE(max_difference(got, direct), 1e-5);
  }
}

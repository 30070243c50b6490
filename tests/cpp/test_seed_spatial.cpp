// The seed's unit tests (spatial_dev.py), ported one for one with the same inputs and assertions.
#include <gtest/gtest.h>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

// test_unit_conv2d_naive
TEST(SeedSpatial, UnitConv2dNaive) {
  // Test 1: simple edge detection, 3x3 input and 3x3 kernel -> (1, 1, 1).
  tt::Tensor input_img({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  tt::Tensor edge_kernel({3, 3}, {-1, 0, 1, -1, 0, 1, -1, 0, 1});
  tt::Tensor result = tt::conv2d_naive(input_img, edge_kernel);
  EXPECT_EQ(result.shape(), (tt::Shape{1, 1, 1}));

  // Test 2: multi-channel input.
  tt::Tensor multi_channel = tt::Tensor::randn({3, 5, 5});
  tt::Tensor kernel({2, 2}, {1, 0, 0, 1});
  EXPECT_EQ(tt::conv2d_naive(multi_channel, kernel).shape(), (tt::Shape{3, 4, 4}));

  // Test 3: bias addition.
  tt::Tensor simple_input({2, 2}, {1, 1, 1, 1});
  tt::Tensor simple_kernel({1, 1}, {1});
  const float bias_value = 5;
  tt::Tensor with_bias = tt::conv2d_naive(simple_input, simple_kernel, bias_value);
  tt::Tensor without_bias = tt::conv2d_naive(simple_input, simple_kernel);
  ASSERT_EQ(with_bias.shape(), without_bias.shape());
  for (int64_t i = 0; i < with_bias.numel(); ++i) {
    EXPECT_NEAR(with_bias.data()[i] - without_bias.data()[i], bias_value, 1e-6) << "Bias not added correctly";
  }
}

// test_unit_conv2d
TEST(SeedSpatial, UnitConv2d) {
  // Test 1: single channel to multiple channels.
  tt::Conv2D conv(1, 3, 3);
  EXPECT_EQ(conv(tt::Tensor::randn({1, 5, 5})).shape(), (tt::Shape{3, 3, 3}));

  // Test 2: RGB to feature maps.
  tt::Conv2D rgb_conv(3, 16, 3);
  EXPECT_EQ(rgb_conv(tt::Tensor::randn({3, 28, 28})).shape(), (tt::Shape{16, 26, 26}));

  // Test 3: different kernel sizes (10 - 5 + 1 = 6).
  tt::Conv2D large_kernel_conv(1, 1, 5);
  EXPECT_EQ(large_kernel_conv(tt::Tensor::randn({1, 10, 10})).shape(), (tt::Shape{1, 6, 6}));

  // Test 4: parameter counting. Weights 64 * 3 * 3 * 3 = 1728, bias 64, total 1792.
  tt::Conv2D conv_params(3, 64, 3);
  const int64_t total_expected = 64 * 3 * 3 * 3 + 64;
  const int64_t total_actual = conv_params.weight.numel() + (conv_params.bias.defined() ? conv_params.bias.numel() : 0);
  EXPECT_EQ(total_actual, total_expected);
}

// test_unit_maxpool2d
TEST(SeedSpatial, UnitMaxPool2d) {
  // Test 1: basic 2x2 pooling.
  tt::MaxPool2D pool(2);
  tt::Tensor x({1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  tt::Tensor output = pool(x);
  EXPECT_EQ(output.shape(), (tt::Shape{1, 2, 2}));
  EXPECT_TRUE(output.allclose(tt::Tensor({1, 2, 2}, {6, 8, 14, 16}))) << "MaxPool values incorrect";

  // Test 2: multi-channel pooling.
  EXPECT_EQ(pool(tt::Tensor::randn({3, 8, 8})).shape(), (tt::Shape{3, 4, 4}));

  // Test 3: different pool sizes.
  tt::MaxPool2D pool_3x3(3);
  EXPECT_EQ(pool_3x3(tt::Tensor::randn({1, 9, 9})).shape(), (tt::Shape{1, 3, 3}));

  // Test 4: integration with Conv2D.
  tt::Conv2D conv(1, 4, 3);
  tt::MaxPool2D pooling(2);
  tt::Tensor conv_features = conv(tt::Tensor::randn({1, 10, 10}));
  EXPECT_EQ(conv_features.shape(), (tt::Shape{4, 8, 8}));
  EXPECT_EQ(pooling(conv_features).shape(), (tt::Shape{4, 4, 4}));
}

// test_unit_flatten
TEST(SeedSpatial, UnitFlatten) {
  // Test 1: 2D tensor.
  tt::Tensor flat_2d = tt::flatten(tt::Tensor({2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(flat_2d.shape(), (tt::Shape{4}));
  EXPECT_TRUE(flat_2d.equal(tt::Tensor({4}, {1, 2, 3, 4}))) << "Flatten values incorrect";

  // Test 2: 3D tensor (typical CNN output).
  tt::Tensor flat_3d = tt::flatten(tt::Tensor({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(flat_3d.shape(), (tt::Shape{8}));
  EXPECT_TRUE(flat_3d.equal(tt::Tensor({8}, {1, 2, 3, 4, 5, 6, 7, 8}))) << "3D flatten values incorrect";

  // Test 3: feature maps to classifier, 64 x 5 x 5 -> 1600.
  EXPECT_EQ(tt::flatten(tt::Tensor::randn({64, 5, 5})).shape(), (tt::Shape{64 * 5 * 5}));

  // Test 4: data preserved.
  tt::Tensor original = tt::Tensor::arange(24).reshape({2, 3, 4});
  EXPECT_TRUE(tt::flatten(original).equal(tt::Tensor::arange(24))) << "Data not preserved during flattening";
}

// test_module: the CNN pipeline 3x28x28 -> Conv(3,16,3) -> Pool(2) -> Conv(16,32,3) -> Pool(2)
// -> flatten -> Linear(800, 10) -> (10,).
TEST(SeedSpatial, ModulePipeline) {
  tt::Conv2D conv1(3, 16, 3);
  tt::MaxPool2D pool1(2);
  tt::Conv2D conv2(16, 32, 3);
  tt::MaxPool2D pool2(2);
  tt::Linear classifier(32 * 5 * 5, 10);

  tt::Tensor x = tt::Tensor::randn({3, 28, 28});
  x = conv1(x);
  EXPECT_EQ(x.shape(), (tt::Shape{16, 26, 26}));
  x = pool1(x);
  EXPECT_EQ(x.shape(), (tt::Shape{16, 13, 13}));
  x = conv2(x);
  EXPECT_EQ(x.shape(), (tt::Shape{32, 11, 11}));
  x = pool2(x);
  EXPECT_EQ(x.shape(), (tt::Shape{32, 5, 5}));
  x = tt::flatten(x);
  EXPECT_EQ(x.shape(), (tt::Shape{800}));
  x = classifier(x);
  EXPECT_EQ(x.shape(), (tt::Shape{10})) << "Expected (10,) output for classification";
}

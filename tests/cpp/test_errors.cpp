// Every error path of the spatial module and layers: the type, and a message that says what was
// expected and what was given (the seed's wording where the seed has one).
#include <gtest/gtest.h>

#include <functional>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

// Runs fn, expects a ShapeError whose message contains `needle`.
void expect_shape_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown; expected one containing: " << needle;
  } catch (const tt::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type, message: " << e.what();
  }
}

}  // namespace

TEST(Errors, SeedWording) {
  tt::Conv2D conv(3, 16, 3);
  expect_shape_error([&] { conv(tt::Tensor::randn({28, 28})); }, "Expected 3D input (channels, height, width), got 2D");
  expect_shape_error([&] { conv(tt::Tensor::randn({1, 1, 3, 28, 28})); }, "got 5D");
  expect_shape_error([&] { conv(tt::Tensor::randn({1, 28, 28})); }, "Expected 3 input channels, got 1");
  expect_shape_error([&] { conv(tt::Tensor::randn({2, 4, 28, 28})); }, "Expected 3 input channels, got 4");
  tt::MaxPool2D pool(2);
  expect_shape_error([&] { pool(tt::Tensor::randn({4, 4})); }, "Expected 3D input (channels, height, width), got 2D");
}

TEST(Errors, ConvKernelLargerThanPaddedInput) {
  tt::Conv2D conv(1, 1, 5);
  expect_shape_error(
      [&] {
        conv(tt::Tensor::randn({1, 3, 3}));
      },
      "kernel (5, 5) with dilation (1, 1) spans 5x5, larger than the padded input 3x3");
  tt::Conv2D dilated(1, 1, 3, 1, 1, 3);  // spans 7, padded input 4 + 2 = 6
  expect_shape_error([&] { dilated(tt::Tensor::randn({1, 4, 9})); }, "spans 7x7, larger than the padded input 6x11");
  tt::Conv2D padded(1, 1, 5, 1, 1);  // 3 + 2 = 5 fits exactly
  EXPECT_EQ(padded(tt::Tensor::randn({1, 3, 3})).shape(), (tt::Shape{1, 1, 1}));
}

TEST(Errors, ConvConstructorArguments) {
  expect_shape_error([] { tt::Conv2D(0, 4, 3); }, "in_channels and out_channels must be positive, got 0 and 4");
  expect_shape_error([] { tt::Conv2D(3, -1, 3); }, "must be positive, got 3 and -1");
  expect_shape_error([] { tt::Conv2D(3, 4, 0); }, "kernel_size must be positive, got (0, 0)");
  expect_shape_error([] { tt::Conv2D(3, 4, {3, -2}); }, "kernel_size must be positive, got (3, -2)");
  expect_shape_error([] { tt::Conv2D(3, 4, 3, 0); }, "stride must be positive, got (0, 0)");
  expect_shape_error([] { tt::Conv2D(3, 4, 3, 1, -1); }, "padding must be >= 0, got (-1, -1)");
  expect_shape_error([] { tt::Conv2D(3, 4, 3, 1, 0, 0); }, "dilation must be positive, got (0, 0)");
  expect_shape_error([] { tt::Conv2D(4, 6, 3, 1, 0, 1, 4); },
                     "groups=4 must be positive and divide in_channels=4 and out_channels=6");
  expect_shape_error([] { tt::Conv2D(3, 6, 3, 1, 0, 1, 2); }, "groups=2 must be positive and divide in_channels=3");
  expect_shape_error([] { tt::Conv2D(3, 6, 3, 1, 0, 1, 0); }, "groups=0");
  expect_shape_error([] { tt::Conv2D(3, 4, 3, 1, "full"); },
                     "expected an int, an (h, w) pair, 'valid' or 'same', got 'full'");
  expect_shape_error([] { tt::Conv2D(3, 4, 3, 2, "same"); },
                     "padding='same' needs stride 1 (as in PyTorch), got stride (2, 2)");
}

TEST(Errors, FunctionalConvArguments) {
  const tt::Tensor x = tt::Tensor::randn({2, 4, 8, 8});
  expect_shape_error([&] { tt::conv2d(x, tt::Tensor::randn({4, 4, 3})); }, "expected a 4D weight");
  expect_shape_error(
      [&] {
        tt::conv2d(x, tt::Tensor::randn({3, 2, 3, 3}), {}, {1, 0, 1, 2});
      },
      "groups=2 must divide out_channels=3");
  expect_shape_error(
      [&] {
        tt::conv2d(x, tt::Tensor::randn({4, 4, 3, 3}), tt::Tensor::zeros({3}));
      },
      "expected bias of shape (4,), got (3,)");
  expect_shape_error(
      [&] {
        tt::conv2d(tt::Tensor::zeros({2, 4, 0, 8}), tt::Tensor::randn({4, 4, 3, 3}));
      },
      "input height and width must be positive, got shape (2, 4, 0, 8)");
  expect_shape_error([&] { tt::conv2d(x, tt::Tensor::zeros({4, 0, 3, 3})); }, "weight sizes must be positive");
  // A batch of zero images is valid, as in PyTorch: an empty output of the right shape.
  EXPECT_EQ(tt::conv2d(tt::Tensor::zeros({0, 4, 8, 8}), tt::Tensor::randn({2, 4, 3, 3})).shape(),
            (tt::Shape{0, 2, 6, 6}));
}

TEST(Errors, PoolArguments) {
  expect_shape_error([] { tt::MaxPool2D(3, 1, 2); }, "padding (2, 2) must be at most half the kernel size (3, 3)");
  expect_shape_error([] { tt::AvgPool2D(2, 2, {0, 2}); }, "padding (0, 2) must be at most half the kernel size (2, 2)");
  expect_shape_error([] { tt::MaxPool2D(0); }, "kernel_size must be positive, got (0, 0)");
  expect_shape_error([] { tt::MaxPool2D(2, tt::Size2{0, 1}); }, "stride must be positive, got (0, 1)");
  expect_shape_error([] { tt::MaxPool2D(2, 2, 0, 0); }, "dilation must be positive");
  expect_shape_error([] { tt::AvgPool2D(2, 2, -1); }, "padding must be >= 0");
  tt::MaxPool2D pool(3);
  expect_shape_error(
      [&] {
        pool(tt::Tensor::randn({2, 2, 2}));
      },
      "input 2x2 is too small for kernel (3, 3) with dilation (1, 1) and padding (0, 0): the output would be 0x0");
  expect_shape_error([&] { pool(tt::Tensor::zeros({0, 4, 4})); }, "channels, height and width must be positive");
}

TEST(Errors, LinearAndFlattenAndNaive) {
  tt::Linear fc(800, 10);
  expect_shape_error([&] { fc(tt::Tensor::randn({799})); }, "expected 800 input features, got 799");
  expect_shape_error(
      [&] {
        fc(tt::Tensor::randn({2, 4, 200}));
      },
      "expected input of shape (800,) or (batch, 800), got shape (2, 4, 200)");
  expect_shape_error([] { tt::Linear(0, 3); }, "input_size and output_size must be positive, got 0 and 3");
  const tt::Tensor x = tt::Tensor::randn({2, 3, 4});
  expect_shape_error([&] { tt::flatten(x, 3); }, "start_dim=3 is out of range for a 3D tensor");
  expect_shape_error([&] { tt::flatten(x, 2, 1); }, "start_dim=2 comes after end_dim=1");
  expect_shape_error(
      [&] {
        tt::conv2d_naive(tt::Tensor::randn({3}), tt::Tensor::randn({1, 1}));
      },
      "expected input of shape (height, width) or (channels, height, width), got 1D");
  expect_shape_error(
      [&] {
        tt::conv2d_naive(tt::Tensor::randn({3, 3}), tt::Tensor::randn({3}));
      },
      "expected a 2D kernel");
  expect_shape_error(
      [&] {
        tt::conv2d_naive(tt::Tensor::randn({3, 3}), tt::Tensor::randn({4, 2}));
      },
      "kernel 4x2 does not fit the input 3x3");
}

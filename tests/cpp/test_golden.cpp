// Our reference kernels against PyTorch: the golden files hold inputs and PyTorch's float64 result
// rounded to float32 (scripts/make_golden.py). Our references accumulate in double too, so the two
// are roundings of nearly the same exact sum: they may differ in the last bit, hence rtol 1e-6
// (8 ulp) with a 1e-6 floor for values near zero. Max pooling picks an input value: exact.
#include <gtest/gtest.h>

#include "golden.hpp"

namespace tt = tinytorch;

namespace {

tt::Tensor run(const golden::Case& c) {
  const tt::Tensor& x = c.tensor("input");
  const tt::Tensor bias = c.has("bias") ? c.tensor("bias") : tt::Tensor();
  if (c.op == "conv2d") {
    tt::Conv2dOptions o;
    o.stride = c.pair("stride");
    o.dilation = c.pair("dilation");
    o.groups = c.attr("groups");
    const std::string& pad = c.attrs.at("padding").at(0);
    o.padding = (pad == "same" || pad == "valid") ? tt::Padding2d(pad) : tt::Padding2d(c.pair("padding"));
    return tt::conv2d_with(tt::Conv2dAlgorithm::Reference, x, c.tensor("weight"), bias, o);
  }
  if (c.op == "max_pool2d") {
    return tt::max_pool2d(
        x, {c.pair("kernel_size"), c.pair("stride"), c.pair("padding"), c.pair("dilation"), c.attr("ceil_mode") != 0});
  }
  if (c.op == "avg_pool2d") {
    return tt::avg_pool2d(x, {c.pair("kernel_size"), c.pair("stride"), c.pair("padding"), c.attr("ceil_mode") != 0,
                              c.attr("count_include_pad") != 0});
  }
  if (c.op == "linear") return tt::linear(x, c.tensor("weight"), bias);
  if (c.op == "conv2d_naive")
    return tt::conv2d_naive(x, c.tensor("weight"), static_cast<float>(std::stod(c.attrs.at("bias")[0])));
  throw std::runtime_error("unknown op " + c.op);
}

void check_file(const std::string& file, size_t expected_cases) {
  const std::vector<golden::Case> cases = golden::load(file);
  ASSERT_EQ(cases.size(), expected_cases) << file;
  for (const golden::Case& c : cases) {
    SCOPED_TRACE(c.name);
    const tt::Tensor got = run(c);
    const tt::Tensor& want = c.tensor("expected");
    ASSERT_EQ(got.shape(), want.shape());
    if (c.op == "max_pool2d") {
      EXPECT_TRUE(got.equal(want)) << got << "\nexpected\n" << want;
    } else {
      EXPECT_TRUE(got.allclose(want, 1e-6, 1e-6)) << got << "\nexpected\n" << want;
    }
  }
}

}  // namespace

TEST(GoldenPyTorch, Conv2d) { check_file("conv2d.txt", 14); }
TEST(GoldenPyTorch, Pool2d) { check_file("pool2d.txt", 13); }
TEST(GoldenPyTorch, LinearAndNaive) { check_file("other.txt", 3); }

// Hardening: a checkpoint save killed midway or hitting a full disk never destroys the previous
// file; huge, empty and non-finite inputs give typed errors or PyTorch's results, never a crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "scratch.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) { return tt::testing::scratch_path("hardening", name); }

std::vector<char> bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST(CrashSafety, KilledMidSaveLeavesALoadableCheckpoint) {
  const std::string path = scratch("killed.safetensors");
  tt::Linear big(2000, 2000);  // a 16 MB checkpoint: a save takes long enough to be interrupted
  tt::save_checkpoint(path, big, nullptr, {{"version", "0"}});
  int interrupted = 0, torn = 0;
  for (int round = 0; round < 6; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int v = 1;; ++v) tt::save_checkpoint(path, big, nullptr, {{"version", std::to_string(v)}});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + 13 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    interrupted += WIFSIGNALED(status);
    // Proof that the kill landed mid-save: the killed writer's temporary file is still there (the
    // next writer removes it).
    for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
      torn += entry.path().filename().string().rfind(".killed.safetensors.tmp-", 0) == 0;
    tt::Linear loaded(2000, 2000);
    const auto meta = tt::load_checkpoint(path, loaded, nullptr);  // throws if the file were torn
    EXPECT_TRUE(loaded.weight.equal(big.weight));
    EXPECT_FALSE(meta.at("version").empty());
  }
  EXPECT_EQ(interrupted, 6);
  EXPECT_GT(torn, 0);
  // A later save removes the temporaries of writers that no longer run.
  tt::save_checkpoint(path, big, nullptr);
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
}

TEST(CrashSafety, FullDiskGivesAClearErrorAndKeepsTheOldFile) {
  const std::string path = scratch("full/ckpt.safetensors");  // its own folder: the killed saves above leave temp files
  tt::Linear small(4, 4), big(1000, 1000);
  tt::save_checkpoint(path, small, nullptr);
  const std::vector<char> before = bytes_of(path);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A file-size limit of 1 MiB stands in for a full disk: write() fails with EFBIG.
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      tt::save_checkpoint(path, big, nullptr);
      ::_exit(1);  // it should not have succeeded
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      ::_exit(what.find("cannot write") != std::string::npos && what.find(path) != std::string::npos ? 0 : 2);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the save succeeded; 2: the error did not say what failed";
  EXPECT_EQ(bytes_of(path), before);
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << "left behind: " << entry.path();
  }
}

TEST(BadInputs, HugeSizesAreTypedErrors) {
  const int64_t big = int64_t{1} << 40;
  EXPECT_THROW(tt::Tensor::zeros({big, big}), tt::ShapeError);  // the count overflows int64
  // Empty, yet its strides (sizes multiplied, empty dims as 1) would overflow: refused too (found by
  // fuzz_onnx: an initializer with dims (0, 2^57, 8064)).
  EXPECT_THROW(tt::Tensor::empty({0, big, big}), tt::ShapeError);
  EXPECT_THROW(tt::Tensor::zeros({big}), std::bad_alloc);  // 4 TiB cannot be allocated
  EXPECT_THROW(tt::Tensor::zeros({-1, 3}), tt::ShapeError);
  EXPECT_THROW(tt::Conv2D(int64_t{1} << 40, 1, 1), std::bad_alloc);
  EXPECT_THROW(tt::Linear(int64_t{1} << 62, 4), tt::ShapeError);  // 2^64 elements: overflow
  const tt::Tensor x = tt::Tensor::zeros({1, 1, 4, 4});
  EXPECT_THROW(tt::conv2d(x, tt::Tensor::zeros({1, 1, 3, 3}), {}, {.stride = 0}), tt::ShapeError);
  EXPECT_THROW(tt::conv2d(x, tt::Tensor::zeros({1, 1, 3, 3}), {}, {.dilation = {1, 0}}), tt::ShapeError);
  EXPECT_THROW(tt::conv2d(x, tt::Tensor::zeros({1, 1, 3, 3}), {}, {.padding = int64_t{1} << 62}), tt::ShapeError);
  EXPECT_THROW(tt::max_pool2d(x, {int64_t{1} << 40}), tt::ShapeError);
  EXPECT_THROW(tt::max_pool2d(x, {2, tt::Size2{int64_t{1} << 62}}), tt::ShapeError);
  EXPECT_THROW(tt::conv2d(x, tt::Tensor::zeros({1, 1, 3, 3}), {}, {.dilation = int64_t{1} << 62}), tt::ShapeError);
  EXPECT_THROW(tt::cross_entropy(tt::Tensor::zeros({2, 3}), {0, 3}), tt::ShapeError);
  EXPECT_THROW(tt::cross_entropy(tt::Tensor::zeros({2, 3}), {0}), tt::ShapeError);
  tt::Tensor no_mean, no_var;
  EXPECT_THROW(tt::batch_norm(tt::Tensor::zeros({1, 3}), no_mean, no_var, {}, {}, true),
               tt::ShapeError);  // one value per channel in training
  EXPECT_THROW(tt::dropout(x, 1.5, true), tt::ShapeError);
}

TEST(BadInputs, EmptyTensors) {
  EXPECT_EQ(tt::conv2d(tt::Tensor::zeros({0, 2, 5, 5}), tt::Tensor::zeros({3, 2, 3, 3})).shape(),
            (tt::Shape{0, 3, 3, 3}));
  EXPECT_EQ(tt::linear(tt::Tensor::zeros({0, 4}), tt::Tensor::zeros({2, 4})).shape(), (tt::Shape{0, 2}));
  EXPECT_EQ(tt::relu(tt::Tensor::zeros({0})).numel(), 0);
  EXPECT_THROW(tt::mean(tt::Tensor::zeros({0})), tt::ShapeError);
  EXPECT_THROW(tt::max_pool2d(tt::Tensor::zeros({1, 0, 4, 4}), {2}), tt::ShapeError);
  EXPECT_THROW(tt::conv2d(tt::Tensor::zeros({1, 2, 0, 5}), tt::Tensor::zeros({3, 2, 1, 1})), tt::ShapeError);
}

TEST(BadInputs, NanAndInfPropagateAsInPyTorch) {
  const float inf = std::numeric_limits<float>::infinity();
  for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
    tt::Tensor x = tt::Tensor::ones({1, 16, 8, 8});
    x.at({0, 3, 4, 4}) = std::nanf("");
    const tt::Tensor w = tt::Tensor::ones({16, 16, 3, 3});
    if (!tt::conv2d_algorithm_supports(a, x.shape(), w.shape(), {.padding = 1})) continue;
    const tt::Tensor y = tt::conv2d_with(a, x, w, {}, {.padding = 1});
    EXPECT_TRUE(std::isnan(y.at({0, 0, 4, 4}))) << tt::to_string(a);  // windows over the NaN
    // Outputs whose windows miss it stay finite (Winograd's transforms skip zero coefficients, so
    // a NaN reaches exactly the outputs that read it).
    EXPECT_FALSE(std::isnan(y.at({0, 0, 0, 0}))) << tt::to_string(a);
  }
  tt::Tensor p = tt::Tensor::ones({1, 1, 4, 4});
  p.at({0, 0, 1, 1}) = inf;
  p.at({0, 0, 2, 2}) = std::nanf("");
  const tt::Tensor m = tt::max_pool2d(p, {2});
  EXPECT_EQ(m.at({0, 0, 0, 0}), inf);
  EXPECT_TRUE(std::isnan(m.at({0, 0, 1, 1})));
  const tt::Tensor l = tt::cross_entropy(tt::Tensor({1, 3}, {inf, 0.0f, 0.0f}), {1});
  EXPECT_TRUE(std::isinf(l.item()) || std::isnan(l.item()));  // PyTorch gives inf here; never a crash
}

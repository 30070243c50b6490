// Optimizers against their formulas, checkpoints (round trip, corrupt and truncated files), the
// IDX reader, the DataLoader, and determinism of a training run across thread counts.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tinytorch_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(Optim, SgdMomentumNesterovMatchesTorchFormulas) {
  tt::Tensor w = tt::Tensor({2}, {1.0f, -2.0f}).set_requires_grad();
  tt::SGD sgd({w}, 0.1, 0.9, 0.01, true);
  // step 1: d = g + wd*w; buf = d; nesterov: d + m*buf
  w.set_grad(tt::Tensor({2}, {0.5f, 0.25f}));
  sgd.step();
  const double d0 = 0.5 + 0.01 * 1.0, w0 = 1.0 - 0.1 * (d0 + 0.9 * d0);
  EXPECT_NEAR(w.data()[0], w0, 1e-6);
  // step 2: buf = m*buf + d
  w.set_grad(tt::Tensor({2}, {-0.5f, 0.0f}));
  sgd.step();
  const double d1 = -0.5 + 0.01 * w0, buf = 0.9 * d0 + d1;
  EXPECT_NEAR(w.data()[0], w0 - 0.1 * (d1 + 0.9 * buf), 1e-6);
}

TEST(Optim, AdamAndAdamWMatchTorchFormulas) {
  for (bool decoupled : {false, true}) {
    tt::Tensor w = tt::Tensor({1}, {0.8f}).set_requires_grad();
    tt::Adam adam({w}, 0.01, 0.9, 0.999, 1e-8, 0.1, decoupled);
    double m = 0, v = 0, wv = 0.8;
    for (int t = 1; t <= 3; ++t) {
      const double g = 0.3 * t;
      w.set_grad(tt::Tensor({1}, {static_cast<float>(g)}));
      adam.step();
      double d = g;
      if (decoupled) {
        wv *= 1 - 0.01 * 0.1;
      } else {
        d += 0.1 * wv;
      }
      m = 0.9 * m + 0.1 * d;
      v = 0.999 * v + 0.001 * d * d;
      const double mhat = m / (1 - std::pow(0.9, t)), vhat = v / (1 - std::pow(0.999, t));
      wv -= 0.01 * mhat / (std::sqrt(vhat) + 1e-8);
      EXPECT_NEAR(w.data()[0], wv, 1e-5) << (decoupled ? "AdamW" : "Adam") << " step " << t;
    }
  }
  EXPECT_NEAR(tt::cosine_lr(0.1, 0, 10), 0.1, 1e-12);
  EXPECT_NEAR(tt::cosine_lr(0.1, 5, 10), 0.05, 1e-12);
  EXPECT_NEAR(tt::step_lr(0.1, 4, 2, 0.1), 0.001, 1e-12);
  EXPECT_THROW(tt::SGD({tt::Tensor::zeros({1})}, -1.0), tt::ArgumentError);
}

TEST(Checkpoint, RoundTripModelAndOptimizer) {
  tt::manual_seed(1);
  auto a = tt::make_fashion_cnn();
  std::vector<tt::Tensor> params = a->parameters();
  for (auto& p : params) p.set_requires_grad();
  tt::Adam opt(params, 1e-3);
  tt::Tensor x = tt::Tensor::randn({4, 1, 28, 28});
  tt::cross_entropy((*a)(x), {1, 2, 3, 4}).backward();
  opt.step();
  const std::string path = temp_path("round_trip.safetensors");
  tt::save_checkpoint(path, *a, &opt, {{"epoch", "3"}});

  tt::manual_seed(2);
  auto b = tt::make_fashion_cnn();
  std::vector<tt::Tensor> params_b = b->parameters();
  tt::Adam opt_b(params_b, 1e-3);
  const auto meta = tt::load_checkpoint(path, *b, &opt_b);
  EXPECT_EQ(meta.at("epoch"), "3");
  EXPECT_EQ(opt_b.steps(), 1);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(pa[i].second.equal(pb[i].second)) << pa[i].first;
  const auto ba = a->named_buffers(), bb = b->named_buffers();
  for (size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(ba[i].second.equal(bb[i].second)) << ba[i].first;
  for (size_t i = 0; i < opt.state().size(); ++i) EXPECT_TRUE(opt.state()[i].second.equal(opt_b.state()[i].second));
  // The format is plain safetensors: the header names the tensors with their shapes.
  const auto bytes = read_bytes(path);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + bytes[0] + 256 * bytes[1]);
  EXPECT_NE(header.find("\"0.weight\":{\"dtype\":\"F32\",\"shape\":[32,1,3,3]"), std::string::npos);
}

TEST(Checkpoint, CorruptAndTruncatedFilesAreClearErrors) {
  tt::manual_seed(1);
  auto model = tt::make_fashion_cnn();
  const std::string good = temp_path("good.safetensors");
  tt::save_checkpoint(good, *model, nullptr);
  const std::vector<uint8_t> bytes = read_bytes(good);
  auto expect_error = [&](const std::vector<uint8_t>& content, const std::string& needle) {
    const std::string bad = temp_path("bad.safetensors");
    write_bytes(bad, content);
    try {
      tt::load_checkpoint(bad, *model, nullptr);
      ADD_FAILURE() << "no error for a file expected to mention: " << needle;
    } catch (const tt::DataError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << "the message names the file";
    }
  };
  expect_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2), "truncated");
  expect_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5), "too short");
  std::vector<uint8_t> huge = bytes;
  huge[7] = 0x7f;  // a header length of ~2^63
  expect_error(huge, "does not fit the file");
  std::vector<uint8_t> garbled = bytes;
  garbled[8] = 'X';  // the JSON's opening brace
  expect_error(garbled, "bad safetensors header");
  std::vector<uint8_t> extra = bytes;
  extra.push_back(0);
  expect_error(extra, "bytes after the last tensor");
  // A model of another shape: refused before anything is copied.
  tt::Sequential other;
  other.emplace<tt::Linear>(3, 2);
  EXPECT_THROW(tt::load_checkpoint(good, other, nullptr), tt::DataError);
  // A failed save leaves the old file and no temporary behind.
  EXPECT_THROW(tt::save_checkpoint(temp_path("no_such_dir/x/ckpt.safetensors"), *model, nullptr), std::runtime_error);
  EXPECT_EQ(read_bytes(good), bytes);
}

TEST(Idx, ReadsGzipAndPlainAndRejectsBadFiles) {
  // A 3-image 2x2 IDX file and its labels, gzip-compressed.
  const std::vector<uint8_t> images = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,  0,  0,
                                       0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const std::string gz = temp_path("images.gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, images.data(), static_cast<unsigned>(images.size()));
  gzclose(f);
  const tt::IdxImages got = tt::read_idx_images(gz);
  EXPECT_EQ(got.count, 3);
  EXPECT_EQ(got.rows, 2);
  EXPECT_EQ(got.pixels[11], 12);
  const std::string plain = temp_path("labels.idx");
  write_bytes(plain, {0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9});
  EXPECT_EQ(tt::read_idx_labels(plain), (std::vector<int64_t>{7, 0, 9}));

  auto expect_error = [&](std::vector<uint8_t> content, bool labels, const std::string& needle) {
    const std::string bad = temp_path("bad.idx");
    write_bytes(bad, content);
    try {
      labels ? (void)tt::read_idx_labels(bad) : (void)tt::read_idx_images(bad);
      ADD_FAILURE() << "no error, expected: " << needle;
    } catch (const tt::DataError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos);
    }
  };
  expect_error({0, 0, 8, 1, 0, 0, 0, 3, 7}, false, "magic number 0x00000801 is not that of an IDX image file");
  expect_error(std::vector<uint8_t>(images.begin(), images.end() - 1), false, "(truncated)");
  expect_error({0, 0, 8, 3, 0, 0}, false, "truncated in its header");
  expect_error({0, 0, 8, 1, 0, 0, 0, 0}, true, "dimension 0 is 0");
  expect_error({0, 0, 8}, true, "too short");
  EXPECT_THROW(tt::read_idx_images(temp_path("missing.gz")), tt::DataError);
  EXPECT_THROW(tt::make_dataset(tt::Tensor::zeros({3, 1, 2, 2}), {1, 2}), tt::DataError);
}

TEST(DataLoader, SeededOrderAndAugmentation) {
  tt::Tensor images = tt::Tensor::arange(10 * 4).reshape({10, 1, 2, 2});
  std::vector<int64_t> labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const tt::Dataset data = tt::make_dataset(images, labels);
  tt::DataLoader a(data, 4, true, 7), b(data, 4, true, 7);
  EXPECT_EQ(a.batches(), 3);
  EXPECT_EQ(a.batch(0).second, b.batch(0).second);
  EXPECT_EQ(a.batch(2).second.size(), 2u);  // the short last batch
  const auto first = a.batch(0).second;
  a.start_epoch(1);
  EXPECT_NE(a.batch(0).second, first);
  // Images travel with their labels.
  const auto [x, y] = a.batch(1);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(x.at({static_cast<int64_t>(i), 0, 0, 0}), 4.0f * y[i]);
  tt::DataLoader aug(data, 10, false, 3, 1, true);
  const auto [xa, ya] = aug.batch(0);
  EXPECT_EQ(xa.shape(), (tt::Shape{10, 1, 2, 2}));
  EXPECT_EQ(ya, labels);
}

TEST(Training, SameLossTraceOnOneAndTwoThreads) {
  const int saved = tt::get_num_threads();
  std::vector<std::vector<float>> traces;
  for (int threads : {1, 2}) {
    tt::set_num_threads(threads);
    tt::manual_seed(42);
    auto model = tt::make_fashion_cnn();
    std::vector<tt::Tensor> params = model->parameters();
    for (auto& p : params) p.set_requires_grad();
    tt::Adam opt(params, 1e-3);
    tt::Generator data_gen(3);
    const tt::Tensor x = tt::Tensor::randn({32, 1, 28, 28}, data_gen);
    std::vector<int64_t> y(32);
    for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i % 10);
    std::vector<float> trace;
    for (int step = 0; step < 4; ++step) {
      tt::Tensor loss = tt::cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      trace.push_back(loss.item());
    }
    traces.push_back(trace);
  }
  tt::set_num_threads(saved);
  EXPECT_EQ(traces[0], traces[1]);
  EXPECT_LT(traces[0].back(), traces[0].front());  // and it learns
}

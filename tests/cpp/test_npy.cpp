// .npy files: round trips of every dtype and rank, files numpy wrote (the fuzz seed corpus), and
// malformed files, each refused with a DataError that says what is wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "scratch.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;
using tinytorch::testing::scratch_path;

namespace {

std::string write_bytes(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_path("npy", name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A version 1.0 file with this header text and data.
std::string npy(const std::string& header, const std::string& data) {
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

void expect_refused(const std::string& name, const std::string& bytes, const std::string& says) {
  try {
    tt::load_npy(write_bytes(name, bytes));
    ADD_FAILURE() << name << ": loaded";
  } catch (const tt::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << name << ": " << e.what();
  }
}

}  // namespace

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  const tt::Tensor shapes[] = {tt::Tensor::arange(0.0, 24.0).reshape({2, 3, 4}), tt::Tensor::full({}, 2.5f),
                               tt::Tensor::zeros({0, 3}), tt::Tensor::arange(0.0, 5.0).reshape({5})};
  int i = 0;
  for (const tt::Tensor& t : shapes) {
    const std::string path = scratch_path("npy", "round" + std::to_string(i++) + ".npy");
    tt::save_npy(path, t);
    const tt::Tensor back = tt::load_npy(path);
    EXPECT_EQ(back.shape(), t.shape());
    for (int64_t k = 0; k < t.numel(); ++k) EXPECT_EQ(back.data()[k], t.contiguous().data()[k]);
  }
  const std::string ipath = scratch_path("npy", "int.npy");
  tt::save_npy(ipath, tt::Tensor::int64({3}, {-1, 0, 1LL << 40}));
  const tt::Tensor ints = tt::load_npy(ipath);
  ASSERT_EQ(ints.dtype(), tt::DType::Int64);
  EXPECT_EQ(ints.data_ptr<int64_t>()[2], 1LL << 40);
  const std::string view_path = scratch_path("npy", "view.npy");  // a strided view is written in order
  tt::save_npy(view_path, tt::Tensor::arange(0.0, 6.0).reshape({2, 3}).transpose(0, 1));
  const tt::Tensor v = tt::load_npy(view_path);
  EXPECT_EQ(v.shape(), (tt::Shape{3, 2}));
  EXPECT_EQ(v.data()[1], 3.0f);
}

TEST(Npy, ReadsWhatNumpyWrote) {
  const std::string corpus = std::string(TINYTORCH_GOLDEN_DIR) + "/../../fuzz/corpus/npy/";
  const tt::Tensor f4 = tt::load_npy(corpus + "f4.npy");  // np.arange(6, dtype=float32).reshape(2, 3)
  EXPECT_EQ(f4.shape(), (tt::Shape{2, 3}));
  EXPECT_EQ(f4.data()[5], 5.0f);
  EXPECT_EQ(tt::load_npy(corpus + "f8.npy").dtype(), tt::DType::Float32);  // float64 read as float32
  EXPECT_EQ(tt::load_npy(corpus + "b1.npy").dtype(), tt::DType::Bool);
  EXPECT_EQ(tt::load_npy(corpus + "scalar.npy").dim(), 0);
  EXPECT_EQ(tt::load_npy(corpus + "empty.npy").shape(), (tt::Shape{0, 3}));
}

TEST(Npy, MalformedFilesAreRefusedWithAMessage) {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
  expect_refused("magic.npy", "NUMPY not at all", "magic");
  expect_refused("short.npy", npy(f4, std::string(7, '\0')), "holds 7 data bytes, its shape needs 8");
  expect_refused("fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", std::string(8, '\0')),
                 "fortran_order");
  expect_refused("dtype.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')),
                 "dtype '>f4'");
  expect_refused("noshape.npy", npy("{'descr': '<f4', 'fortran_order': False}", ""), "no 'shape'");
  expect_refused("bigshape.npy",
                 npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", ""),
                 "too large");
  // no elements, but strides past int64 (found by fuzz_npy): refused here, not by Tensor::empty
  expect_refused("zerobig.npy",
                 npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 0, 800000, 800000000000000, 3), }", ""),
                 "more elements than an int64 can count");
  expect_refused("badshape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", ""),
                 "non-negative integers");
  std::string past = npy(f4, "");
  past[8] = '\xFF';  // header length past the end
  expect_refused("past.npy", past, "past the end");
  expect_refused("version.npy", std::string("\x93NUMPY\x09\x00\x00\x00", 10), "format version 9");
}

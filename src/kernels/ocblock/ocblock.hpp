// The ocblock convolution's register block (ops/conv2d_ocblock.cpp) at the ISA's full vector width:
// NP <= 12 output pixels x one vector of output channels (8 with AVX2, 16 with AVX-512), each tap
// of each pixel one input value broadcast against the tap's weight vector. ocblock.cpp's own
// blocks are GCC vectors of 8 floats, AVX2 instructions on either ISA: with AVX-512 its blocks of
// 16 channels took two 256-bit multiply-adds where one 512-bit one does the same work. Pure
// functions on raw pointers: they never allocate, throw or start threads.
#pragma once

#include <cstdint>

#include "kernels/cpu.hpp"

namespace tinytorch::kernels {

struct OcblockKernels {
  int64_t lanes;  // output channels per vector
  // np pixels (1 .. 12) whose window offsets are base[0 .. np) (base null: pixels 0 .. np - 1 of the
  // window, one apart), taps [0, K) at offset[k]: acc[j * lanes + l] (+)= sum over k of
  // window[base[j] + offset[k]] * w[k * lanes + l]; `first` starts from zero, else from acc.
  void (*block)(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
                float* acc, bool first);
  // The same for two vectors of channels at once, weights w0 and w1 into acc0 and acc1 (each as
  // `block`'s), every broadcast input value multiplied into both: 24 accumulators, so only where
  // the ISA has 32 registers (AVX-512); null with AVX2.
  void (*block2)(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w0,
                 const float* w1, float* acc0, float* acc1, bool first);
  // Blocks of lanes / M output channels (M = 2 at [0], 4 at [1]), M pixels per vector: np pixels
  // (1 .. 12 M) of a linear block (pixel j's tap 0 at window + j), acc as `block`'s with lanes / M
  // channels per pixel; w's tap k holds each channel's weight M times (lane c M + e: channel c).
  // Null where a vector would hold fewer than 2 channels (M = 4 with AVX2).
  void (*interleaved[2])(int np, const float* window, const int64_t* offset, int64_t K, const float* w, float* acc,
                         bool first);
};

namespace avx2 {
const OcblockKernels& ocblock_kernels();
}
namespace avx512 {
const OcblockKernels& ocblock_kernels();
}

// cpu_isa()'s, chosen once per process.
inline const OcblockKernels& ocblock_kernels() {
  static const OcblockKernels& table = isa_table("ocblock", &avx2::ocblock_kernels, &avx512::ocblock_kernels);
  return table;
}

}  // namespace tinytorch::kernels

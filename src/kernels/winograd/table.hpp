// The Winograd kernels of one ISA as a table of function pointers (the signatures of winograd.hpp):
// winograd/avx2.cpp and winograd/avx512.cpp each build one; winograd.cpp picks one per process.
// Private to src/kernels/winograd.
#pragma once

#include <cstdint>

#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

struct WinogradKernels {
  using WeightTransform = void (*)(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr);
  using InputTransform = void (*)(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes);
  using OutputTransform = void (*)(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                   int64_t oc0, int rows, int64_t t0, int lanes);
  WeightTransform f43_weight;
  InputTransform f43_input;
  OutputTransform f43_output;
  WeightTransform s2_weight;
  InputTransform s2_input;
  OutputTransform s2_output;
};

namespace avx2 {
const WinogradKernels& winograd_kernels();
}
namespace avx512 {
const WinogradKernels& winograd_kernels();
}

}  // namespace tinytorch::kernels

// The depthwise kernels of one ISA (the signatures of conv2d_depthwise_block,
// depthwise_weight_grad_block and lanes_input_grad_block in conv2d.hpp) and its
// vector width: depthwise/avx2.cpp and avx512.cpp each provide one; depthwise.cpp picks one per
// process. Private to src/kernels/depthwise.
#pragma once

#include <cstdint>

#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

struct DepthwiseKernels {
  int64_t lanes;  // output channels per block
  void (*block)(float* out, const float* in, const float* weight, const float* bias, int64_t oc0, int64_t oh0,
                int64_t oh1, float* scratch, const Conv2dGeometry& g);
  void (*weight_grad)(float* sums, const float* dy, const float* in, int64_t oc0, int64_t oh0, int64_t oh1,
                      float* scratch, const Conv2dGeometry& g);
  void (*input_grad)(float* dx, const float* dy, const float* weight, int64_t ic0, int64_t ih0, int64_t ih1,
                     float* scratch, const Conv2dGeometry& g);
};

namespace avx2 {
const DepthwiseKernels& depthwise_kernels();
}
namespace avx512 {
const DepthwiseKernels& depthwise_kernels();
}

}  // namespace tinytorch::kernels

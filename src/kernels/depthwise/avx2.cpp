// The depthwise kernel (depthwise/block.hpp) for Avx2: blocks of 8 output channels. Compiled with
// avx2's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx2.hpp"

#include "kernels/depthwise/block.hpp"
#include "kernels/depthwise/table.hpp"

namespace tinytorch::kernels::avx2 {

const DepthwiseKernels& depthwise_kernels() {
  static const DepthwiseKernels table{Avx2::width, &depthwise_block<Avx2::gcc_vec>,
                                      &depthwise_weight_grad_block<Avx2::gcc_vec>,
                                      &lanes_input_grad_block<Avx2::gcc_vec>};
  return table;
}

}  // namespace tinytorch::kernels::avx2

// The depthwise kernel (depthwise/block.hpp) for Avx512: blocks of 16 output channels. Compiled with
// avx512's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx512.hpp"

#include "kernels/depthwise/block.hpp"
#include "kernels/depthwise/table.hpp"

namespace tinytorch::kernels::avx512 {

const DepthwiseKernels& depthwise_kernels() {
  static const DepthwiseKernels table{Avx512::width, &depthwise_block<Avx512::gcc_vec>,
                                      &depthwise_weight_grad_block<Avx512::gcc_vec>,
                                      &lanes_input_grad_block<Avx512::gcc_vec>};
  return table;
}

}  // namespace tinytorch::kernels::avx512

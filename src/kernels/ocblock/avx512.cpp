// The ocblock register block (ocblock/kernel.hpp) for Avx512: vectors of 16 output channels. Compiled
// with avx512's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx512.hpp"

#include "kernels/ocblock/kernel.hpp"

namespace tinytorch::kernels::avx512 {

const OcblockKernels& ocblock_kernels() {
  static const OcblockKernels table{Avx512::width,
                                    &vector_block_of<Avx512>,
                                    &vector_block2_of<Avx512>,
                                    {&interleaved_block_of<Avx512, 2>, &interleaved_block_of<Avx512, 4>}};
  return table;
}

}  // namespace tinytorch::kernels::avx512

// The ocblock register block (ocblock/kernel.hpp) for Avx2: vectors of 8 output channels. Compiled
// with avx2's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx2.hpp"

#include "kernels/ocblock/kernel.hpp"

namespace tinytorch::kernels::avx2 {

const OcblockKernels& ocblock_kernels() {
  static const OcblockKernels table{
      Avx2::width, &vector_block_of<Avx2>, nullptr, {&interleaved_block_of<Avx2, 2>, nullptr}};
  return table;
}

}  // namespace tinytorch::kernels::avx2

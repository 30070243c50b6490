// The blocked layout's kernels (blocked/kernel.hpp) for Avx512: blocks of 16 channels. Compiled
// with avx512's flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx512.hpp"

#include "kernels/blocked/kernel.hpp"
#include "kernels/blocked/table.hpp"

namespace tinytorch::kernels::avx512 {

const BlockedKernels& blocked_kernels() {
  static const BlockedKernels table{Avx512::width, &blocked_item<Avx512>};
  return table;
}

}  // namespace tinytorch::kernels::avx512

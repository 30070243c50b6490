// The FMA peak probe (peak/peak.hpp) for Avx512. Compiled with avx512's flags.
#include "kernels/simd/avx512.hpp"

#include "kernels/peak/chains.hpp"
#include "kernels/peak/peak.hpp"

namespace tinytorch::kernels::avx512 {

const PeakKernels& peak_kernels() {
  static const PeakKernels table{Avx512::width, &fma_chains<Avx512>};
  return table;
}

}  // namespace tinytorch::kernels::avx512

// The FMA peak probe (peak/peak.hpp) for Avx2. Compiled with avx2's flags.
#include "kernels/simd/avx2.hpp"

#include "kernels/peak/chains.hpp"
#include "kernels/peak/peak.hpp"

namespace tinytorch::kernels::avx2 {

const PeakKernels& peak_kernels() {
  static const PeakKernels table{Avx2::width, &fma_chains<Avx2>};
  return table;
}

}  // namespace tinytorch::kernels::avx2

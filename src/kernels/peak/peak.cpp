#include "kernels/peak/peak.hpp"

#include "kernels/cpu.hpp"

namespace tinytorch::kernels {

const PeakKernels& fma_peak_kernels() {
  static const PeakKernels& kernels = isa_table("fma peak probe", &avx2::peak_kernels, &avx512::peak_kernels);
  return kernels;
}

}  // namespace tinytorch::kernels

// The packed GEMM's micro-kernels instantiated for Avx2 (gemm/tile.hpp). Compiled with avx2's
// flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx2.hpp"

#include "kernels/gemm/tile.hpp"

namespace tinytorch::kernels::avx2 {

const GemmKernels& gemm_kernels() { return gemm_kernels_of<Avx2>(); }

}  // namespace tinytorch::kernels::avx2

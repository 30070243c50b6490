// The packed GEMM's micro-kernels instantiated for Avx512 (gemm/tile.hpp). Compiled with avx512's
// flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx512.hpp"

#include "kernels/gemm/tile.hpp"

namespace tinytorch::kernels::avx512 {

const GemmKernels& gemm_kernels() { return gemm_kernels_of<Avx512>(); }

}  // namespace tinytorch::kernels::avx512

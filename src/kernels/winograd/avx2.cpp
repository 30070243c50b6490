// The Winograd kernels with AVX2 + FMA: the ISA-generic transforms (winograd/transforms.hpp) for 8
// floats, and the weight transforms in plain C++. Compiled with AVX2 flags.
#include "kernels/simd/avx2.hpp"

#include "kernels/winograd/table.hpp"
#include "kernels/winograd/transforms.hpp"

namespace tinytorch::kernels::avx2 {

const WinogradKernels& winograd_kernels() {
  static const WinogradKernels table{&f43_weight_transform_scalar,       &input_transform_lanes<Avx2, F43>,
                                     &output_transform_lanes<Avx2, F43>, &s2_weight_transform_scalar,
                                     &input_transform_lanes<Avx2, S2>,   &output_transform_lanes<Avx2, S2>};
  return table;
}

}  // namespace tinytorch::kernels::avx2

// Which vector ISA the kernels run with, decided once per process: AVX-512 where the CPU has it,
// else AVX2 + FMA (the build's baseline). TINYTORCH_ISA=avx2 forces the AVX2 kernels on an
// AVX-512 machine, so the tests can check both paths on one machine.
#pragma once

namespace tinytorch::kernels {

enum class Isa { Avx2, Avx512 };

Isa cpu_isa();
// Whether the CPU itself has AVX-512F, whatever TINYTORCH_ISA says.
bool cpu_has_avx512();
const char* isa_name(Isa isa);

}  // namespace tinytorch::kernels

#include "kernels/cpu.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/verbose.hpp"

namespace tinytorch::kernels {

bool cpu_has_avx512() {
  __builtin_cpu_init();
  // VL: the AVX-512 kernels' 256-bit vectors (the GEMM tile's half vectors) use registers 16-31 too.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

namespace {
bool forced_avx2() {
  const char* forced = std::getenv("TINYTORCH_ISA");
  return forced && std::strcmp(forced, "avx2") == 0;
}
}  // namespace

Isa cpu_isa() {
  static const Isa isa = cpu_has_avx512() && !forced_avx2() ? Isa::Avx512 : Isa::Avx2;
  return isa;
}

const char* isa_name(Isa isa) { return isa == Isa::Avx512 ? "avx512" : "avx2"; }

const char* isa_reason() {
  if (cpu_isa() == Isa::Avx512) return "the CPU has AVX-512";
  return cpu_has_avx512() ? "TINYTORCH_ISA=avx2 holds AVX-512 back" : "the CPU has no AVX-512 (F and VL)";
}

void log_isa_choice(const char* family, const char* what) {
  if (verbose_enabled()) verbose_log(std::string(family) + ": " + what + " (" + isa_reason() + ")");
}

}  // namespace tinytorch::kernels

#include "kernels/cpu.hpp"

#include <cstdlib>
#include <cstring>

namespace tinytorch::kernels {

Isa cpu_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    const bool has_avx512 = __builtin_cpu_supports("avx512f");
    const char* forced = std::getenv("TINYTORCH_ISA");
    if (forced && std::strcmp(forced, "avx2") == 0) return Isa::Avx2;
    return has_avx512 ? Isa::Avx512 : Isa::Avx2;
  }();
  return isa;
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

const char* isa_name(Isa isa) { return isa == Isa::Avx512 ? "avx512" : "avx2"; }

}  // namespace tinytorch::kernels

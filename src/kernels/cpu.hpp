// Which vector ISA the kernels run with, decided once per process: AVX-512 where the CPU has it,
// else AVX2 + FMA (the build's baseline). TINYTORCH_ISA=avx2 forces the AVX2 kernels on an
// AVX-512 machine, so the tests can check both paths on one machine.
//
// Every kernel family with ISA variants dispatches the same way: each ISA file
// (src/kernels/<family>/avx2.cpp, avx512.cpp) builds a table of its kernels, and the family takes
// one table for the whole process through isa_table() on first use.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

enum class Isa { Avx2, Avx512 };

Isa cpu_isa();
// Whether the CPU itself has AVX-512F, whatever TINYTORCH_ISA says.
bool cpu_has_avx512();
const char* isa_name(Isa isa);

// The L1 data cache's ways (its associativity), read once from Linux's description of cpu0's
// caches (/sys/devices/system/cpu/cpu0/cache); 8 where that cannot be read. The GEMM tiles keep no
// more rows that fall in one L1 set than this (gemm/tile.hpp, tile_height). set_l1d_ways changes
// it for the process, so the tests reach every tile height on one machine; 0 reads it again.
int l1d_ways();
void set_l1d_ways(int ways);
// The L2 cache's bytes (one core's), read the same way; 1 MiB where that cannot be read.
int64_t l2_bytes();
// The L3 cache's bytes (shared by the cores), read the same way; 0 where that cannot be read.
int64_t l3_bytes();

// Why cpu_isa() is what it is ("the CPU has AVX-512", "TINYTORCH_ISA=avx2 holds AVX-512 back", ...).
const char* isa_reason();
// With TINYTORCH_VERBOSE=1, says on stderr that `family` runs `what` and why (isa_reason()).
void log_isa_choice(const char* family, const char* what);

// The table of cpu_isa()'s kernels, of the two a family's ISA files provide. Call it once and keep
// the result (a function-local static): the choice is made once per process.
template <class Table>
const Table& isa_table(const char* family, const Table& (*avx2)(), const Table& (*avx512)()) {
  const bool wide = cpu_isa() == Isa::Avx512;
  log_isa_choice(family, wide ? "avx512" : "avx2");
  return wide ? avx512() : avx2();
}

}  // namespace tinytorch::kernels

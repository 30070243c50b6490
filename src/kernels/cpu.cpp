#include "kernels/cpu.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

namespace {
// A cache of cpu0 as /sys/devices/system/cpu/cpu0/cache/index<i> describes it: its ways and
// bytes, zeros where none of that level and type is described.
struct CacheInfo {
  int ways = 0;
  int64_t bytes = 0;
};

CacheInfo read_cache(int wanted_level, const std::string& wanted_type) {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level_file(dir + "level"), type_file(dir + "type");
    int level = 0;
    std::string type;
    if (!(level_file >> level) || !(type_file >> type)) break;
    if (level != wanted_level || type != wanted_type) continue;
    std::ifstream ways_file(dir + "ways_of_associativity"), size_file(dir + "size");
    CacheInfo info;
    int64_t size = 0;
    std::string unit;  // "2048K"
    if (!(ways_file >> info.ways)) info.ways = 0;
    if (size_file >> size) {
      size_file >> unit;
      info.bytes = size * (unit == "K" ? 1024 : unit == "M" ? 1024 * 1024 : 1);
    }
    return info;
  }
  return {};
}

std::atomic<int> l1d_ways_set{0};
}  // namespace

int l1d_ways() {
  static const int read = [] {
    const int ways = read_cache(1, "Data").ways;
    return ways > 0 ? ways : 8;
  }();
  const int set = l1d_ways_set.load(std::memory_order_relaxed);
  return set > 0 ? set : read;
}

void set_l1d_ways(int ways) { l1d_ways_set.store(ways, std::memory_order_relaxed); }

int64_t l2_bytes() {
  static const int64_t bytes = [] {
    const int64_t b = read_cache(2, "Unified").bytes;
    return b > 0 ? b : int64_t{1} << 20;
  }();
  return bytes;
}

int64_t l3_bytes() {
  static const int64_t bytes = read_cache(3, "Unified").bytes;
  return bytes;
}

void log_isa_choice(const char* family, const char* what) {
  if (verbose_enabled()) verbose_log(std::string(family) + ": " + what + " (" + isa_reason() + ")");
}

}  // namespace tinytorch::kernels

// std::min, std::max, std::clamp and std::fill_n for the code compiled into the ISA files, without the
// template instances that std's versions would share with other translation units (see
// ARCHITECTURE.md, "ISA"). Internal linkage.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinytorch::kernels {
namespace {

constexpr int64_t lesser(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t greater(int64_t a, int64_t b) { return a < b ? b : a; }
constexpr int64_t clamp_to(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }
inline void zero_floats(float* p, int64_t n) {
  if (n > 0) __builtin_memset(p, 0, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace
}  // namespace tinytorch::kernels

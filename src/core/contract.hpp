// Preconditions as code. TT_EXPECTS(condition) states a kernel's contract (tile sizes, split
// bounds, slack) where the kernel trusts its caller: in builds with TINYTORCH_ASSERTS (every Debug
// build, and -DTINYTORCH_ASSERTS=ON, which CI's sanitizer build uses) a broken contract prints the
// condition and its place and aborts; elsewhere it compiles to nothing, so kernels stay free of
// checks in the release build. Input errors are not contracts: the ops check those once and throw.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace tinytorch {

[[noreturn]] inline void contract_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "tinytorch: contract broken at %s:%d: %s\n", file, line, condition);
  std::abort();
}

#if defined(TINYTORCH_ASSERTS)
inline constexpr bool kContractsChecked = true;
#define TT_EXPECTS(condition) \
  ((condition) ? static_cast<void>(0) : ::tinytorch::contract_failed(#condition, __FILE__, __LINE__))
#else
inline constexpr bool kContractsChecked = false;
#define TT_EXPECTS(condition) static_cast<void>(0)
#endif

}  // namespace tinytorch

// Reading tinytorch's numeric environment variables (TINYTORCH_SERIAL_WORK,
// TINYTORCH_WEIGHT_CACHE_MB): one rule for all of them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>

namespace tinytorch {

// The variable's value when it is a whole decimal number from 0 to `most`; nothing when it is
// unset, empty or anything else (then the caller's default applies, as documented).
inline std::optional<int64_t> env_count(const char* name, int64_t most = INT64_MAX) {
  const char* text = std::getenv(name);
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < 0 || value > most) return std::nullopt;
  return static_cast<int64_t>(value);
}

}  // namespace tinytorch

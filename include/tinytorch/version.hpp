#pragma once

namespace tinytorch {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace tinytorch

// Placeholders for algorithms not written yet; supports() never selects them.
#include <cstdlib>

#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
void conv2d_direct(float*, const float*, const float*, const float*, const Conv2dGeometry&) { std::abort(); }
int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry&) { return 0; }
}  // namespace tinytorch::ops

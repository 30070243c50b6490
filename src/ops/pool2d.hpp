// The pooling geometry max_pool2d and avg_pool2d use (pool2d.cpp), for the blocked layout's pools.
#pragma once

#include <optional>

#include "kernels/pool2d.hpp"
#include "tinytorch/functional.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch::ops {

// Checks the options and input [N, C, H, W] and computes PyTorch's output size; ShapeError or
// ArgumentError naming `op` otherwise.
kernels::Pool2dGeometry pool2d_geometry(const char* op, const Shape& input, Size2 kernel, std::optional<Size2> stride,
                                        Size2 padding, Size2 dilation, bool ceil_mode);

}  // namespace tinytorch::ops

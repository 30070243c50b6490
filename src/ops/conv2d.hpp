// conv2d op internals shared with the kernels' tests and (later) autograd and algorithm choice.
#pragma once

#include "kernels/conv2d.hpp"
#include "tinytorch/functional.hpp"

namespace tinytorch::ops {

// Validates input [N, C, H, W], weight [OC, C/groups, KH, KW] and bias [OC] against the options
// and returns the call's geometry. Throws ShapeError with the seed's wording where it has one.
kernels::Conv2dGeometry conv2d_geometry(const Shape& input, const Shape& weight, const Tensor& bias,
                                        const Conv2dOptions& options);

}  // namespace tinytorch::ops

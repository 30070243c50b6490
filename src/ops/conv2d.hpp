// conv2d op internals shared with the kernels' tests and (later) autograd and algorithm choice.
#pragma once

#include "kernels/activation.hpp"
#include "kernels/conv2d.hpp"
#include "tinytorch/functional.hpp"

namespace tinytorch::ops {

// Validates input [N, C, H, W], weight [OC, C/groups, KH, KW] and bias [OC] against the options
// and returns the call's geometry. Throws ShapeError with the seed's wording where it has one.
kernels::Conv2dGeometry conv2d_geometry(const Shape& input, const Shape& weight, const Tensor& bias,
                                        const Conv2dOptions& options);

// conv2d for inference (no autograd node) with a fused output stage: out = epilogue(conv + bias +
// residual), applied by each work item to the outputs it finished. input [N, C, H, W]; residual
// undefined or of the output's shape (any dtype and strides: taken dense float32).
Tensor conv2d_fused(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                    const kernels::Epilogue& epilogue, const Tensor& residual);

// Runs the forward convolution on a validated geometry with the algorithm conv2d would choose.
void conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                    const kernels::Conv2dGeometry& g);

// The gradients (src/ops/conv2d_backward.cpp). dy [N, OC, OH, OW]; each writes its whole output.
void conv2d_backward_input(float* dx, const float* dy, const float* weight, const kernels::Conv2dGeometry& g);
void conv2d_backward_weight(float* dw, const float* dy, const float* in, const kernels::Conv2dGeometry& g);
void conv2d_backward_bias(float* db, const float* dy, const kernels::Conv2dGeometry& g);
// Whether conv2d_backward_weight runs the shape on our micro-kernels (not lanes, not OpenBLAS).
bool conv2d_backward_weight_on_tiles(const kernels::Conv2dGeometry& g);

}  // namespace tinytorch::ops

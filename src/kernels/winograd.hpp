// Winograd F(4x4, 3x3) transforms (Lavin & Gray 2016): a 4x4 output tile from a 6x6 input tile
// with 36 multiplies per channel pair instead of 144. Pure functions; vectorized across `lanes`
// tiles at a time (the lanes of a packed-B panel, see gemm_packed.hpp; lanes is 16 or 32). The
// reference for the whole algorithm is conv2d_forward_reference.
//
//   U = G g G^T  (weight, 3x3 -> 6x6)    V = B^T d B  (input tile, 6x6)
//   Y = A^T (U . V) A  (6x6 -> 4x4), summed over input channels by the GEMMs in between.
#pragma once

#include <cstdint>

#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

// Whether the kernels below apply: 3x3, stride 1, dilation 1, one group, padding at most 1 on
// every side, and a panel's input patches addressable with 32-bit offsets (the gathers' index
// width): under 2^31 floats across the images one panel of tiles touches.
bool winograd_f43_supports(const Conv2dGeometry& g);

// Output channels [oc0, oc0 + mr) of weight [OC, C, 3, 3] -> their packed-A panels (see
// gemm_packed.hpp) of the 36 matrices U[xi] [OC, C]: u + xi * xi_stride is U[xi]'s packed matrix,
// and this fills panel oc0 / mr, [C][mr], zero rows past OC. xi = 6 * row + col of the 6x6.
void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr);

// Input tiles [t0, t0 + lanes) of the N x TH x TW tile grid (tile t covers input rows
// 4*th - pad_top .. +5 and columns 4*tw - pad_left .. +5; zeros outside) for every channel:
// in [N, C, H, W] -> v [36][C][lanes], the packed-B panel of each xi. Tiles past the grid are 0.
void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes);

// m [36][rows][lanes] (the GEMM results for output channels oc0 .. oc0 + rows) -> the 4x4 output
// tiles of tiles t0 .. t0 + lanes in out [N, OC, OH, OW], plus bias, clipped at the edges.
void winograd_f43_output_transform(float* out, const float* m, const float* bias, const Conv2dGeometry& g, int64_t oc0,
                                   int rows, int64_t t0, int lanes);

}  // namespace tinytorch::kernels

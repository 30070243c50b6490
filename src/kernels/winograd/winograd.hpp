// Winograd transforms for 3x3 layers, two schemes:
// - stride 1: F(4x4, 3x3) (Lavin & Gray 2016), a 4x4 output tile from a 6x6 input tile with 36
//   multiplies per channel pair instead of 144;
// - stride 2: a 2x2 output tile from a 5x5 input tile with 25 multiplies instead of 36 (below). Pure functions;
// vectorized across `lanes` tiles at a time (the lanes of a packed-B panel, see gemm_packed.hpp; lanes is 16 or 32).
// The reference for the whole algorithm is conv2d_forward_reference.
//
//   U = G g G^T  (weight, 3x3 -> 6x6)    V = B^T d B  (input tile, 6x6)
//   Y = A^T (U . V) A  (6x6 -> 4x4), summed over input channels by the GEMMs in between.
#pragma once

#include <algorithm>
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
// in [N, C, H, W] -> v: the packed-B panel [C][lanes] of each xi, at v + xi * winograd_v_stride.
// Tiles past the grid are 0.
void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes);

// m [36][rows][lanes], point xi's matrix at m + xi * xs (the GEMM results for output channels
// oc0 .. oc0 + rows) -> the 4x4 output tiles of tiles t0 .. t0 + lanes in out [N, OC, OH, OW], plus
// bias, clipped at the edges.
void winograd_f43_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                   int64_t oc0, int rows, int64_t t0, int lanes);

// Floats from one point's packed-B panel [C][lanes] to the next in the input transforms' v: one
// cache line more than the panel, so that the 25-36 rows a channel writes (one per point) do not
// all fall in one L1 set (with C * lanes a multiple of 1024 they did, and evicted each other).
// (Internal linkage: the ISA files call it too, see ARCHITECTURE.md, "ISA".)
static constexpr int64_t winograd_v_stride(int64_t C, int lanes) { return C * lanes + 16; }

// Tiles of a layer (N x TH x TW) in each scheme.
int64_t winograd_f43_tiles(const Conv2dGeometry& g);
int64_t winograd_s2_tiles(const Conv2dGeometry& g);

// Stride 2. A 3x3 stride-2 convolution splits by the parity of the input index: along one
// dimension, outputs y0, y1 of a tile read inputs x0..x4 as
//   y_i = (w0 x_2i + w2 x_2i+2) + w1 x_2i+1,
// a stride-1 2-tap convolution of the even inputs plus a 1-tap one of the odd inputs. The first is
// Winograd F(2, 2) on points (0, -1, inf): y0 = m0 + m1, y1 = m1 + m2 with m0 = (x0 - x2) w0,
// m1 = x2 (w0 + w2), m2 = (x4 - x2) w2; the second needs a product per output: m3 = x1 w1,
// m4 = x3 w1. So per dimension
//   B^T x = (x0 - x2, x2, x4 - x2, x1, x3),  G w = (w0, w0 + w2, w2, w1, w1),
//   A^T m = (m0 + m1 + m3, m1 + m2 + m4),
// and in 2D Y = A^T [(G w G^T) . (B^T d B)] A over a 5x5 patch: 25 products for 4 outputs where
// direct convolution takes 36. Every coefficient is 0 or +-1 and each output only meets inputs of
// its own 3x3 window: the rounding error stays that of a direct sum of a few more terms.
// Points 3 and 4 share their weight row, so U has 16 distinct matrices: point xi = 5 * i + j of
// the 5x5 uses U[winograd_s2_u_index(xi)].
bool winograd_s2_supports(const Conv2dGeometry& g);  // 3x3, stride 2, dilation 1, groups 1 (any padding)
inline int winograd_s2_u_index(int xi) { return std::min(xi / 5, 3) * 4 + std::min(xi % 5, 3); }

// Output channels [oc0, oc0 + mr) -> their packed-A panels of the 16 matrices U[x] [OC, C]
// (u + x * xi_stride), as winograd_f43_weight_transform.
void winograd_s2_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                  int mr);
// Input tiles [t0, t0 + lanes) of the N x TH x TW grid (tile t covers input rows 4*th - pad_top ..
// +4 and columns 4*tw - pad_left .. +4) -> v, 25 panels [C][lanes] winograd_v_stride apart; output:
// m [25][rows][lanes], point xi's matrix at m + xi * xs -> the 2x2 tiles, plus bias, clipped at the
// edges. As the F(4x4, 3x3) functions.
void winograd_s2_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes);
void winograd_s2_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                  int64_t oc0, int rows, int64_t t0, int lanes);

}  // namespace tinytorch::kernels

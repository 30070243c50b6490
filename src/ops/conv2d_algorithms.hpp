// The convolution algorithms behind conv2d: each splits its work over threads (parallel_for),
// takes scratch from the per-thread workspace and calls pure kernels. All share one signature:
// out [N, OC, OH, OW]; in [N, C, H, W]; weight [OC, C/groups, KH, KW]; bias [OC] or nullptr.
#pragma once

#include <cstdint>

#include "kernels/conv2d.hpp"

namespace tinytorch::ops {

using kernels::Conv2dGeometry;

void conv2d_im2col_gemm(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);
void conv2d_gemm1x1(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);
void conv2d_packed(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);
void conv2d_winograd(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);
void conv2d_depthwise(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);
void conv2d_direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g);

// Per-thread workspace bytes each algorithm asks for on this geometry.
int64_t conv2d_im2col_workspace_bytes(const Conv2dGeometry& g);
int64_t conv2d_packed_workspace_bytes(const Conv2dGeometry& g);  // per thread
int64_t conv2d_packed_shared_bytes(const Conv2dGeometry& g);     // the packed weights
int64_t conv2d_winograd_workspace_bytes(const Conv2dGeometry& g);  // per thread
int64_t conv2d_winograd_shared_bytes(const Conv2dGeometry& g);     // the transformed weights
int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry& g);  // per thread
int64_t conv2d_direct_shared_bytes(const Conv2dGeometry& g);     // packed weights, padded input
// Whether conv2d_direct reads the input in place (1x1, stride 1, no padding, whole pixel tiles):
// then it copies nothing but the weight.
bool conv2d_direct_reads_in_place(const Conv2dGeometry& g);

// Whether a kernel writing the whole output in one pass should stream it (kernels::Store::Stream):
// from 16 MiB on, the output cannot stay in this machine's caches for the next layer anyway, and
// non-temporal stores skip reading every line before writing it (measured, 8x64x56x56 -> 256 1x1:
// 1.82 -> 1.68 ms; 8x32x112x112 -> 64 1x1: 1.65 -> 1.08 ms).
inline bool stream_output(const Conv2dGeometry& g) { return g.N * g.OC * g.OH * g.OW * 4 >= (int64_t{16} << 20); }

// Adds bias[oc] to each of the `count` values of rows [oc0, oc0 + rows) of a [OC, ld] block.
void add_bias_rows(float* out, const float* bias, int64_t rows, int64_t count, int64_t ld);

}  // namespace tinytorch::ops

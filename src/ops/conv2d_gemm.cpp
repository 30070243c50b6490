// The GEMM convolutions: im2col + sgemm for any shape, and sgemm straight on the input for 1x1;
// and the depthwise convolution, which has no GEMM in it (its kernel: kernels/conv2d_depthwise.cpp).
//
// Per image n and group g:  out[n, g] [OCG, P] = weight[g] [OCG, K] x col [K, P],
// K = CG*KH*KW, P = OH*OW. The GEMM writes NCHW directly: no permute afterwards.
// Work items are (n, g, block of P); the block size depends on the shape only, never on the
// thread count, so every output element is computed the same way on any number of threads.
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blas.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
namespace {

constexpr int64_t kColBlockBytes = 512 * 1024;  // an im2col block about the size of L2

// Columns per block: the whole image when its columns fit in kColBlockBytes, else a multiple of
// 16 that fits; and at least 4 items in all when the image is big enough to split.
int64_t pixel_block(const Conv2dGeometry& g, int64_t K) {
  const int64_t P = g.OH * g.OW;
  int64_t pb = std::max<int64_t>(64, kColBlockBytes / 4 / K / 16 * 16);
  const int64_t images = g.N * g.groups;
  if (images < 4 && P >= 256) pb = std::min(pb, ((P + 3) / 4 + 15) / 16 * 16);
  return std::min(pb, P);
}

}  // namespace

void add_bias_rows(float* out, const float* bias, int64_t rows, int64_t count, int64_t ld) {
  if (!bias) return;
  for (int64_t r = 0; r < rows; ++r) {
    const float b = bias[r];
    float* row = out + r * ld;
    for (int64_t i = 0; i < count; ++i) row[i] += b;
  }
}

int64_t conv2d_im2col_workspace_bytes(const Conv2dGeometry& g) {
  const int64_t K = g.channels_per_group() * g.KH * g.KW;
  return K * pixel_block(g, K) * 4;
}

void conv2d_im2col_gemm(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const int64_t pb = pixel_block(g, K), blocks = (P + pb - 1) / pb;
  const int64_t ws_bytes = conv2d_im2col_workspace_bytes(g);
  parallel_for(
      g.N * g.groups * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / (g.groups * blocks), grp = item / blocks % g.groups, blk = item % blocks;
        const int64_t p0 = blk * pb, np = std::min(pb, P - p0);
        float* col = workspace(static_cast<size_t>(ws_bytes));  // [K, np]
        kernels::im2col_block(col, in + (n * g.C + grp * CG) * g.H * g.W, g, p0, np);
        float* dst = out + (n * g.OC + grp * OCG) * P + p0;  // [OCG, np] inside [OC, P]
        kernels::sgemm(false, false, OCG, np, K, 1.0f, weight + grp * OCG * K, K, col, np, 0.0f, dst, P);
        add_bias_rows(dst, bias ? bias + grp * OCG : nullptr, OCG, np, P);
      },
      g.flops());
}

bool conv2d_gemm1x1_supports(const Conv2dGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}

void conv2d_gemm1x1(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  // 1x1, stride 1, no padding: the input image [CG, H*W] already is the column matrix.
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t P = g.OH * g.OW;
  const int64_t pb = pixel_block(g, CG), blocks = (P + pb - 1) / pb;
  parallel_for(
      g.N * g.groups * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / (g.groups * blocks), grp = item / blocks % g.groups, blk = item % blocks;
        const int64_t p0 = blk * pb, np = std::min(pb, P - p0);
        const float* src = in + (n * g.C + grp * CG) * P + p0;  // [CG, np] inside [C, P]
        float* dst = out + (n * g.OC + grp * OCG) * P + p0;     // [OCG, np] inside [OC, P]
        kernels::sgemm(false, false, OCG, np, CG, 1.0f, weight + grp * OCG * CG, CG, src, P, 0.0f, dst, P);
        add_bias_rows(dst, bias ? bias + grp * OCG : nullptr, OCG, np, P);
      },
      g.flops());
}

bool conv2d_depthwise_supports(const Conv2dGeometry& g) { return g.groups == g.C && g.groups > 1; }

int64_t conv2d_depthwise_workspace_bytes(const Conv2dGeometry& g) {
  return kernels::depthwise_padded_plane_floats(g) * 4;
}

void conv2d_depthwise(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  // groups == C: output channel oc reads input channel oc / (OC / C) only. One item per plane.
  const int64_t multiplier = g.OC / g.C, P = g.OH * g.OW;
  const size_t scratch = static_cast<size_t>(kernels::depthwise_padded_plane_floats(g)) * sizeof(float);
  parallel_for(
      g.N * g.OC,
      [&](int64_t item, int) {
        const int64_t n = item / g.OC, oc = item % g.OC, c = oc / multiplier;
        kernels::conv2d_depthwise_plane(out + item * P, in + (n * g.C + c) * g.H * g.W, weight + oc * g.KH * g.KW,
                                        bias ? bias[oc] : 0.0f, workspace(scratch), g);
      },
      2 * g.N * g.OC * g.OH * g.OW * g.KH * g.KW);
}

}  // namespace tinytorch::ops

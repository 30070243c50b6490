// The GEMM convolutions: im2col + sgemm for any shape, and sgemm straight on the input for 1x1;
// and the depthwise convolution, which has no GEMM in it (its kernel: kernels/depthwise/).
//
// Per image n and group g:  out[n, g] [OCG, P] = weight[g] [OCG, K] x col [K, P],
// K = CG*KH*KW, P = OH*OW. The GEMM writes NCHW directly: no permute afterwards.
// Work items are (n, g, block of P); the block size depends on the shape only, never on the
// thread count, so every output element is computed the same way on any number of threads.
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blas.hpp"
#include "kernels/gemm/gemm_packed.hpp"
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

void conv2d_im2col_gemm(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                        const OutputStage& stage) {
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
        apply_stage(out, stage, g, grp * OCG, (grp + 1) * OCG, n * P + p0, n * P + p0 + np);
      },
      conv2d_work(g));
}

bool conv2d_gemm1x1_supports(const Conv2dGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}

void conv2d_gemm1x1(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage) {
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
        apply_stage(out, stage, g, grp * OCG, (grp + 1) * OCG, n * P + p0, n * P + p0 + np);
      },
      conv2d_work(g));
}

// --- batched: the patches of all images as the rows of one GEMM ---------------------------------
// Per group: out^T [N*P, OCG] = patches [N*P, K] x weight[g]^T, then each row (n, p) is scattered
// to out[n, g*OCG .., p]. An image of P pixels is only P columns of a GEMM in the per-image forms,
// and for the small images of late layers (7x7, 1x1 in squeeze-excitation blocks) P is far below
// a GEMM's efficient width, so the weight is streamed once per image for little work; here it is
// streamed once per row block of all images. Work items are blocks of rows (pixels of all images)
// times blocks of output channels, both sized from the shape only.

namespace {

constexpr int64_t kBatchedRowBytes = 256 * 1024;  // a block's patches: half of L2

struct BatchedBlocks {
  int64_t rows, row_blocks, cols, col_blocks;  // rows (pixels) and output channels per item, and counts
};

BatchedBlocks batched_blocks(const Conv2dGeometry& g) {
  const int64_t K = g.channels_per_group() * g.KH * g.KW, OCG = g.out_channels_per_group(), R = g.N * g.OH * g.OW;
  BatchedBlocks b{};
  // Blocks of equal size (multiples of 16 where there are that many rows), their patches within
  // kBatchedRowBytes.
  const int64_t most = std::max<int64_t>(16, kBatchedRowBytes / (4 * K) / 16 * 16);
  b.row_blocks = (R + most - 1) / most;
  b.rows = std::min(R, ((R + b.row_blocks - 1) / b.row_blocks + 15) / 16 * 16);
  b.row_blocks = (R + b.rows - 1) / b.rows;
  // Fewer than 4 items of rows across all groups: split the output channels too (in multiples of 16).
  const int64_t want = std::max<int64_t>(1, (4 + b.row_blocks * g.groups - 1) / (b.row_blocks * g.groups));
  b.cols = std::min(OCG, ((OCG + want - 1) / want + 15) / 16 * 16);
  b.col_blocks = (OCG + b.cols - 1) / b.cols;
  return b;
}

// out[r, oc] += bias[oc] for a [rows, cols] block of leading dimension ld.
void add_bias_rows_t(float* out, const float* bias, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t oc = 0; oc < cols; ++oc) out[r * ld + oc] += bias[oc];
}

}  // namespace

int64_t conv2d_batched_workspace_bytes(const Conv2dGeometry& g) {
  const BatchedBlocks b = batched_blocks(g);
  return b.rows * (g.channels_per_group() * g.KH * g.KW + b.cols) * 4;
}

// one_row_gemv: a block of one row (one pixel of one image), or of up to kDotRowsBatch images of a
// whole-window layer (squeeze-excitation layers and classifiers written as convolutions, at batch
// 1 to 8), runs as dot products of the rows with the weight read once as it lies (kernels/gemm/
// dot.hpp); sgemm would first copy it into packed panels, each used for those few rows. Measured
// (2 threads, Xeon model 207, docs/PERFORMANCE.md "Dot products of a few rows"): 240 -> 960 on 1x1
// maps at batch 1 / 4 / 8 in 22 / 31 / 51 us, ONNX Runtime 24 / 56 / 81.
void conv2d_batched(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group(), K = CG * g.KH * g.KW;
  const int64_t P = g.OH * g.OW, R = g.N * P;
  const BatchedBlocks b = batched_blocks(g);
  const size_t scratch = static_cast<size_t>(conv2d_batched_workspace_bytes(g));
  // One window that is the whole input, in the weight's order (squeeze-excitation 1x1 layers on
  // 1x1 maps, classifiers written as convolutions): image n's patch is its input as it lies and
  // its outputs are a row of out, so the GEMM reads and writes them in place.
  const bool whole = P == 1 && g.KH == g.H && g.KW == g.W && g.pad_top == 0 && g.pad_left == 0 && g.dilation_h == 1 &&
                     g.dilation_w == 1;
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
                         g.pad_left == 0 && g.OH == g.H && g.OW == g.W;
  parallel_for(
      g.groups * b.row_blocks * b.col_blocks,
      [&](int64_t item, int) {
        const int64_t grp = item / (b.row_blocks * b.col_blocks), r0 = item / b.col_blocks % b.row_blocks * b.rows;
        const int64_t c0 = item % b.col_blocks * b.cols, rows = std::min(b.rows, R - r0);
        const int64_t cols = std::min(b.cols, OCG - c0), oc0 = grp * OCG + c0;
        const float* w = weight + oc0 * K;
        if (whole) {
          float* dst = out + r0 * g.OC + oc0;  // rows are images
          const float* x = in + (r0 * g.C + grp * CG) * g.H * g.W;
          if (rows <= kernels::kDotRowsBatch) {  // (one_row_gemv)
            kernels::dot_rows(cols, K, w, K, x, g.C * g.H * g.W, rows, dst, g.OC);
          } else {
            kernels::sgemm(false, true, rows, cols, K, 1.0f, x, g.C * g.H * g.W, w, K, 0.0f, dst, g.OC);
          }
          if (bias) add_bias_rows_t(dst, bias + oc0, rows, cols, g.OC);
          for (int64_t r = 0; r < rows; ++r) stage.apply(out, (r0 + r) * g.OC + oc0, cols);  // rows are images
          return;
        }
        float* patches = workspace(scratch);   // [K, rows]: tap k of every row's pixel, then the result
        float* result = patches + b.rows * K;  // [rows, cols]
        // Image by image (the block's rows are pixels of consecutive images), tap by tap: each run
        // reads one input plane.
        for (int64_t r = 0; r < rows;) {
          const int64_t n = (r0 + r) / P, p0 = (r0 + r) % P, count = std::min(rows - r, P - p0);
          const float* image = in + (n * g.C + grp * CG) * g.H * g.W;
          float* dst = patches + r;  // row k of patches for tap k = (c, kh, kw), in that order
          for (int64_t c = 0; c < CG; ++c) {
            const float* plane = image + c * g.H * g.W;
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              for (int64_t kw = 0; kw < g.KW; ++kw, dst += rows) {
                const int64_t dh = kh * g.dilation_h - g.pad_top, dw = kw * g.dilation_w - g.pad_left;
                if (pointwise) {  // the tap's pixels are the plane's, as they lie
                  std::copy_n(plane + p0, count, dst);
                  continue;
                }
                int64_t oh = p0 / g.OW, ow = p0 % g.OW;
                for (int64_t i = 0; i < count; ++i) {
                  const int64_t ih = oh * g.stride_h + dh, iw = ow * g.stride_w + dw;
                  dst[i] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? plane[ih * g.W + iw] : 0.0f;
                  if (++ow == g.OW) ow = 0, ++oh;
                }
              }
            }
          }
          r += count;
        }
        if (rows == 1) {  // (one_row_gemv)
          kernels::dot_rows(cols, K, w, K, patches, K, 1, result, cols);
        } else {
          kernels::sgemm(true, true, rows, cols, K, 1.0f, patches, rows, w, K, 0.0f, result, cols);
        }
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = (r0 + r) / P, p = (r0 + r) % P;
          float* dst = out + (n * g.OC + oc0) * P + p;
          const float* src = result + r * cols;
          for (int64_t oc = 0; oc < cols; ++oc) dst[oc * P] = src[oc] + (bias ? bias[oc0 + oc] : 0.0f);
        }
        apply_stage(out, stage, g, oc0, oc0 + cols, r0, r0 + rows);
      },
      conv2d_work(g));
}

bool conv2d_depthwise_supports(const Conv2dGeometry& g) { return g.groups == g.C && g.groups > 1; }

namespace {
constexpr int64_t kBandBytes = 256 * 1024;  // a band's interleaved input and output: half of L2
}  // namespace

// Output rows per band of the channel-blocked kernel: its input and output within kBandBytes, and at
// least four items in all when the image has the rows. From the shape and the ISA only, never
// the thread count.
int64_t conv2d_depthwise_band_rows(const Conv2dGeometry& g) {
  const int64_t L = kernels::depthwise_block_lanes();
  const int64_t cols = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  // band rows take (span + (band - 1) * stride_h) input rows of cols pixels and band * OW outputs
  const int64_t span = (g.KH - 1) * g.dilation_h + 1, pixel_bytes = L * 4;
  const int64_t fixed = (span - g.stride_h) * cols * pixel_bytes, per_row = (g.stride_h * cols + g.OW) * pixel_bytes;
  int64_t band = kBandBytes > fixed ? (kBandBytes - fixed) / per_row : 1;
  const int64_t blocks = g.N * ((g.OC + L - 1) / L);
  if (blocks < 4) {
    const int64_t bands = (4 + blocks - 1) / blocks;
    band = std::min(band, (g.OH + bands - 1) / bands);
  }
  return std::clamp<int64_t>(band, 1, g.OH);
}

int64_t conv2d_depthwise_workspace_bytes(const Conv2dGeometry& g) {
  return kernels::depthwise_block_scratch_floats(g, conv2d_depthwise_band_rows(g)) * 4;
}

void conv2d_depthwise(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                      const OutputStage& stage) {
  // Its work for parallel_for: each input and output float is streamed three times (copied into
  // the interleaved band, read or written there, copied back), twice more than conv2d_work counts:
  // 192 channels at 28x28, 3x3, ran 78 us on one thread (35 GFLOP/s) where a GEMM of its FLOPs
  // takes 15, and 2 threads halved it, but its multiply-adds alone were under the serial line.
  const int64_t P = g.OH * g.OW;
  const int64_t work = conv2d_work(g) + 2 * kStreamedFloatWork * g.N * (g.C * g.H * g.W + g.OC * P);
  const size_t scratch = static_cast<size_t>(conv2d_depthwise_workspace_bytes(g));
  // Items (n, block of lanes output channels, band of output rows).
  const int64_t L = kernels::depthwise_block_lanes(), blocks = (g.OC + L - 1) / L;
  const int64_t band = conv2d_depthwise_band_rows(g), bands = (g.OH + band - 1) / band;
  parallel_for(
      g.N * blocks * bands,
      [&](int64_t item, int) {
        const int64_t n = item / (blocks * bands), block = item / bands % blocks, oh0 = item % bands * band;
        const int64_t oh1 = std::min(g.OH, oh0 + band);
        kernels::conv2d_depthwise_block(out + n * g.OC * P, in + n * g.C * g.H * g.W, weight, bias, block * L, oh0, oh1,
                                        workspace(scratch), g);
        apply_stage(out, stage, g, block * L, std::min(g.OC, (block + 1) * L), n * P + oh0 * g.OW, n * P + oh1 * g.OW);
      },
      work);
}

}  // namespace tinytorch::ops

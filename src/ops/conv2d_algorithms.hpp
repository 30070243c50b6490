// The convolution algorithms behind conv2d: each splits its work over threads (parallel_for),
// takes scratch from the per-thread workspace and calls pure kernels. All share one signature:
// out [N, OC, OH, OW]; in [N, C, H, W]; weight [OC, C/groups, KH, KW]; bias [OC] or nullptr;
// stage: what the output store also does (kernels::OutputStage; empty outside the graph runtime),
// applied by each work item to the outputs it finished.
//
// Each algorithm is one row of the table in conv2d_table.cpp: its name, which shapes it supports,
// how it runs, the workspace it needs and whether autotuning may try it. The op (conv2d.cpp), the
// selection (conv2d_select.cpp) and the public settings (conv2d_settings.cpp) read only the table.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/activation.hpp"
#include "kernels/conv2d.hpp"
#include "tinytorch/backends.hpp"

namespace tinytorch::ops {

using kernels::Conv2dGeometry;

using kernels::OutputStage;

using Conv2dRun = void (*)(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                           const OutputStage& stage);

struct Conv2dAlgorithmRow {
  Conv2dAlgorithm id;
  const char* name;                                     // as users write it (--conv-algo, TINYTORCH_CONV_ALGO)
  bool (*supports)(const Conv2dGeometry& g);            // on a validated geometry
  Conv2dRun run;                                        // only where supports() holds
  int64_t (*workspace_bytes)(const Conv2dGeometry& g);  // per-thread scratch plus shared (prepared weights)
  bool autotune;                                        // whether autotuning may time it
};

// A convolution's work for parallel_for's thread decision: its multiply-adds, and every float of
// its input, weight and output streamed once (kStreamedFloatWork each). A layer of few FLOPs per
// float (few pixels per weight, few channels per pixel) takes longer than its FLOPs say:
// 8 x 240 -> 960 on 1x1 maps (3.7 MFLOP, a matrix of weights read for 8 rows) ran 0.095 ms on one
// thread and 0.054 on two, 832 -> 48 at 7x7 0.067 and 0.045.
int64_t conv2d_work(const Conv2dGeometry& g);

// Every concrete algorithm (not Auto), in the order of the Conv2dAlgorithm enum.
const std::vector<Conv2dAlgorithmRow>& conv2d_algorithm_table();
// The row of a concrete algorithm (asserts it is one).
const Conv2dAlgorithmRow& conv2d_algorithm_row(Conv2dAlgorithm algorithm);

// The shapes each algorithm takes (defined in its own file).
bool conv2d_gemm1x1_supports(const Conv2dGeometry& g);    // 1x1, stride 1, no padding
bool conv2d_depthwise_supports(const Conv2dGeometry& g);  // groups == C > 1
bool conv2d_winograd_supports(const Conv2dGeometry& g);   // 3x3, dilation 1, groups 1 (see winograd.hpp)
bool conv2d_direct_supports(const Conv2dGeometry& g);     // any shape
bool conv2d_blocked_supports(const Conv2dGeometry& g);    // groups 1

void conv2d_im2col_gemm(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                        const OutputStage& stage);
void conv2d_gemm1x1(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage);
void conv2d_packed(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                   const OutputStage& stage);
void conv2d_winograd(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                     const OutputStage& stage);
void conv2d_depthwise(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                      const OutputStage& stage);
void conv2d_direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                   const OutputStage& stage);
void conv2d_batched(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage);
void conv2d_ocblock(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage);
void conv2d_blocked_plain(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                          const OutputStage& stage);  // conv2d_blocked.cpp

// Per-thread workspace bytes each algorithm asks for on this geometry.
int64_t conv2d_im2col_workspace_bytes(const Conv2dGeometry& g);
int64_t conv2d_packed_workspace_bytes(const Conv2dGeometry& g);     // per thread
int64_t conv2d_packed_shared_bytes(const Conv2dGeometry& g);        // the packed weights
int64_t conv2d_winograd_workspace_bytes(const Conv2dGeometry& g);   // per thread
int64_t conv2d_winograd_shared_bytes(const Conv2dGeometry& g);      // the transformed weights
int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry& g);     // per thread
int64_t conv2d_direct_shared_bytes(const Conv2dGeometry& g);        // packed weights, padded input
int64_t conv2d_depthwise_workspace_bytes(const Conv2dGeometry& g);  // per thread: padded input, output band
// Output rows per band of the depthwise kernels (forward and weight gradient).
int64_t conv2d_depthwise_band_rows(const Conv2dGeometry& g);
int64_t conv2d_batched_workspace_bytes(const Conv2dGeometry& g);  // per thread: patches and GEMM result
int64_t conv2d_ocblock_workspace_bytes(const Conv2dGeometry& g);  // padded windows, tap offsets, accumulators
int64_t conv2d_blocked_workspace_bytes(const Conv2dGeometry& g);  // packed weights, blocked input and output
// Whether conv2d_direct reads the input in place (1x1, stride 1, no padding, whole pixel tiles):
// then it copies nothing but the weight.
bool conv2d_direct_reads_in_place(const Conv2dGeometry& g);
// Whether a direct call reads the weight's rows where the caller holds it (no packed copy kept or
// compared: eager calls whose pixels, all images', fit one pixel block; conv2d_direct.cpp).
bool conv2d_direct_reads_weight_rows(const Conv2dGeometry& g);
// The output pixels, all images', that a direct call computes by dot products with the weight's
// rows instead of a last pixel tile of at most an eighth of its lanes (conv2d_direct.cpp); their
// sums run in another order than a tile's, so their bits may differ from frozen weights' calls.
int64_t conv2d_direct_dot_pixels(const Conv2dGeometry& g);
// The pixels of the direct kernel's register tile for g: kernels::packed_gemm_tile().nr, or the
// wide tile's (kernels::wide_gemm_tile: a batch-1 layer whose last 2-vector tile would be mostly
// empty, conv2d_direct.cpp, direct_tile).
int64_t conv2d_direct_tile_width(const Conv2dGeometry& g);

// Output channels per block of weight panels. A tile stores NR pixels of each of a block's rows
// before the next tile stores the next NR: where a row of the output is not a whole number of
// cache lines (OH * OW not a multiple of 16), the line a tile's row ends in is the line the next
// tile's row begins in, and it must stay in L1 between the two. Blocks of up to 256 KiB of
// weights (what L2 holds) had up to thousands of rows where K is small: their lines were evicted
// and read back from memory, and the stores ran as thousands of streams. Side by side, 2 threads:
// 1 x 4 -> 896 3x3 at 130x130 20.2 -> 6.6 ms (at 128x128, whole lines: 3.9 -> 3.4), 1 x 8 -> 904 5x5
// stride 2 in 8 groups 6.5 -> 1.7 ms, AVX2 7.2 -> 4.2; blocks of 96 rows kept little of it, 24 and
// 48 rows the same; 40 random layers the heuristic sends here 0.99x (docs/PERFORMANCE.md,
// "Blocks of 48 output channels"). The direct and the packed kernels' loops.
constexpr int64_t kPanelBlockRows = 48;

// Whether a kernel writing the whole output in one pass should stream it (kernels::Store::Stream):
// from 16 MiB on, the output cannot stay in this machine's caches for the next layer anyway, and
// non-temporal stores skip reading every line before writing it (measured: docs/PERFORMANCE.md).
// Not with an output stage to apply: its pass would read every streamed line back from memory,
// where written through the cache the work item applies it to lines still in it (MobileNetV2's
// 38 MB 16 -> 96 layer with its clip at batch 8: 3.9 ms written, 6.2 ms streamed then a pass).
inline bool stream_output(const Conv2dGeometry& g, const OutputStage& stage) {
  return stage.empty() && g.N * g.OC * g.OH * g.OW * 4 >= (int64_t{16} << 20);
}

// Applies the stage to output channels [oc0, oc1) of the pixels [f0, f1) of all images, numbered
// image by image (pixel p of image n is n * OH * OW + p).
void apply_stage(float* out, const OutputStage& stage, const Conv2dGeometry& g, int64_t oc0, int64_t oc1, int64_t f0,
                 int64_t f1);
// Applies it to the whole output, over threads (the reference, and a stream-stored output).
void apply_stage_all(float* out, const OutputStage& stage, const Conv2dGeometry& g);

// Adds bias[oc] to each of the `count` values of rows [oc0, oc0 + rows) of a [OC, ld] block.
void add_bias_rows(float* out, const float* bias, int64_t rows, int64_t count, int64_t ld);

}  // namespace tinytorch::ops

// The packed convolution: im2col straight into register-tile panels and our own micro-kernel
// (kernels/gemm/gemm_packed.hpp: AVX-512 12x32 or AVX2 6x16, chosen per CPU).
//
// Per image n and group g:  out[n, g] [OCG, P] = weight[g] [OCG, K] x col [K, P].
// The weight is packed once per call into [OCG/MR][K][MR] panels shared by all threads. Work items
// are (n, g, block of PB pixels); each packs its columns KC rows at a time into [PB/NR][KC][NR]
// panels (about 256 KiB: L2) and runs the micro-kernel over every (MR rows, NR columns) tile,
// the B panel staying in L1 while the A panels stream from L2, up to kPanelBlockRows output
// channels of them before the next B panel (conv2d_algorithms.hpp). Block sizes depend on the shape
// only, so results do not depend on the thread count.
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
namespace {

constexpr int64_t kPixelBlock = 256;  // columns per work item (a multiple of NR)
constexpr int64_t kDepthBlock = 256;  // K rows packed at a time

int64_t depth_block(int64_t K) { return K <= kDepthBlock * 3 / 2 ? K : kDepthBlock; }

}  // namespace

int64_t conv2d_packed_workspace_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const int64_t K = g.channels_per_group() * g.KH * g.KW;
  const int64_t pb = std::min<int64_t>(kPixelBlock, (g.OH * g.OW + t.nr - 1) / t.nr * t.nr);
  return pb * depth_block(K) * 4;
}

int64_t conv2d_packed_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const int64_t K = g.channels_per_group() * g.KH * g.KW;
  return g.groups * ((g.out_channels_per_group() + t.mr - 1) / t.mr) * t.mr * K * 4;
}

void conv2d_packed(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                   const OutputStage& stage) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const int64_t MR = tile.mr, NR = tile.nr;
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const int64_t KC = depth_block(K);
  const int64_t a_panels = (OCG + MR - 1) / MR, a_group_stride = a_panels * MR * K;

  // weight [OC, K] -> packed, per group [OCG/MR][K][MR]
  float* a_packed = workspace(static_cast<size_t>(conv2d_packed_shared_bytes(g)), WorkspaceSlot::Shared);
  parallel_for(
      g.groups * a_panels,
      [&](int64_t item, int) {  // one MR-row panel per item
        const int64_t grp = item / a_panels, ap = item % a_panels;
        kernels::pack_a(a_packed + grp * a_group_stride + ap * MR * K, weight + (grp * OCG + ap * MR) * K,
                        std::min(MR, OCG - ap * MR), K, K, static_cast<int>(MR));
      },
      g.OC * K * 4);

  // Pixel blocks of whole NR panels, as even as the panels allow, and at least one item per thread
  // where the panels allow: by blocks of kPixelBlock alone a 49-pixel image was one item on one
  // thread, and 784 pixels four of 256, 256, 256 and 16. (Which pixels share an item does not
  // change a bit: every output's sum runs over the same K blocks.)
  const int64_t panels = (P + NR - 1) / NR;
  const int64_t per_image = (get_num_threads() + g.N * g.groups - 1) / (g.N * g.groups);
  const int64_t blocks = std::max((P + kPixelBlock - 1) / kPixelBlock, std::min(panels, per_image));
  // Stream the output when it is large, written in one K block (later blocks read it back) and
  // has no stage to apply (stream_output).
  const kernels::Store first = KC == K && stream_output(g, stage) ? kernels::Store::Stream : kernels::Store::Write;
  const size_t scratch = static_cast<size_t>(conv2d_packed_workspace_bytes(g));
  // Output channels per pass over the item's B panels: whole A panels, at most kPanelBlockRows.
  const int64_t rows = std::max<int64_t>(1, kPanelBlockRows / MR) * MR;
  parallel_for(
      g.N * g.groups * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / (g.groups * blocks), grp = item / blocks % g.groups, blk = item % blocks;
        const int64_t p0 = blk * panels / blocks * NR, np = std::min(P, (blk + 1) * panels / blocks * NR) - p0;
        const int64_t b_panels = (np + NR - 1) / NR;
        const float* image = in + (n * g.C + grp * CG) * g.H * g.W;  // [CG, H, W]
        float* dst = out + (n * g.OC + grp * OCG) * P + p0;          // [OCG, np] inside [OC, P]
        const float* group_bias = bias ? bias + grp * OCG : nullptr;
        float* b_packed = workspace(scratch);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
          const int64_t kc = std::min(KC, K - k0);
          kernels::im2col_packed(b_packed, image, g, p0, np, k0, kc, static_cast<int>(NR));
          // Blocks of the output's rows (kPanelBlockRows): r0 is a multiple of MR, so A panel r0 / MR
          // of the group's [OCG/MR][K][MR] starts r0 * K floats in.
          for (int64_t r0 = 0; r0 < OCG; r0 += rows) {
            for (int64_t bp = 0; bp < b_panels; ++bp) {
              const int cols = static_cast<int>(std::min(NR, np - bp * NR));
              kernels::gemm_micro_panels(kc, a_packed + grp * a_group_stride + r0 * K + k0 * MR, MR * K,
                                         std::min(rows, OCG - r0), b_packed + bp * kc * NR, dst + r0 * P + bp * NR, P,
                                         cols, k0 > 0 ? kernels::Store::Accumulate : first,
                                         group_bias ? group_bias + r0 : nullptr);
            }
          }
        }
        if (first == kernels::Store::Stream) return kernels::stream_fence();
        apply_stage(out, stage, g, grp * OCG, (grp + 1) * OCG, n * P + p0, n * P + p0 + np);
      },
      conv2d_work(g));
}

}  // namespace tinytorch::ops

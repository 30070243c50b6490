// Winograd F(4x4, 3x3) convolution for 3x3, stride 1, dilation 1, groups 1.
//
// The weight is transformed once per call into 36 matrices U[xi] [OC, C], packed for the
// micro-kernel and shared by all threads. A work item is one panel of NR output tiles (NR = the
// micro-kernel's width): it transforms their 6x6 input tiles into V[xi] [C, NR], then for each
// block of MR output channels runs the 36 GEMMs M[xi] = U[xi] V[xi] into a small buffer and
// turns them straight into 4x4 outputs, so M never leaves L1/L2.
#include <algorithm>
#include <vector>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/gemm_packed.hpp"
#include "kernels/winograd.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
namespace {

int64_t tile_count(const Conv2dGeometry& g) { return g.N * ((g.OH + 3) / 4) * ((g.OW + 3) / 4); }

int64_t packed_u_floats(const Conv2dGeometry& g, int mr) { return 36 * ((g.OC + mr - 1) / mr) * mr * g.C; }

}  // namespace

int64_t conv2d_winograd_workspace_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  return (36 * g.C * t.nr + 36 * t.mr * t.nr) * 4;  // V panels + the M buffer
}

int64_t conv2d_winograd_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  return packed_u_floats(g, t.mr) * 4;
}

void conv2d_winograd(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const int MR = tile.mr, NR = tile.nr;
  const int64_t a_panels = (g.OC + MR - 1) / MR, u_xi_stride = a_panels * MR * g.C;

  // weight [OC, C, 3, 3] -> packed U [36][OC/MR][C][MR], one panel of MR channels per item
  float* u_packed = workspace(static_cast<size_t>(conv2d_winograd_shared_bytes(g)), WorkspaceSlot::Shared);
  parallel_for(
      a_panels,
      [&](int64_t ap, int) {
        kernels::winograd_f43_weight_transform(u_packed, u_xi_stride, weight, g.OC, g.C, ap * MR, MR);
      },
      36 * g.OC * g.C * 8);

  const int64_t T = tile_count(g), items = (T + NR - 1) / NR;
  const size_t scratch = static_cast<size_t>(conv2d_winograd_workspace_bytes(g));
  parallel_for(
      items,
      [&](int64_t item, int) {
        float* v = workspace(scratch);  // [36][C][NR]
        float* m = v + 36 * g.C * NR;   // [36][MR][NR]
        const int64_t t0 = item * NR;
        kernels::winograd_f43_input_transform(v, in, g, t0, NR);
        for (int64_t ap = 0; ap < a_panels; ++ap) {
          const int rows = static_cast<int>(std::min<int64_t>(MR, g.OC - ap * MR));
          for (int xi = 0; xi < 36; ++xi) {
            kernels::gemm_micro(g.C, u_packed + xi * u_xi_stride + ap * MR * g.C, v + xi * g.C * NR, m + xi * rows * NR,
                                NR, rows, NR, kernels::Store::Write, nullptr);
          }
          kernels::winograd_f43_output_transform(out, m, bias, g, ap * MR, rows, t0, NR);
        }
      },
      g.flops() / 4);
}

}  // namespace tinytorch::ops

// Winograd convolution for 3x3 layers, dilation 1, groups 1: F(4x4, 3x3) at stride 1, the 5x5
// scheme of kernels/winograd.hpp at stride 2.
//
// The weight is transformed into the scheme's matrices U [OC, C] (36 at stride 1, 16 distinct at
// stride 2), packed for the micro-kernel and shared by all threads; U is kept between calls while
// the weight stays the same (prepared_weights.hpp). A work item is one
// panel of NR output tiles (NR = the micro-kernel's width) and a group of output-channel panels: it
// transforms the tiles' input patches into V[xi] [C, NR], runs the GEMMs M[xi] = U[xi] V[xi] (36 or
// 25) point by point, all its output channels against one V[xi] while that stays in L1, into its
// own buffer M [P][OC][NR], and turns M into output tiles (point by point rather than output
// channels outermost: docs/PERFORMANCE.md, "Winograd's GEMMs point by point").
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "kernels/winograd/winograd.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {
namespace {

// What differs between the two schemes: sizes and the three transforms.
struct Scheme {
  int points;    // xi per tile: 36 or 25
  int matrices;  // distinct U matrices: 36 or 16
  int64_t tiles;
  decltype(&kernels::winograd_f43_weight_transform) weight_transform;
  decltype(&kernels::winograd_f43_input_transform) input_transform;
  decltype(&kernels::winograd_f43_output_transform) output_transform;
  explicit Scheme(const Conv2dGeometry& g) {
    const bool f43 = g.stride_h == 1;
    points = f43 ? 36 : 25;
    matrices = f43 ? 36 : 16;
    tiles = f43 ? kernels::winograd_f43_tiles(g) : kernels::winograd_s2_tiles(g);
    weight_transform = f43 ? &kernels::winograd_f43_weight_transform : &kernels::winograd_s2_weight_transform;
    input_transform = f43 ? &kernels::winograd_f43_input_transform : &kernels::winograd_s2_input_transform;
    output_transform = f43 ? &kernels::winograd_f43_output_transform : &kernels::winograd_s2_output_transform;
  }
  int u_index(int xi) const { return points == 36 ? xi : kernels::winograd_s2_u_index(xi); }
};

int64_t packed_u_floats(const Conv2dGeometry& g, const Scheme& s, int mr) {
  return s.matrices * ((g.OC + mr - 1) / mr) * mr * g.C;
}

// The stage on output channels [oc0, oc1) of tiles [t0, t0 + count) of the N x TH x TW grid of
// side x side output tiles, run by run of tiles along a tile row.
void apply_stage_tiles(float* out, const OutputStage& stage, const Conv2dGeometry& g, int64_t side, int64_t oc0,
                       int64_t oc1, int64_t t0, int64_t count) {
  if (stage.empty()) return;
  const int64_t TH = (g.OH + side - 1) / side, TW = (g.OW + side - 1) / side, P = g.OH * g.OW;
  const int64_t t1 = std::min(t0 + count, g.N * TH * TW);
  for (int64_t t = t0; t < t1;) {
    const int64_t n = t / (TH * TW), th = t / TW % TH, tw = t % TW, run = std::min(t1 - t, TW - tw);
    const int64_t col0 = tw * side, cols = std::min(g.OW, (tw + run) * side) - col0;
    for (int64_t oc = oc0; oc < oc1; ++oc) {
      for (int64_t oh = th * side; oh < std::min(g.OH, (th + 1) * side); ++oh) {
        stage.apply(out, (n * g.OC + oc) * P + oh * g.OW + col0, cols);
      }
    }
    t += run;
  }
}

}  // namespace

bool conv2d_winograd_supports(const Conv2dGeometry& g) {
  return kernels::winograd_f43_supports(g) || kernels::winograd_s2_supports(g);
}

int64_t conv2d_winograd_workspace_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const Scheme s(g);
  const int64_t oc = (g.OC + t.mr - 1) / t.mr * t.mr;
  return (s.points * kernels::winograd_v_stride(g.C, t.nr) + s.points * oc * t.nr) * 4;  // V panels + M [P][OC][NR]
}

int64_t conv2d_winograd_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  return packed_u_floats(g, Scheme(g), t.mr) * 4;
}

void conv2d_winograd(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                     const OutputStage& stage) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const int MR = tile.mr, NR = tile.nr;
  const Scheme scheme(g);
  const int64_t a_panels = (g.OC + MR - 1) / MR, u_xi_stride = a_panels * MR * g.C;

  // weight [OC, C, 3, 3] -> packed U [matrices][OC/MR][C][MR], one panel of MR channels per item;
  // kept between calls while the weight stays the same (prepared_weights.hpp; docs/PERFORMANCE.md,
  // "Packed weights kept").
  const PreparedTag tag{scheme.points == 36 ? kWinogradF43 : kWinogradStride2, MR, g.OC, g.C};
  const auto u = prepared_weight(tag, weight, g.OC * g.C * 9, packed_u_floats(g, scheme, MR), [&](float* u_packed) {
    parallel_for(
        a_panels,
        [&](int64_t ap, int) { scheme.weight_transform(u_packed, u_xi_stride, weight, g.OC, g.C, ap * MR, MR); },
        scheme.matrices * g.OC * g.C * 8);
  });
  const float* u_packed = u->prepared.data();

  // Work items: tile panels, each with all output channels. When the panels do not divide evenly
  // among the threads (13 panels on 2), the last `rest` of them are also split by output-channel
  // panels into groups (each group transforms the panel's input again, a few % of a panel), and
  // the dynamic schedule hands the whole panels out first: 12 + 2 halves run as 6.5 + 6.5 instead
  // of 7 + 6. Fewer panels than threads split the same way (one panel in two halves on two
  // threads: counted by panels alone, a single panel ran on one thread, and 512 -> 512 at 7x7 at
  // batch 8, 32 tiles, took 8.5 ms against 4.6). Each output is computed the same way however the
  // items fall: the split does not change a bit.
  // The work as the other convolution kernels count it (conv2d_work), their multiply-adds: Winograd
  // does a quarter of them or fewer, but its transforms take the rest of the time (counted at a
  // quarter, the sweep's 3x3 layers of 7-15 MFLOP at batch 1, 16 -> 32 at 28x28, 128 -> 32 at
  // 14x14, ran on one thread: 1.2-1.8x slower than now, on two). The split below as parallel_for
  // runs it: on one thread an item split in two transformed its input twice.
  const int64_t work = conv2d_work(g);
  const int64_t panels = (scheme.tiles + NR - 1) / NR;
  const int threads = work < serial_work() ? 1 : threads_for(panels * a_panels);
  const int64_t rest = panels % threads;
  const int64_t groups = rest == 0 ? 1 : std::min(a_panels, (threads + rest - 1) / rest);
  const int64_t whole = panels - (groups > 1 ? rest : 0), group = (a_panels + groups - 1) / groups;
  const int64_t items = whole + (panels - whole) * groups;
  const int P = scheme.points;
  // An item's M holds its own output-channel panels only, so a split item asks for less scratch
  // (a single panel split in two: 512 -> 512 at 7x7, batch 8, 2.4 MiB less on the second thread).
  const int64_t vs = kernels::winograd_v_stride(g.C, NR), widest = (whole > 0 ? a_panels : group) * MR;
  const size_t scratch = static_cast<size_t>((P * vs + P * widest * NR) * 4);
  parallel_for(
      items,
      [&](int64_t item, int) {
        float* v = workspace(scratch);  // P panels [C][NR], vs floats apart
        // [P][ocp][NR], the item's ocp output channels: point xi, panel ap at (xi * ocp + (ap - ap0) * MR) * NR
        float* m = v + P * vs;
        const int64_t panel = item < whole ? item : whole + (item - whole) / groups;
        const int64_t ap0 = item < whole ? 0 : (item - whole) % groups * group;
        const int64_t ap1 = item < whole ? a_panels : std::min(a_panels, ap0 + group);
        const int64_t t0 = panel * NR;
        scheme.input_transform(v, in, g, t0, NR);
        const int64_t ocp = (ap1 - ap0) * MR;
        auto rows = [&](int64_t ap) { return static_cast<int>(std::min<int64_t>(MR, g.OC - ap * MR)); };
        // The last panel's tiles only: the micro-kernel then computes only the vectors they fill
        // (a half tile for 16 tiles of AVX-512's 32: 256 -> 256 at 14x14, batch 1, 0.64 -> 0.49 ms),
        // and the output transform reads no lane past them.
        const int cols = static_cast<int>(std::min<int64_t>(NR, scheme.tiles - t0));
        for (int xi = 0; xi < P; ++xi) {
          for (int64_t ap = ap0; ap < ap1; ++ap) {
            kernels::gemm_micro(g.C, u_packed + scheme.u_index(xi) * u_xi_stride + ap * MR * g.C, v + xi * vs,
                                m + (xi * ocp + (ap - ap0) * MR) * NR, NR, rows(ap), cols, kernels::Store::Write,
                                nullptr);
          }
        }
        for (int64_t ap = ap0; ap < ap1; ++ap) {
          scheme.output_transform(out, m + (ap - ap0) * MR * NR, ocp * NR, bias, g, ap * MR, rows(ap), t0, NR);
        }
        apply_stage_tiles(out, stage, g, P == 36 ? 4 : 2, ap0 * MR, std::min(g.OC, ap1 * MR), t0, NR);
      },
      work, Schedule::Dynamic);
}

}  // namespace tinytorch::ops

// Direct convolution (any kernel, stride, padding, dilation; groups 1): the micro-kernel reads the
// zero-padded input in place instead of an im2col copy.
//
// The trick, for stride 1: with the padded image [C, PH, PW] flattened, output pixel (oh, ow) of
// tap (c, kh, kw) reads padded[c, oh + kh*dh, ow + kw*dw] = flat[q + offset(c, kh, kw)] with
// q = oh * PW + ow. So over the grid q = 0 .. OH*PW - 1, which includes PW - OW junk columns per
// row, every tap's inputs are one contiguous run: NR consecutive q are one vector load. The
// micro-kernel fills an [MR channels][NR grid points] tile; the junk columns are dropped when the
// tile is copied out.
// For stride s the padded image is first split into s_h x s_w phase images (rows a, a + s_h, ...
// and columns b, b + s_w, ...): tap (kh, kw) reads phase ((kh*dh) % s_h, (kw*dw) % s_w) at
// (oh + (kh*dh) / s_h, ow + (kw*dw) / s_w), which is stride 1 again.
// Best where im2col costs most relative to the GEMM: few channels, small images, batch 1.
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/gemm_packed.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
namespace {

constexpr int64_t kGridBlock = 256;  // grid points per work item (a multiple of NR)

struct Layout {
  int64_t PH, PW, image;  // phase-image rows, columns; floats per padded image (with slack)
  int64_t phases;         // stride_h * stride_w phase images per channel
  int64_t K, a_floats;    // taps; packed weight floats
};

Layout layout(const Conv2dGeometry& g, const kernels::GemmTile& t) {
  Layout l{};
  l.PH = g.OH + (g.KH - 1) * g.dilation_h / g.stride_h;
  l.PW = g.OW + (g.KW - 1) * g.dilation_w / g.stride_w;
  l.phases = g.stride_h * g.stride_w;
  l.K = g.C * g.KH * g.KW;
  // Slack: the last grid block reads up to NR past OH*PW plus the largest tap offset.
  const int64_t plane = l.PH * l.PW, grid = (g.OH * l.PW + t.nr - 1) / t.nr * t.nr;
  // Both rounded to 16 floats, so each image and the tap offsets after them stay 64-byte aligned.
  l.image = (g.C * l.phases * plane + grid + t.nr + 15) / 16 * 16;
  l.a_floats = ((g.OC + t.mr - 1) / t.mr * t.mr * l.K + 15) / 16 * 16;
  return l;
}

}  // namespace

int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  return t.mr * t.nr * 4;  // the output tile
}

int64_t conv2d_direct_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const Layout l = layout(g, t);
  return (l.a_floats + g.N * l.image) * 4 + l.K * 8;  // packed weights, padded images, tap offsets
}

void conv2d_direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const int64_t MR = tile.mr, NR = tile.nr;
  const Layout l = layout(g, tile);
  float* a_packed = workspace(static_cast<size_t>(conv2d_direct_shared_bytes(g)), WorkspaceSlot::Shared);
  float* padded = a_packed + l.a_floats;                                    // [N][image]
  auto* offset = reinterpret_cast<int64_t*>(padded + g.N * l.image);        // [K]
  // [OC, K] -> [OC/MR][K][MR], a panel per item (on one thread the other would wait)
  const int64_t panels = (g.OC + MR - 1) / MR;
  parallel_for(panels, [&](int64_t ap, int) {
    kernels::pack_a(a_packed + ap * MR * l.K, weight + ap * MR * l.K, std::min(MR, g.OC - ap * MR), l.K, l.K,
                    static_cast<int>(MR));
  }, g.OC * l.K * 4);
  const int64_t plane = l.PH * l.PW;
  for (int64_t k = 0; k < l.K; ++k) {
    const int64_t c = k / (g.KH * g.KW), kh = k / g.KW % g.KH, kw = k % g.KW;
    const int64_t dh = kh * g.dilation_h, dw = kw * g.dilation_w;
    const int64_t phase = (dh % g.stride_h) * g.stride_w + dw % g.stride_w;
    offset[k] = (c * l.phases + phase) * plane + dh / g.stride_h * l.PW + dw / g.stride_w;
  }
  // [N, C, H, W] -> [N][C, phases, PH, PW]: phase (a, b) row r, column j holds input
  // (r * s_h + a - pad_top, j * s_w + b - pad_left), or 0 outside; then zero slack.
  parallel_for(
      g.N,
      [&](int64_t n, int) {
        for (int64_t c = 0; c < g.C; ++c) {
          const float* src = in + (n * g.C + c) * g.H * g.W;
          float* dst = padded + n * l.image + c * l.phases * plane;
          for (int64_t a = 0; a < g.stride_h; ++a) {
            for (int64_t b = 0; b < g.stride_w; ++b) {
              float* ph = dst + (a * g.stride_w + b) * plane;
              for (int64_t r = 0; r < l.PH; ++r) {
                const int64_t ih = r * g.stride_h + a - g.pad_top;
                float* row = ph + r * l.PW;
                if (ih < 0 || ih >= g.H) {
                  std::fill_n(row, l.PW, 0.0f);
                  continue;
                }
                // Columns [lo, hi) map to iw = j * s_w + b - pad_left inside [0, W); the rest are padding.
                const int64_t first = b - g.pad_left, sw = g.stride_w;
                const int64_t lo = std::min(l.PW, first >= 0 ? int64_t{0} : (-first + sw - 1) / sw);
                const int64_t hi = std::clamp<int64_t>((g.W - first + sw - 1) / sw, lo, l.PW);
                const float* line = src + ih * g.W;  // iw = first + j * sw
                std::fill_n(row, lo, 0.0f);
                if (sw == 1) {
                  if (hi > lo) std::copy(line + first + lo, line + first + hi, row + lo);
                } else {
                  for (int64_t j = lo; j < hi; ++j) row[j] = line[first + j * sw];
                }
                std::fill_n(row + hi, l.PW - hi, 0.0f);
              }
            }
          }
        }
        std::fill_n(padded + n * l.image + g.C * l.phases * plane, l.image - g.C * l.phases * plane, 0.0f);
      },
      g.N * g.C * g.H * g.W);

  const int64_t grid = g.OH * l.PW, blocks = (grid + kGridBlock - 1) / kGridBlock;
  const int64_t a_panels = (g.OC + MR - 1) / MR, P = g.OH * g.OW;
  parallel_for(
      g.N * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / blocks, q0 = item % blocks * kGridBlock, q1 = std::min(grid, q0 + kGridBlock);
        float* t = workspace(static_cast<size_t>(conv2d_direct_workspace_bytes(g)));  // [MR][NR]
        for (int64_t q = q0; q < q1; q += NR) {
          const float* base = padded + n * l.image + q;
          for (int64_t ap = 0; ap < a_panels; ++ap) {
            kernels::direct_micro(l.K, a_packed + ap * MR * l.K, base, offset, t);
            // Copy the tile's real columns (ow < OW) to out [N, OC, OH, OW], adding the bias.
            const int64_t rows = std::min(MR, g.OC - ap * MR);
            for (int64_t j = 0; j < NR && q + j < q1;) {
              const int64_t oh = (q + j) / l.PW, ow = (q + j) % l.PW;
              const int64_t run = std::min({NR - j, l.PW - ow, q1 - q - j});
              if (ow < g.OW) {
                const int64_t len = std::min(run, g.OW - ow);
                for (int64_t r = 0; r < rows; ++r) {
                  const int64_t oc = ap * MR + r;
                  const float b = bias ? bias[oc] : 0.0f;
                  float* dst = out + (n * g.OC + oc) * P + oh * g.OW + ow;
                  const float* src = t + r * NR + j;
                  for (int64_t i = 0; i < len; ++i) dst[i] = src[i] + b;
                }
              }
              j += run;
            }
          }
        }
      },
      g.flops());
}

}  // namespace tinytorch::ops

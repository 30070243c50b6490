// Winograd F(4x4, 3x3) at stride 1 (winograd.hpp): which layers it takes, its weight transform,
// and its input transform's AVX-512 permute path; the rest is shared (winograd_common.hpp).
#include "kernels/winograd_common.hpp"

namespace tinytorch::kernels {
namespace {

using namespace winograd_detail;

__attribute__((target("avx512f"))) void f43_weight_transform_avx512(float* u, int64_t xi_stride, const float* weight,
                                                                    int64_t OC, int64_t C, int64_t oc0, int mr) {
  weight_transform_avx512<36>(
      u, xi_stride, weight, OC, C, oc0, mr,
      [](const __m512(&t)[9], float* dst, int64_t stride, __mmask16 store)
          __attribute__((target("avx512f"), always_inline)) {
            v16 gw[3][6];  // G w, column j of the kernel in gw[j]
            for (int j = 0; j < 3; ++j) g6(gw[j], (v16)t[j], (v16)t[3 + j], (v16)t[6 + j]);
            for (int i = 0; i < 6; ++i) {
              v16 row[6];
              g6(row, gw[0][i], gw[1][i], gw[2][i]);
              for (int j = 0; j < 6; ++j) _mm512_mask_storeu_ps(dst + (i * 6 + j) * stride, store, (__m512)row[j]);
            }
          });
}

// F(4x4, 3x3)'s input transform with AVX-512 without gathers, for tile rows at least 4 tiles wide
// (outputs 13 and more wide). Lanes 4p .. 4p + 3 of a panel form a "piece" of 4 tiles; where they
// lie in one tile row, their 6x6 patches lie in one 16-float window of each patch row (tile j's
// columns 0-3 at 4 j .. 4 j + 3) and one 4 floats further (columns 4-5); a piece that crosses into
// the next tile row (or image) is loaded in two parts, each with its own rows and masked to its
// lanes. One two-source permute picks column s of two pieces into 8 lanes, and a 128-bit shuffle
// joins two such pairs into 16 lanes: 12 instructions where 16 lanes took 6 gathers. The patch
// d[r][s] goes through a small buffer, then B^T is applied over r and over s as with the gathers.
// kOneRow: tile rows a multiple of 4 tiles wide, so that every piece lies in one tile row.
template <bool kOneRow>
__attribute__((target("avx512f"))) void f43_input_transform_permutes(float* v, const float* in, const Conv2dGeometry& g,
                                                                     int64_t t0) {
  constexpr int LANES = 32, S = 6;
  const Grid grid = grid_f43(g);
  const int64_t T = g.N * grid.TH * grid.TW, plane_floats = g.H * g.W;
  struct Part {
    const float* image;  // channel 0 of the part's image
    int64_t h0, col;     // lane 4 j + s of a window reads column col + 4 j + s (+ 4 in the second)
    __mmask16 load[2];   // the part's lanes whose columns lie inside [0, W)
  };
  struct Piece {
    int parts;
    Part part[2];
  };
  Piece pieces[LANES / 4];
  for (int p = 0; p < LANES / 4; ++p) {
    Piece& piece = pieces[p];
    piece.parts = 0;
    for (int j0 = 0; j0 < 4 && t0 + 4 * p + j0 < T;) {
      const int64_t tile = t0 + 4 * p + j0;
      const int64_t n = tile / (grid.TH * grid.TW), th = tile / grid.TW % grid.TH, tw = tile % grid.TW;
      const int count = static_cast<int>(std::min<int64_t>({4 - j0, grid.TW - tw, T - tile}));
      Part& part = piece.part[piece.parts++];
      part.image = in + n * g.C * plane_floats;
      part.h0 = 4 * th - g.pad_top;
      part.col = 4 * (tw - j0) - g.pad_left;
      for (int q = 0; q < 2; ++q) part.load[q] = columns_inside(part.col + 4 * q, 4 * j0, 4 * (j0 + count), g.W);
      j0 += count;
    }
  }
  // Column s (< 4) of two pieces: lanes 0-3 from the first window (4 j + s), 4-7 from the second.
  __m512i pick[4];
  for (int s = 0; s < 4; ++s) {
    pick[s] = _mm512_add_epi32(_mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0),
                               _mm512_set1_epi32(s));
  }
  alignas(64) float patch[S * S * 16], e[S * S * LANES];
  const int64_t xs = winograd_v_stride(g.C, LANES);
  for (int64_t c = 0; c < g.C; ++c) {
    for (int half = 0; half < 2; ++half) {
      const Piece* pc = pieces + 4 * half;
      for (int r = 0; r < S; ++r) {
        __m512 x[4][2];  // piece k's patch row r: the two windows
        for (int k = 0; k < 4; ++k) {
          if (kOneRow || pc[k].parts == 1) {  // the common case: one tile row (or none: past the grid)
            const Part& part = pc[k].part[0];
            const int64_t ih = part.h0 + r;
            const bool inside = pc[k].parts == 1 && ih >= 0 && ih < g.H;
            const float* row = inside ? part.image + c * plane_floats + ih * g.W + part.col : nullptr;
            for (int q = 0; q < 2; ++q) {
              x[k][q] = inside ? _mm512_maskz_loadu_ps(part.load[q], row + 4 * q) : _mm512_setzero_ps();
            }
            continue;
          }
          x[k][0] = x[k][1] = _mm512_setzero_ps();
          for (int i = 0; i < pc[k].parts; ++i) {
            const Part& part = pc[k].part[i];
            const int64_t ih = part.h0 + r;
            if (ih < 0 || ih >= g.H) continue;
            const float* row = part.image + c * plane_floats + ih * g.W + part.col;
            for (int q = 0; q < 2; ++q) x[k][q] = _mm512_mask_loadu_ps(x[k][q], part.load[q], row + 4 * q);
          }
        }
        for (int s = 0; s < S; ++s) {
          const int q = s / 4, i = s % 4;
          const __m512 lo = _mm512_permutex2var_ps(x[0][q], pick[i], x[1][q]);
          const __m512 hi = _mm512_permutex2var_ps(x[2][q], pick[i], x[3][q]);
          _mm512_store_ps(patch + (S * r + s) * 16, _mm512_mask_shuffle_f32x4(lo, 0xFF00, lo, hi, 0x44));
        }
      }
      for (int s = 0; s < S; ++s) {
        v16 d[S];
        for (int r = 0; r < S; ++r) d[r] = (v16)_mm512_load_ps(patch + (S * r + s) * 16);
        bt6(e + s * LANES + 16 * half, S * LANES, d);
      }
    }
    for (int r = 0; r < S; ++r) {
      const float* row = e + S * r * LANES;
      for (int t = 0; t < LANES; t += 16) {
        v16 d[S];
        for (int s = 0; s < S; ++s) d[s] = (v16)_mm512_load_ps(row + s * LANES + t);
        bt6(v + S * r * xs + c * LANES + t, xs, d);
      }
    }
  }
}

}  // namespace

using namespace winograd_detail;

bool winograd_f43_supports(const Conv2dGeometry& g) {
  if (g.KH != 3 || g.KW != 3 || g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 || g.dilation_w != 1 ||
      g.groups != 1) {
    return false;
  }
  // Padding of at most 1 on every side (3x3 "valid" and "same" layers). Winograd's rounding error
  // scales with the inputs of the whole 6x6 tile, not of each output's own 3x3 window; with wider
  // padding an output whose window is (nearly) all padding, next to real data in the same tile,
  // came out up to 10^4 x the float bound of its own window (a 1-channel layer with padding 3).
  const int64_t pad_bottom = g.OH + 2 - g.H - g.pad_top, pad_right = g.OW + 2 - g.W - g.pad_left;
  if (g.pad_top > 1 || g.pad_left > 1 || pad_bottom > 1 || pad_right > 1) return false;
  return offsets_fit(g, grid_f43(g));
}

void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr) {
  if (weight_gathers_apply(C, mr)) {
    return f43_weight_transform_avx512(u, xi_stride, weight, OC, C, oc0, mr);
  }
  weight_transform_scalar<36>(u, xi_stride, weight, OC, C, oc0, mr, [](const float* w, float* dst, int64_t stride) {
    float gw[3][6];  // G w: [6, 3] (column j of the kernel in gw[j]), then (G w) G^T: [6, 6]
    for (int j = 0; j < 3; ++j) g6(gw[j], w[j], w[3 + j], w[6 + j]);
    for (int i = 0; i < 6; ++i) {
      float row[6];
      g6(row, gw[0][i], gw[1][i], gw[2][i]);
      for (int j = 0; j < 6; ++j) dst[(i * 6 + j) * stride] = row[j];
    }
  });
}

void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  TT_EXPECTS(winograd_f43_supports(g) && t0 >= 0 && t0 < winograd_f43_tiles(g) && lanes >= 1);
  if (cpu_isa() == Isa::Avx512 && lanes == 32 && grid_f43(g).TW >= 4) {
    if (grid_f43(g).TW % 4 == 0) return f43_input_transform_permutes<true>(v, in, g, t0);
    return f43_input_transform_permutes<false>(v, in, g, t0);
  }
  input_transform_for<F43>(v, in, g, t0, lanes);
}

void winograd_f43_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                   int64_t oc0, int rows, int64_t t0, int lanes) {
  output_transform_for<F43>(out, m, xs, bias, g, oc0, rows, t0, lanes);
}

int64_t winograd_f43_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_f43(g);
  return g.N * grid.TH * grid.TW;
}

}  // namespace tinytorch::kernels

// Winograd's stride-2 scheme (winograd.hpp): the layer split by input parity into F(2, 2) and
// 1-tap convolutions per dimension. Which layers it takes, its weight transform and its input
// transform's AVX-512 permute path; the rest is shared (winograd_common.hpp).
#include "kernels/winograd_common.hpp"

namespace tinytorch::kernels {
namespace {

using namespace winograd_detail;

// The stride-2 input transform with AVX-512 without gathers. Within a tile row the patches of
// consecutive tiles start 4 columns apart, so element s of tiles tw .. tw + 7 is every 4th float
// of a 32-float run of the input row: one two-source permute picks it. Per channel and run of up
// to 8 tiles of a segment: the 5 patch rows are loaded (masked at the padding) as four vectors
// each (columns +0, +16 and, for element 4, +4 and +20), B^T is applied across the rows on whole
// vectors, then each of the 5 transformed rows is split into its 5 column phases by permutes and
// B^T is applied across them: 25 masked stores of up to 8 lanes. About 3x fewer micro-operations
// than 25 gathers per 16 lanes.
__attribute__((target("avx512f"))) void s2_input_transform_permutes(float* v, const float* in, const Conv2dGeometry& g,
                                                                    int64_t t0) {
  constexpr int LANES = 32;
  const Grid grid = grid_s2(g);
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, grid, t0, LANES);
  const int covered = segments ? seg[segments - 1].lane0 + seg[segments - 1].count : 0;
  const __m512i four = _mm512_set_epi32(60, 56, 52, 48, 44, 40, 36, 32, 28, 24, 20, 16, 12, 8, 4, 0);
  const __m512i phase[4] = {four, _mm512_add_epi32(four, _mm512_set1_epi32(1)),
                            _mm512_add_epi32(four, _mm512_set1_epi32(2)), _mm512_add_epi32(four, _mm512_set1_epi32(3))};
  // The runs of up to 8 tiles of each segment, with their load masks: columns col0 + off + (0 .. 15)
  // of each of the four loads, lanes outside [0, W) masked off.
  constexpr int kOff[4] = {0, 16, 4, 20};
  struct Run {
    const float* image;  // channel 0 of the run's image
    int64_t h0, col0;
    int lane, count;
    __mmask16 load[4];
  };
  Run runs[kMaxLanes];
  int n_runs = 0;
  for (int si = 0; si < segments; ++si) {
    const Segment& sg = seg[si];
    for (int j0 = 0; j0 < sg.count; j0 += 8) {
      Run& run = runs[n_runs++];
      run.image = in + sg.n * g.C * g.H * g.W;
      run.h0 = 4 * sg.th - g.pad_top;
      run.col0 = 4 * (sg.tw0 + j0) - g.pad_left;
      run.lane = sg.lane0 + j0;
      run.count = std::min(8, sg.count - j0);
      for (int q = 0; q < 4; ++q) run.load[q] = columns_inside(run.col0 + kOff[q], 0, 16, g.W);
    }
  }
  // A channel's 25 x 32 values are assembled in e, then written to v a whole 32-lane row at a
  // time: v's rows for one channel lie C * 128 bytes apart, in one L1 set, and partial writes
  // run by run evicted each other (3x slower than the gathers).
  alignas(64) float e[25 * LANES] = {};
  const int64_t plane_floats = g.H * g.W;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int ri = 0; ri < n_runs; ++ri) {
      const Run& run = runs[ri];
      const float* plane = run.image + c * plane_floats;
      const __mmask16 store_mask = static_cast<__mmask16>((1u << run.count) - 1);
      // Patch row r as four column runs (zeros above and below the image).
      const auto load_row = [&](int r, __m512(&x)[4]) __attribute__((target("avx512f"), always_inline)) {
        const int64_t ih = run.h0 + r;
        for (int q = 0; q < 4; ++q) {
          x[q] = ih >= 0 && ih < g.H ? _mm512_maskz_loadu_ps(run.load[q], plane + ih * g.W + run.col0 + kOff[q])
                                     : _mm512_setzero_ps();
        }
      };
      __m512 x2[4];
      load_row(2, x2);
      // Row i of B^T d (x0 - x2, x2, x4 - x2, x1, x3), then its 5 column phases and B^T across them.
      for (int i = 0; i < 5; ++i) {
        __m512 t[4];
        if (i == 1) {
          for (int q = 0; q < 4; ++q) t[q] = x2[q];
        } else {
          load_row(i == 0 ? 0 : i == 2 ? 4 : i == 3 ? 1 : 3, t);
          if (i == 0 || i == 2) {
            for (int q = 0; q < 4; ++q) t[q] = _mm512_sub_ps(t[q], x2[q]);
          }
        }
        const __m512 p0 = _mm512_permutex2var_ps(t[0], phase[0], t[1]);
        const __m512 p1 = _mm512_permutex2var_ps(t[0], phase[1], t[1]);
        const __m512 p2 = _mm512_permutex2var_ps(t[0], phase[2], t[1]);
        const __m512 p3 = _mm512_permutex2var_ps(t[0], phase[3], t[1]);
        const __m512 p4 = _mm512_permutex2var_ps(t[2], phase[0], t[3]);
        const __m512 col[5] = {_mm512_sub_ps(p0, p2), p2, _mm512_sub_ps(p4, p2), p1, p3};
        // Runs of a panel fill its lanes in order, so a full 16-lane store's extra lanes are
        // overwritten by the runs after it: only a store reaching past the covered lanes is masked.
        float* out = e + 5 * i * LANES + run.lane;
        if (run.lane + 16 <= covered) {
          for (int j = 0; j < 5; ++j) _mm512_storeu_ps(out + j * LANES, col[j]);
        } else {
          for (int j = 0; j < 5; ++j) _mm512_mask_storeu_ps(out + j * LANES, store_mask, col[j]);
        }
      }
    }
    for (int x = 0; x < 25; ++x) {
      float* row = v + x * winograd_v_stride(g.C, LANES) + c * LANES;
      _mm512_storeu_ps(row, _mm512_load_ps(e + x * LANES));
      _mm512_storeu_ps(row + 16, _mm512_load_ps(e + x * LANES + 16));
    }
  }
}

// AVX-512, as f43_weight_transform_avx512.
__attribute__((target("avx512f"))) void s2_weight_transform_avx512(float* u, int64_t xi_stride, const float* weight,
                                                                   int64_t OC, int64_t C, int64_t oc0, int mr) {
  weight_transform_avx512<16>(
      u, xi_stride, weight, OC, C, oc0, mr,
      [](const __m512(&t)[9], float* dst, int64_t stride, __mmask16 store)
          __attribute__((target("avx512f"), always_inline)) {
            // G w (rows w0, w0 + w2, w2, w1 over the kernel rows), then the same over its columns.
            __m512 gw[4][3];
            for (int j = 0; j < 3; ++j) {
              gw[0][j] = t[j];
              gw[1][j] = _mm512_add_ps(t[j], t[6 + j]);
              gw[2][j] = t[6 + j];
              gw[3][j] = t[3 + j];
            }
            for (int i = 0; i < 4; ++i) {
              const __m512 row[4] = {gw[i][0], _mm512_add_ps(gw[i][0], gw[i][2]), gw[i][2], gw[i][1]};
              for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(dst + (i * 4 + j) * stride, store, row[j]);
            }
          });
}

}  // namespace

using namespace winograd_detail;

bool winograd_s2_supports(const Conv2dGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.groups == 1 && offsets_fit(g, grid_s2(g));
}

int64_t winograd_s2_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_s2(g);
  return g.N * grid.TH * grid.TW;
}

void winograd_s2_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                  int mr) {
  if (weight_gathers_apply(C, mr)) {
    return s2_weight_transform_avx512(u, xi_stride, weight, OC, C, oc0, mr);
  }
  // G = rows (w0, w0 + w2, w2, w1) per dimension: the 4 x 4 distinct matrices (point O1 shares O0's).
  weight_transform_scalar<16>(u, xi_stride, weight, OC, C, oc0, mr, [](const float* w, float* dst, int64_t stride) {
    float gw[4][3];
    for (int j = 0; j < 3; ++j) {
      gw[0][j] = w[j];
      gw[1][j] = w[j] + w[6 + j];
      gw[2][j] = w[6 + j];
      gw[3][j] = w[3 + j];
    }
    for (int i = 0; i < 4; ++i) {
      const float row[4] = {gw[i][0], gw[i][0] + gw[i][2], gw[i][2], gw[i][1]};
      for (int j = 0; j < 4; ++j) dst[(i * 4 + j) * stride] = row[j];
    }
  });
}

void winograd_s2_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  TT_EXPECTS(winograd_s2_supports(g) && t0 >= 0 && t0 < winograd_s2_tiles(g) && lanes >= 1);
  if (cpu_isa() == Isa::Avx512 && lanes == 32) return s2_input_transform_permutes(v, in, g, t0);
  input_transform_for<S2>(v, in, g, t0, lanes);
}

void winograd_s2_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                  int64_t oc0, int rows, int64_t t0, int lanes) {
  output_transform_for<S2>(out, m, xs, bias, g, oc0, rows, t0, lanes);
}

}  // namespace tinytorch::kernels

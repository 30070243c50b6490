// The Winograd kernels with AVX-512: the ISA-generic transforms (winograd/transforms.hpp) for
// 16 floats, plus what only AVX-512 has: input patches picked out of row windows by two-source
// permutes instead of gathers (F(4x4, 3x3) on tile rows of at least 4 tiles; stride 2 always, with
// 32-lane panels) and weight transforms that gather a panel's output channels into the lanes.
// Compiled with AVX-512 flags; runs only where cpu_isa() says so.
#include "kernels/simd/avx512.hpp"

#include "kernels/winograd/table.hpp"
#include "kernels/winograd/transforms.hpp"

namespace tinytorch::kernels {
namespace {

// Lanes [lo, hi) of a 16-float load of columns first .. first + 15 that lie inside [0, W).
inline __mmask16 columns_inside(int64_t first, int lo, int hi, int64_t W) {
  uint32_t m = 0;
  for (int l = lo; l < hi; ++l) {
    if (first + l >= 0 && first + l < W) m |= 1u << l;
  }
  return static_cast<__mmask16>(m);
}

// The AVX-512 weight transforms: a panel's mr output channels in the lanes. Per input channel, 9
// gathers bring tap k of every row (rows C * 9 floats apart); transform(t, dst, stride, store)
// then writes the scheme's M matrices' entries for that channel, M runs of mr floats `stride`
// apart. They go through a block of 16 channels, [M][16][mr], copied out as M runs: the matrices
// lie xi_stride apart, often a multiple of 4 KiB, and stores straight into them fell in one L1 set.
template <int M, class Transform>
__attribute__((always_inline)) inline void weight_transform_avx512(float* u, int64_t xi_stride, const float* weight,
                                                                   int64_t OC, int64_t C, int64_t oc0, int mr,
                                                                   Transform transform) {
  const int rows = static_cast<int>(lesser(mr, OC - oc0));
  const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1), store = static_cast<__mmask16>((1u << mr) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(static_cast<int32_t>(C * 9)));
  constexpr int64_t kChunk = 16;
  float block[M * kChunk * 16];
  float* panel = u + oc0 * C;
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t cs = lesser(kChunk, C - c0);
    for (int64_t ci = 0; ci < cs; ++ci) {
      const float* w = weight + (oc0 * C + c0 + ci) * 9;
      __m512 t[9];
      for (int k = 0; k < 9; ++k) t[k] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, w + k, 4);
      transform(t, block + ci * mr, cs * mr, store);
    }
    for (int x = 0; x < M; ++x) {
      std::memcpy(panel + x * xi_stride + c0 * mr, block + x * cs * mr, static_cast<size_t>(cs * mr) * sizeof(float));
    }
  }
}

// Whether the AVX-512 weight transforms apply: their gathers' offsets reach 15 * C * 9 + 8 floats
// (within 32 bits for any C below 15 million), and a panel fits the 16 lanes.
inline bool weight_gathers_apply(int64_t C, int mr) { return mr <= 16 && C * 9 * 16 < INT32_MAX; }

void f43_weight_transform_avx512(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                 int mr) {
  weight_transform_avx512<36>(
      u, xi_stride, weight, OC, C, oc0, mr,
      [](const __m512(&t)[9], float* dst, int64_t stride, __mmask16 store) __attribute__((always_inline)) {
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
void f43_input_transform_permutes(float* v, const float* in, const Conv2dGeometry& g, int64_t t0) {
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
      const int count = static_cast<int>(lesser(lesser(4 - j0, grid.TW - tw), T - tile));
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

// The stride-2 input transform with AVX-512 without gathers. Within a tile row the patches of
// consecutive tiles start 4 columns apart, so element s of tiles tw .. tw + 7 is every 4th float
// of a 32-float run of the input row: one two-source permute picks it. Per channel and run of up
// to 8 tiles of a segment: the 5 patch rows are loaded (masked at the padding) as four vectors
// each (columns +0, +16 and, for element 4, +4 and +20), B^T is applied across the rows on whole
// vectors, then each of the 5 transformed rows is split into its 5 column phases by permutes and
// B^T is applied across them: 25 masked stores of up to 8 lanes. About 3x fewer micro-operations
// than 25 gathers per 16 lanes.
void s2_input_transform_permutes(float* v, const float* in, const Conv2dGeometry& g, int64_t t0) {
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
      run.count = lesser(8, sg.count - j0);
      for (int q = 0; q < 4; ++q) run.load[q] = columns_inside(run.col0 + kOff[q], 0, 16, g.W);
    }
  }
  // A channel's 25 x 32 values are assembled in e, then written to v a whole 32-lane row at a
  // time: v's rows for one channel lie C * 128 bytes apart, in one L1 set, and partial writes
  // run by run evicted each other (docs/PERFORMANCE.md, "assembles a channel in L1").
  alignas(64) float e[25 * LANES] = {};
  const int64_t plane_floats = g.H * g.W;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int ri = 0; ri < n_runs; ++ri) {
      const Run& run = runs[ri];
      const float* plane = run.image + c * plane_floats;
      const __mmask16 store_mask = static_cast<__mmask16>((1u << run.count) - 1);
      // Patch row r as four column runs (zeros above and below the image).
      const auto load_row = [&](int r, __m512(&x)[4]) __attribute__((always_inline)) {
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
void s2_weight_transform_avx512(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                int mr) {
  weight_transform_avx512<16>(
      u, xi_stride, weight, OC, C, oc0, mr,
      [](const __m512(&t)[9], float* dst, int64_t stride, __mmask16 store) __attribute__((always_inline)) {
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

void f43_weight(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0, int mr) {
  if (weight_gathers_apply(C, mr)) return f43_weight_transform_avx512(u, xi_stride, weight, OC, C, oc0, mr);
  f43_weight_transform_scalar(u, xi_stride, weight, OC, C, oc0, mr);
}

void s2_weight(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0, int mr) {
  if (weight_gathers_apply(C, mr)) return s2_weight_transform_avx512(u, xi_stride, weight, OC, C, oc0, mr);
  s2_weight_transform_scalar(u, xi_stride, weight, OC, C, oc0, mr);
}

void f43_input(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32 && grid_f43(g).TW >= 4) {
    if (grid_f43(g).TW % 4 == 0) return f43_input_transform_permutes<true>(v, in, g, t0);
    return f43_input_transform_permutes<false>(v, in, g, t0);
  }
  input_transform_lanes<Avx512, F43>(v, in, g, t0, lanes);
}

void s2_input(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32) return s2_input_transform_permutes(v, in, g, t0);
  input_transform_lanes<Avx512, S2>(v, in, g, t0, lanes);
}

}  // namespace

namespace avx512 {

const WinogradKernels& winograd_kernels() {
  static const WinogradKernels table{&f43_weight, &f43_input, &output_transform_lanes<Avx512, F43>,
                                     &s2_weight,  &s2_input,  &output_transform_lanes<Avx512, S2>};
  return table;
}

}  // namespace avx512
}  // namespace tinytorch::kernels

// What both Winograd schemes share (winograd_f43.cpp, winograd_s2.cpp): the tile grid, vector
// helpers, the patch segments and gathers' offset tables, the weight-transform skeletons, and the
// input and output transforms written once for both schemes as types (F43, S2) giving the patch
// size and the 1-D transforms. Every inner loop runs over the `lanes` tiles of one packed panel,
// which the compiler turns into AVX-512 or AVX2 arithmetic.
//
// Input patches come in one of two ways. With AVX-512, where a tile row is at least 4 tiles wide
// (F(4x4, 3x3)) or always (stride 2), they are picked out of windows of whole input rows by
// two-source permutes (in each scheme's file). Otherwise (AVX2, narrow images) through the
// hardware gathers (16 or 8 lanes, masked at the padding), from a table of offsets built once per
// panel. Output tiles are scattered a tile row at a time. Measurements: docs/PERFORMANCE.md.
// Private to src/kernels.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/contract.hpp"
#include "kernels/cpu.hpp"
#include "kernels/winograd.hpp"

namespace tinytorch::kernels::winograd_detail {

constexpr int kMaxLanes = 32;

// The tile grid of a layer: TH x TW tiles per image (4x4 outputs each at stride 1, 2x2 at stride
// 2). In both schemes a tile's input patch starts 4 input pixels after its neighbour's, at
// (4 * th - pad_top, 4 * tw - pad_left).
struct Grid {
  int64_t TH, TW;
};
inline Grid grid_f43(const Conv2dGeometry& g) { return {(g.OH + 3) / 4, (g.OW + 3) / 4}; }
inline Grid grid_s2(const Conv2dGeometry& g) { return {(g.OH + 1) / 2, (g.OW + 1) / 2}; }

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

// (always_inline: a 64-byte vector passed or returned by a real call needs the AVX-512 ABI, which
// clang refuses in functions compiled without it.)
inline __attribute__((always_inline)) v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline __attribute__((always_inline)) void store16(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }

// out[i * out_stride] = (B^T d)[i] for the 6 rows d[0..5] of one column of lanes. V is a GCC
// vector of floats (16 or 8 lanes).
template <class V>
inline __attribute__((always_inline)) void bt6(float* out, int64_t out_stride, const V (&d)[6]) {
  const V r[6] = {4.0f * d[0] - 5.0f * d[2] + d[4],   -4.0f * (d[1] + d[2]) + d[3] + d[4],
                  4.0f * (d[1] - d[2]) - d[3] + d[4], 2.0f * (d[3] - d[1]) - d[2] + d[4],
                  2.0f * (d[1] - d[3]) - d[2] + d[4], 4.0f * d[1] - 5.0f * d[3] + d[5]};
  for (int i = 0; i < 6; ++i) __builtin_memcpy(out + i * out_stride, &r[i], sizeof(V));
}

// dst[0 .. n) = src[0 .. n) in fixed-size moves: a loop here becomes a call to memcpy, which
// cost 12% of a 14x14 layer's time in ~14-float copies.
inline __attribute__((always_inline)) void copy_short(float* dst, const float* src, int64_t n) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) __builtin_memcpy(dst + j, src + j, 64);
  if (n - j >= 8) __builtin_memcpy(dst + j, src + j, 32), j += 8;
  if (n - j >= 4) __builtin_memcpy(dst + j, src + j, 16), j += 4;
  if (n - j >= 2) __builtin_memcpy(dst + j, src + j, 8), j += 2;
  if (n - j >= 1) __builtin_memcpy(dst + j, src + j, 4);
}

// A run of tiles of one tile row (same image n and tile row th, consecutive tw): the lanes
// [lane0, lane0 + count) of a panel.
struct Segment {
  int64_t n, th, tw0;
  int lane0, count;
};

// Splits tiles t0 .. t0 + lanes into segments; tiles past the grid are left out.
inline int segments_of(Segment* seg, const Conv2dGeometry& g, const Grid& grid, int64_t t0, int lanes) {
  const int64_t TH = grid.TH, TW = grid.TW, T = g.N * TH * TW;
  int count = 0;
  for (int t = 0; t < lanes && t0 + t < T;) {
    const int64_t tile = t0 + t, n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
    const int len = static_cast<int>(std::min<int64_t>(TW - tw, lanes - t));
    seg[count++] = Segment{n, th, tw, t, len};
    t += len;
  }
  return count;
}

// dst[4 * j + q] = y[q][j] for j < 16 (y[q] = y + q * stride): four rows interleaved into 64.
inline __attribute__((always_inline)) void interleave4(float* dst, const float* y, int64_t stride) {
  const v16 y0 = load16(y), y1 = load16(y + stride), y2 = load16(y + 2 * stride), y3 = load16(y + 3 * stride);
  // a/b: columns 0..7 of (y0, y1) and (y2, y3) paired; c/d: columns 8..15.
  const v16 a = __builtin_shufflevector(y0, y1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 b = __builtin_shufflevector(y2, y3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 c = __builtin_shufflevector(y0, y1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const v16 d = __builtin_shufflevector(y2, y3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  store16(dst, __builtin_shufflevector(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  store16(dst + 16, __builtin_shufflevector(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
  store16(dst + 32, __builtin_shufflevector(c, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  store16(dst + 48, __builtin_shufflevector(c, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
}

// Lanes [lo, hi) of a 16-float load of columns first .. first + 15 that lie inside [0, W).
inline __mmask16 columns_inside(int64_t first, int lo, int hi, int64_t W) {
  uint32_t m = 0;
  for (int l = lo; l < hi; ++l) {
    if (first + l >= 0 && first + l < W) m |= 1u << l;
  }
  return static_cast<__mmask16>(m);
}

// Whether a panel's input patches are addressable with 32-bit offsets (the gathers' index width):
// a panel of kMaxLanes tiles spans at most 1 + (kMaxLanes - 1) / tiles-per-image + 1 images.
inline bool offsets_fit(const Conv2dGeometry& g, const Grid& grid) {
  const int64_t images = std::min(g.N, (kMaxLanes - 1) / (grid.TH * grid.TW) + 2);
  return images * g.C * g.H * g.W <= INT32_MAX;
}

// G applied to 3 values (a column or a row of the 3x3 weight): 6 values. T: float, or a vector of
// floats holding the same computation for several output channels (the same expressions, so the
// same roundings).
template <class T>
inline __attribute__((always_inline)) void g6(T (&out)[6], const T& w0, const T& w1, const T& w2) {
  out[0] = 0.25f * w0;
  out[1] = (-1.0f / 6) * (w0 + w1 + w2);
  out[2] = (-1.0f / 6) * (w0 - w1 + w2);
  out[3] = (1.0f / 24) * w0 + (1.0f / 12) * w1 + (1.0f / 6) * w2;
  out[4] = (1.0f / 24) * w0 - (1.0f / 12) * w1 + (1.0f / 6) * w2;
  out[5] = w2;
}

// The weight transforms without AVX-512: for each output channel r < mr of the panel and input
// channel c, transform(w, dst, stride) writes the scheme's M matrices' entries from the 9 taps w,
// `stride` apart. Through a block of 16 input channels, [M][16][mr], copied out as M contiguous
// runs: writing each value straight to its own matrix would touch M pages per (oc, c) pair.
template <int M, class Transform>
void weight_transform_scalar(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                             int mr, Transform transform) {
  constexpr int64_t kChunk = 16;
  float block[M * kChunk * 16];  // mr <= 16
  float* panel = u + oc0 * C;    // panel oc0 / mr starts at (oc0 / mr) * C * mr = oc0 * C
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t cs = std::min(kChunk, C - c0);
    for (int64_t ci = 0; ci < cs; ++ci) {
      for (int64_t r = 0; r < mr; ++r) {
        float* dst = block + ci * mr + r;  // matrix x's (oc, c) at dst[x * cs * mr]
        const int64_t oc = oc0 + r, c = c0 + ci;
        if (oc >= OC) {
          for (int x = 0; x < M; ++x) dst[x * cs * mr] = 0.0f;
          continue;
        }
        transform(weight + (oc * C + c) * 9, dst, cs * mr);
      }
    }
    for (int x = 0; x < M; ++x) {
      std::memcpy(panel + x * xi_stride + c0 * mr, block + x * cs * mr, static_cast<size_t>(cs * mr) * sizeof(float));
    }
  }
}

// The AVX-512 weight transforms: a panel's mr output channels in the lanes. Per input channel, 9
// gathers bring tap k of every row (rows C * 9 floats apart); transform(t, dst, stride, store)
// then writes the scheme's M matrices' entries for that channel, M runs of mr floats `stride`
// apart. They go through a block of 16 channels, [M][16][mr], copied out as M runs: the matrices
// lie xi_stride apart, often a multiple of 4 KiB, and stores straight into them fell in one L1 set.
template <int M, class Transform>
__attribute__((target("avx512f"), always_inline)) inline void weight_transform_avx512(float* u, int64_t xi_stride,
                                                                                      const float* weight, int64_t OC,
                                                                                      int64_t C, int64_t oc0, int mr,
                                                                                      Transform transform) {
  const int rows = static_cast<int>(std::min<int64_t>(mr, OC - oc0));
  const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1), store = static_cast<__mmask16>((1u << mr) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(static_cast<int32_t>(C * 9)));
  constexpr int64_t kChunk = 16;
  float block[M * kChunk * 16];
  float* panel = u + oc0 * C;
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t cs = std::min(kChunk, C - c0);
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
inline bool weight_gathers_apply(int64_t C, int mr) {
  return cpu_isa() == Isa::Avx512 && mr <= 16 && C * 9 * 16 < INT32_MAX;
}

// Where each lane's S x S input patch lies, for the hardware gathers: idx[x][t] is the offset of
// element x = S * r + s of lane t's patch from the first image's channel plane, ok[x][t] is -1
// where that element is inside the image (0: padding, or a lane past the grid). The same for every
// channel; built once per panel. The offsets fit in 32 bits by offsets_fit.
template <int LANES, int S>
struct PatchTable {
  alignas(64) int32_t idx[S * S][LANES];
  alignas(64) int32_t ok[S * S][LANES];
  int64_t image0;  // the panel's first image
};

template <int LANES, int S>
void patch_table(PatchTable<LANES, S>& p, const Conv2dGeometry& g, const Grid& grid, int64_t t0) {
  const int64_t TH = grid.TH, TW = grid.TW, T = g.N * TH * TW, image_floats = g.C * g.H * g.W;
  p.image0 = t0 / (TH * TW);
  for (int t = 0; t < LANES; ++t) {
    const int64_t tile = t0 + t, n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
    const int64_t h0 = 4 * th - g.pad_top, w0 = 4 * tw - g.pad_left;
    for (int r = 0; r < S; ++r) {
      for (int s = 0; s < S; ++s) {
        const bool inside = tile < T && h0 + r >= 0 && h0 + r < g.H && w0 + s >= 0 && w0 + s < g.W;
        p.idx[S * r + s][t] =
            inside ? static_cast<int32_t>((n - p.image0) * image_floats + (h0 + r) * g.W + w0 + s) : 0;
        p.ok[S * r + s][t] = inside ? -1 : 0;
      }
    }
  }
}

// e[S * i + s][t] = (B^T d)[i][s] for lane t, where d[r][s] = plane[idx[S * r + s][t]] where ok,
// else 0: the hardware gathers (16 lanes with AVX-512, 8 with AVX2) feeding the first half of
// B^T d B, bt(out, stride, d) being the scheme's B^T on one column.
template <int LANES, int S, class BT>
__attribute__((target("avx512f"))) void gather_bt_avx512(float* e, const float* plane, const PatchTable<LANES, S>& p,
                                                         BT bt) {
  for (int s = 0; s < S; ++s) {
    for (int t = 0; t < LANES; t += 16) {
      v16 d[S];
      for (int r = 0; r < S; ++r) {
        const int x = S * r + s;
        const __mmask16 k = _mm512_test_epi32_mask(_mm512_load_si512(p.ok[x] + t), _mm512_set1_epi32(-1));
        d[r] = (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, _mm512_load_si512(p.idx[x] + t), plane, 4);
      }
      bt(e + s * LANES + t, S * LANES, d);
    }
  }
}
template <int LANES, int S, class BT>
__attribute__((always_inline)) inline void gather_bt_avx2(float* e, const float* plane, const PatchTable<LANES, S>& p,
                                                          BT bt) {
  for (int s = 0; s < S; ++s) {
    for (int t = 0; t < LANES; t += 8) {
      v8 d[S];
      for (int r = 0; r < S; ++r) {
        const int x = S * r + s;
        const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.idx[x] + t));
        const __m256 ok = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p.ok[x] + t)));
        d[r] = (v8)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), plane, idx, ok, 4);
      }
      bt(e + s * LANES + t, S * LANES, d);
    }
  }
}

// The two schemes. S: input patch side (points per dimension); O: outputs per tile side; bt/at:
// B^T on S values and A^T from S values to O, for one column of lanes (V: a GCC vector of floats).
struct F43 {
  static constexpr int S = 6, O = 4;
  static Grid grid(const Conv2dGeometry& g) { return grid_f43(g); }
  template <class V>
  static __attribute__((always_inline)) void bt(float* out, int64_t stride, const V (&d)[6]) {
    bt6(out, stride, d);
  }
  template <class V>
  static __attribute__((always_inline)) void at(V (&y)[4], const V (&m)[6]) {
    const V a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = b + 2.0f * d;
    y[2] = a + 4.0f * c;
    y[3] = b + 8.0f * d + m[5];
  }
};

// Stride 2 (see winograd.hpp): points (E0, E1, E2, O0, O1) from inputs x0..x4 of a tile.
struct S2 {
  static constexpr int S = 5, O = 2;
  static Grid grid(const Conv2dGeometry& g) { return grid_s2(g); }
  template <class V>
  static __attribute__((always_inline)) void bt(float* out, int64_t stride, const V (&d)[5]) {
    const V r[5] = {d[0] - d[2], d[2], d[4] - d[2], d[1], d[3]};
    for (int i = 0; i < 5; ++i) __builtin_memcpy(out + i * stride, &r[i], sizeof(V));
  }
  template <class V>
  static __attribute__((always_inline)) void at(V (&y)[2], const V (&m)[5]) {
    y[0] = m[0] + m[1] + m[3];
    y[1] = m[1] + m[2] + m[4];
  }
};

// dst[2 * j + q] = y[q][j] for j < 16: two rows interleaved into 32.
inline __attribute__((always_inline)) void interleave2(float* dst, const float* y, int64_t stride) {
  const v16 y0 = load16(y), y1 = load16(y + stride);
  store16(dst, __builtin_shufflevector(y0, y1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
  store16(dst + 16, __builtin_shufflevector(y0, y1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
}

template <class Scheme, int LANES, bool AVX512>
inline __attribute__((always_inline)) void input_transform(float* v, const float* in, const Conv2dGeometry& g,
                                                           int64_t t0) {
  constexpr int S = Scheme::S;
  alignas(64) float e[S * S * LANES];
  PatchTable<LANES, S> table;
  patch_table(table, g, Scheme::grid(g), t0);
  const auto bt = [](float* out, int64_t stride, const auto& d) __attribute__((always_inline)) {
    Scheme::bt(out, stride, d);
  };
  for (int64_t c = 0; c < g.C; ++c) {
    // Lane t's patch: input (4*th - pad_top + r, 4*tw - pad_left + s), 0 outside. B^T d over r
    // (for each column s) as it is gathered, then (B^T d) B over s (for each row), written
    // straight into the packed panels: v[xi][c][t], xi = S * row + col.
    const float* plane = in + (table.image0 * g.C + c) * g.H * g.W;
    if constexpr (AVX512) {
      gather_bt_avx512<LANES, S>(e, plane, table, bt);
    } else {
      gather_bt_avx2<LANES, S>(e, plane, table, bt);
    }
    const int64_t xs = winograd_v_stride(g.C, LANES);
    for (int r = 0; r < S; ++r) {
      const float* row = e + S * r * LANES;
      for (int t = 0; t < LANES; t += 16) {
        v16 d[S];
        for (int s = 0; s < S; ++s) d[s] = load16(row + s * LANES + t);
        Scheme::bt(v + S * r * xs + c * LANES + t, xs, d);
      }
    }
  }
}

// The scatter of output_transform with AVX-512: each segment's row span (lines[i] + O * lane0,
// line_stride floats per row i) to output channel oc, 16 floats per store, the last one masked.
// (The AVX2 twin in output_transform copies with copy_short: a shared loop would have to call
// this store out of line for every row.)
__attribute__((target("avx512f"))) inline void scatter_avx512(float* out, const float* lines, int line_stride, int O,
                                                              const Segment* seg, int segments, const Conv2dGeometry& g,
                                                              int64_t oc) {
  for (int si = 0; si < segments; ++si) {
    const Segment& sg = seg[si];
    float* plane = out + (sg.n * g.OC + oc) * g.OH * g.OW;
    const int64_t ow0 = O * sg.tw0, width = std::min<int64_t>(O * sg.count, g.OW - ow0);
    for (int i = 0; i < O; ++i) {
      const int64_t oh = O * sg.th + i;
      if (oh >= g.OH) break;
      float* dst = plane + oh * g.OW + ow0;
      const float* src = lines + i * line_stride + O * sg.lane0;
      int64_t j = 0;
      for (; j + 16 <= width; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
      if (j < width) {
        const __mmask16 k = static_cast<__mmask16>((1u << (width - j)) - 1);
        _mm512_mask_storeu_ps(dst + j, k, _mm512_maskz_loadu_ps(k, src + j));
      }
    }
  }
}

template <class Scheme, int LANES, bool AVX512>
inline __attribute__((always_inline)) void output_transform(float* out, const float* m, int64_t xs, const float* bias,
                                                            const Conv2dGeometry& g, int64_t oc0, int rows,
                                                            int64_t t0) {
  constexpr int S = Scheme::S, O = Scheme::O;
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, Scheme::grid(g), t0, LANES);
  alignas(64) float e[O * S * LANES], y[O * O * LANES];
  alignas(64) float lines[O][O * kMaxLanes];  // output row i of lane t's tile at lines[i][O * t ..]
  for (int r = 0; r < rows; ++r) {
    // A^T m: [O][S] per lane, over the S rows of the S x S; then (A^T m) A: [O][O].
    const float* mr = m + r * LANES;  // m[xi][r][t] at mr[xi * xs + t]
    for (int s = 0; s < S; ++s) {
      const float* col = mr + s * xs;  // m[S * row + s] at col[row * S * xs]
      for (int t = 0; t < LANES; t += 16) {
        v16 mc[S], yc[O];
        for (int i = 0; i < S; ++i) mc[i] = load16(col + i * S * xs + t);
        Scheme::at(yc, mc);
        for (int i = 0; i < O; ++i) store16(e + (i * S + s) * LANES + t, yc[i]);
      }
    }
    const float add = bias ? bias[oc0 + r] : 0.0f;
    for (int i = 0; i < O; ++i) {
      const float* ei = e + i * S * LANES;
      for (int t = 0; t < LANES; t += 16) {
        v16 mc[S], yc[O];
        for (int j = 0; j < S; ++j) mc[j] = load16(ei + j * LANES + t);
        Scheme::at(yc, mc);
        for (int j = 0; j < O; ++j) store16(y + (i * O + j) * LANES + t, yc[j] + add);
      }
    }
    // Scatter: interleave the O columns of every tile's output rows (a segment's tiles are then
    // one row span each) and copy, per segment and row, the part inside OH x OW.
    for (int i = 0; i < O; ++i) {
      for (int j = 0; j < LANES; j += 16) {
        if constexpr (O == 4) {
          interleave4(lines[i] + 4 * j, y + i * 4 * LANES + j, LANES);
        } else {
          interleave2(lines[i] + 2 * j, y + i * 2 * LANES + j, LANES);
        }
      }
    }
    if constexpr (AVX512) {
      scatter_avx512(out, &lines[0][0], O * kMaxLanes, O, seg, segments, g, oc0 + r);
    } else {
      for (int si = 0; si < segments; ++si) {
        const Segment& sg = seg[si];
        float* plane = out + (sg.n * g.OC + oc0 + r) * g.OH * g.OW;
        const int64_t ow0 = O * sg.tw0, width = std::min<int64_t>(O * sg.count, g.OW - ow0);
        for (int i = 0; i < O; ++i) {
          const int64_t oh = O * sg.th + i;
          if (oh >= g.OH) break;
          copy_short(plane + oh * g.OW + ow0, lines[i] + O * sg.lane0, width);
        }
      }
    }
  }
}

// Compiled for both ISAs and both panel widths: 32 lanes (the AVX-512 micro-kernel's NR) are two
// zmm per row, 16 lanes (AVX2's NR) two ymm; cpu_isa() picks.
template <class Scheme>
__attribute__((target("avx512f"))) void input_transform_avx512(float* v, const float* in, const Conv2dGeometry& g,
                                                               int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<Scheme, 32, true>(v, in, g, t0);
  input_transform<Scheme, 16, true>(v, in, g, t0);
}
template <class Scheme>
void input_transform_avx2(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<Scheme, 32, false>(v, in, g, t0);
  input_transform<Scheme, 16, false>(v, in, g, t0);
}
template <class Scheme>
__attribute__((target("avx512f"))) void output_transform_avx512(float* out, const float* m, int64_t xs,
                                                                const float* bias, const Conv2dGeometry& g, int64_t oc0,
                                                                int rows, int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<Scheme, 32, true>(out, m, xs, bias, g, oc0, rows, t0);
  output_transform<Scheme, 16, true>(out, m, xs, bias, g, oc0, rows, t0);
}
template <class Scheme>
void output_transform_avx2(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                           int64_t oc0, int rows, int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<Scheme, 32, false>(out, m, xs, bias, g, oc0, rows, t0);
  output_transform<Scheme, 16, false>(out, m, xs, bias, g, oc0, rows, t0);
}

template <class Scheme>
void input_transform_for(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    input_transform_avx512<Scheme>(v, in, g, t0, lanes);
  } else {
    input_transform_avx2<Scheme>(v, in, g, t0, lanes);
  }
}

template <class Scheme>
void output_transform_for(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                          int64_t oc0, int rows, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    output_transform_avx512<Scheme>(out, m, xs, bias, g, oc0, rows, t0, lanes);
  } else {
    output_transform_avx2<Scheme>(out, m, xs, bias, g, oc0, rows, t0, lanes);
  }
}

}  // namespace tinytorch::kernels::winograd_detail

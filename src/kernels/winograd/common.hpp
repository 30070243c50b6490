// What every ISA of the Winograd kernels shares (winograd/avx2.cpp, winograd/avx512.cpp,
// winograd/winograd.cpp): the tile grid, GCC vectors of floats, the patch segments and the gathers'
// offset tables, the two schemes' 1-D transforms as types (F43, S2), and the weight transforms in
// plain C++. Every inner loop runs over the tiles of one packed panel, which the compiler turns into
// the including file's vector instructions. Internal linkage throughout (each ISA file has its own
// copy): see ARCHITECTURE.md, "ISA".
#pragma once

#include <immintrin.h>

#include <climits>
#include <cstdint>
#include <cstring>

#include "kernels/simd/scalar.hpp"
#include "kernels/winograd/winograd.hpp"

namespace tinytorch::kernels {
namespace {

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
    const int len = static_cast<int>(lesser(TW - tw, lanes - t));
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

// Whether a panel's input patches are addressable with 32-bit offsets (the gathers' index width):
// a panel of kMaxLanes tiles spans at most 1 + (kMaxLanes - 1) / tiles-per-image + 1 images.
inline bool offsets_fit(const Conv2dGeometry& g, const Grid& grid) {
  const int64_t images = lesser(g.N, (kMaxLanes - 1) / (grid.TH * grid.TW) + 2);
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

// The weight transforms in plain C++: for each output channel r < mr of the panel and input
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
    const int64_t cs = lesser(kChunk, C - c0);
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

// The two schemes' weight transforms (winograd.hpp) in plain C++.
inline void f43_weight_transform_scalar(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C,
                                        int64_t oc0, int mr) {
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

inline void s2_weight_transform_scalar(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C,
                                       int64_t oc0, int mr) {
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

}  // namespace
}  // namespace tinytorch::kernels

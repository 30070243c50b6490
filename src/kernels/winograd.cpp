// Winograd weight, input and output transforms of both schemes (F(4x4, 3x3) at stride 1, the 5x5
// scheme at stride 2; see winograd.hpp), vectorized across tiles: every inner loop runs over the
// `lanes` tiles of one packed panel, which the compiler turns into AVX-512 or AVX2 arithmetic.
// The schemes share the code, as types (F43, S2) giving the patch size and the 1-D transforms.
// Input patches come in one of two ways. With AVX-512, where a tile row is at least 4 tiles wide
// (F(4x4, 3x3)) or always (stride 2), they are picked out of windows of whole input rows by
// two-source permutes, about 1.3-2x faster than gathers. Otherwise (AVX2, narrow images) through
// the hardware gathers (16 or 8 lanes, masked at the padding), from a table of offsets built once
// per panel: on 14x14 to 56x56 images that beat copying tile rows through a zero-padded buffer by
// 1.3-4x. Output tiles are scattered a tile row at a time.
#include "kernels/winograd.hpp"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/contract.hpp"
#include "kernels/cpu.hpp"

namespace tinytorch::kernels {
namespace {

constexpr int kMaxLanes = 32;

// The tile grid of a layer: TH x TW tiles per image (4x4 outputs each at stride 1, 2x2 at stride
// 2). In both schemes a tile's input patch starts 4 input pixels after its neighbour's, at
// (4 * th - pad_top, 4 * tw - pad_left).
struct Grid {
  int64_t TH, TW;
};
Grid grid_f43(const Conv2dGeometry& g) { return {(g.OH + 3) / 4, (g.OW + 3) / 4}; }
Grid grid_s2(const Conv2dGeometry& g) { return {(g.OH + 1) / 2, (g.OW + 1) / 2}; }

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
int segments_of(Segment* seg, const Conv2dGeometry& g, const Grid& grid, int64_t t0, int lanes) {
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
bool offsets_fit(const Conv2dGeometry& g, const Grid& grid) {
  const int64_t images = std::min(g.N, (kMaxLanes - 1) / (grid.TH * grid.TW) + 2);
  return images * g.C * g.H * g.W <= INT32_MAX;
}

}  // namespace

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

namespace {

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

// Whether the AVX-512 weight transforms apply: their gathers' offsets reach 15 * C * 9 + 8 floats
// (within 32 bits for any C below 15 million), and a panel fits the 16 lanes.
bool weight_gathers_apply(int64_t C, int mr) { return cpu_isa() == Isa::Avx512 && mr <= 16 && C * 9 * 16 < INT32_MAX; }

}  // namespace

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

namespace {

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
__attribute__((target("avx512f"))) void scatter_avx512(float* out, const float* lines, int line_stride, int O,
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

bool winograd_s2_supports(const Conv2dGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.groups == 1 && offsets_fit(g, grid_s2(g));
}

int64_t winograd_s2_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_s2(g);
  return g.N * grid.TH * grid.TW;
}

int64_t winograd_f43_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_f43(g);
  return g.N * grid.TH * grid.TW;
}

namespace {

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

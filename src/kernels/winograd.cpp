// Winograd F(4x4, 3x3) weight, input and output transforms, vectorized across tiles: every
// inner loop runs over the `lanes` tiles of one packed panel, which the compiler turns into
// AVX-512 or AVX2 arithmetic. Input patches come in through the hardware gathers (16 or 8 lanes,
// masked at the padding), from a table of offsets built once per panel: on 14x14 to 56x56 images
// that beat copying tile rows through a zero-padded buffer by 1.3-4x. Output tiles are scattered a
// tile row at a time.
#include "kernels/winograd.hpp"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "kernels/cpu.hpp"

namespace tinytorch::kernels {
namespace {

constexpr int kMaxLanes = 32;

int64_t tiles_h(const Conv2dGeometry& g) { return (g.OH + 3) / 4; }
int64_t tiles_w(const Conv2dGeometry& g) { return (g.OW + 3) / 4; }

typedef float v16 __attribute__((vector_size(64)));

inline v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }

// out[i * out_stride] = (B^T d)[i] for the 6 rows d[0..5] of one column of lanes. V is a GCC
// vector of floats (16 or 8 lanes).
template <class V>
inline __attribute__((always_inline)) void bt6(float* out, int64_t out_stride, const V (&d)[6]) {
  const V r[6] = {4.0f * d[0] - 5.0f * d[2] + d[4],     -4.0f * (d[1] + d[2]) + d[3] + d[4],
                  4.0f * (d[1] - d[2]) - d[3] + d[4],  2.0f * (d[3] - d[1]) - d[2] + d[4],
                  2.0f * (d[1] - d[3]) - d[2] + d[4],  4.0f * d[1] - 5.0f * d[3] + d[5]};
  for (int i = 0; i < 6; ++i) __builtin_memcpy(out + i * out_stride, &r[i], sizeof(V));
}

// out (6 rows, out_stride apart) = B^T in (6 rows, in_stride apart), each row `lanes` wide.
template <int LANES>
inline __attribute__((always_inline)) void bt_rows(float* out, int64_t out_stride, const float* in, int64_t in_stride) {
  for (int t = 0; t < LANES; t += 16) {
    const v16 d[6] = {load16(in + t),                 load16(in + in_stride + t),     load16(in + 2 * in_stride + t),
                      load16(in + 3 * in_stride + t), load16(in + 4 * in_stride + t), load16(in + 5 * in_stride + t)};
    bt6(out + t, out_stride, d);
  }
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
int segments_of(Segment* seg, const Conv2dGeometry& g, int64_t t0, int lanes) {
  const int64_t TH = tiles_h(g), TW = tiles_w(g), T = g.N * TH * TW;
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
  // A panel of kMaxLanes tiles spans at most 1 + (kMaxLanes - 1) / tiles-per-image + 1 images.
  const int64_t images = std::min(g.N, (kMaxLanes - 1) / (tiles_h(g) * tiles_w(g)) + 2);
  return images * g.C * g.H * g.W <= INT32_MAX;
}

void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr) {
  // Transformed into a local block of 16 input channels, [36][16][mr], then copied out as 36
  // contiguous runs: writing each value straight to its own xi matrix would touch 36 pages per
  // (oc, c) pair.
  constexpr int64_t kChunk = 16;
  float block[36 * kChunk * 16];  // mr <= 16
  float* panel = u + oc0 * C;     // panel oc0 / mr starts at (oc0 / mr) * C * mr = oc0 * C
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t cs = std::min(kChunk, C - c0);
    for (int64_t ci = 0; ci < cs; ++ci) {
      for (int64_t r = 0; r < mr; ++r) {
        float* dst = block + ci * mr + r;  // U[xi] (oc, c) at dst[xi * cs * mr]
        const int64_t oc = oc0 + r, c = c0 + ci;
        if (oc >= OC) {
          for (int xi = 0; xi < 36; ++xi) dst[xi * cs * mr] = 0.0f;
          continue;
        }
        const float* w = weight + (oc * C + c) * 9;
        // G w: [6, 3], then (G w) G^T: [6, 6].
        float gw[6][3];
        for (int j = 0; j < 3; ++j) {
          const float w0 = w[j], w1 = w[3 + j], w2 = w[6 + j];
          gw[0][j] = 0.25f * w0;
          gw[1][j] = (-1.0f / 6) * (w0 + w1 + w2);
          gw[2][j] = (-1.0f / 6) * (w0 - w1 + w2);
          gw[3][j] = (1.0f / 24) * w0 + (1.0f / 12) * w1 + (1.0f / 6) * w2;
          gw[4][j] = (1.0f / 24) * w0 - (1.0f / 12) * w1 + (1.0f / 6) * w2;
          gw[5][j] = w2;
        }
        for (int i = 0; i < 6; ++i) {
          const float w0 = gw[i][0], w1 = gw[i][1], w2 = gw[i][2];
          const float row[6] = {0.25f * w0,
                                (-1.0f / 6) * (w0 + w1 + w2),
                                (-1.0f / 6) * (w0 - w1 + w2),
                                (1.0f / 24) * w0 + (1.0f / 12) * w1 + (1.0f / 6) * w2,
                                (1.0f / 24) * w0 - (1.0f / 12) * w1 + (1.0f / 6) * w2,
                                w2};
          for (int j = 0; j < 6; ++j) dst[(i * 6 + j) * cs * mr] = row[j];
        }
      }
    }
    for (int xi = 0; xi < 36; ++xi) {
      std::memcpy(panel + xi * xi_stride + c0 * mr, block + xi * cs * mr, static_cast<size_t>(cs * mr) * sizeof(float));
    }
  }
}

namespace {

// Where each lane's 6x6 input patch lies, for the hardware gathers: idx[x][t] is the offset of
// element x = 6 * r + s of lane t's patch from the first image's channel plane, ok[x][t] is -1 where
// that element is inside the image (0: padding, or a lane past the grid). The same for every
// channel; built once per panel. The offsets fit in 32 bits by winograd_f43_supports.
template <int LANES>
struct PatchTable {
  alignas(64) int32_t idx[36][LANES];
  alignas(64) int32_t ok[36][LANES];
  int64_t image0;  // the panel's first image
};

template <int LANES>
void patch_table(PatchTable<LANES>& p, const Conv2dGeometry& g, int64_t t0) {
  const int64_t TH = tiles_h(g), TW = tiles_w(g), T = g.N * TH * TW, image_floats = g.C * g.H * g.W;
  p.image0 = t0 / (TH * TW);
  for (int t = 0; t < LANES; ++t) {
    const int64_t tile = t0 + t, n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
    const int64_t h0 = 4 * th - g.pad_top, w0 = 4 * tw - g.pad_left;
    for (int r = 0; r < 6; ++r) {
      for (int s = 0; s < 6; ++s) {
        const bool inside = tile < T && h0 + r >= 0 && h0 + r < g.H && w0 + s >= 0 && w0 + s < g.W;
        p.idx[6 * r + s][t] = inside ? static_cast<int32_t>((n - p.image0) * image_floats + (h0 + r) * g.W + w0 + s) : 0;
        p.ok[6 * r + s][t] = inside ? -1 : 0;
      }
    }
  }
}

// e[6 * i + s][t] = (B^T d)[i][s] for lane t, where d[r][s] = plane[idx[6 * r + s][t]] where ok, else 0:
// the hardware gathers (16 lanes with AVX-512, 8 with AVX2) feeding the first half of B^T d B.
template <int LANES>
__attribute__((target("avx512f"))) void gather_bt_avx512(float* e, const float* plane, const PatchTable<LANES>& p) {
  for (int s = 0; s < 6; ++s) {
    for (int t = 0; t < LANES; t += 16) {
      v16 d[6];
      for (int r = 0; r < 6; ++r) {
        const int x = 6 * r + s;
        const __mmask16 k = _mm512_test_epi32_mask(_mm512_load_si512(p.ok[x] + t), _mm512_set1_epi32(-1));
        d[r] = (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, _mm512_load_si512(p.idx[x] + t), plane, 4);
      }
      bt6(e + s * LANES + t, 6 * LANES, d);
    }
  }
}
template <int LANES>
__attribute__((always_inline)) inline void gather_bt_avx2(float* e, const float* plane, const PatchTable<LANES>& p) {
  typedef float v8 __attribute__((vector_size(32)));
  for (int s = 0; s < 6; ++s) {
    for (int t = 0; t < LANES; t += 8) {
      v8 d[6];
      for (int r = 0; r < 6; ++r) {
        const int x = 6 * r + s;
        const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.idx[x] + t));
        const __m256 ok = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p.ok[x] + t)));
        d[r] = (v8)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), plane, idx, ok, 4);
      }
      bt6(e + s * LANES + t, 6 * LANES, d);
    }
  }
}

template <int LANES, bool AVX512>
inline __attribute__((always_inline)) void input_transform(float* v, const float* in, const Conv2dGeometry& g,
                                                           int64_t t0) {
  constexpr int lanes = LANES;
  alignas(64) float e[36 * lanes];
  PatchTable<LANES> table;
  patch_table(table, g, t0);
  for (int64_t c = 0; c < g.C; ++c) {
    // Lane t's patch: input (4*th - pad_top + r, 4*tw - pad_left + s), 0 outside. B^T d over r
    // (for each column s) as it is gathered, then (B^T d) B over s (for each row), written
    // straight into the packed panels: v[xi][c][t], xi = 6 * row + col.
    const float* plane = in + (table.image0 * g.C + c) * g.H * g.W;
    if constexpr (AVX512) {
      gather_bt_avx512<LANES>(e, plane, table);
    } else {
      gather_bt_avx2<LANES>(e, plane, table);
    }
    const int64_t xs = g.C * lanes;
    for (int r = 0; r < 6; ++r) bt_rows<LANES>(v + (6 * r * g.C + c) * lanes, xs, e + 6 * r * lanes, lanes);
  }
}

template <int LANES>
inline __attribute__((always_inline)) void output_transform(float* out, const float* m, const float* bias,
                                                            const Conv2dGeometry& g, int64_t oc0, int rows,
                                                            int64_t t0) {
  constexpr int lanes = LANES;
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, t0, lanes);
  constexpr int YS = LANES;
  alignas(64) float e[24 * lanes], y[16 * YS];
  alignas(64) float lines[4][4 * kMaxLanes];  // output row i of lane t's tile at lines[i][4 * t ..]
  const int64_t xs = static_cast<int64_t>(rows) * lanes;
  for (int r = 0; r < rows; ++r) {
    // A^T m: [4][6] per lane, over the 6 rows of the 6x6; then (A^T m) A: [4][4].
    const float* mr = m + r * lanes;  // m[xi][r][t] at mr[xi * xs + t]
    for (int s = 0; s < 6; ++s) {
      const float* col = mr + s * xs;  // m[6 * row + s] at col[row * 6 * xs]
      for (int t = 0; t < lanes; t += 16) {
        const v16 m0 = load16(col + t), m1 = load16(col + 6 * xs + t), m2 = load16(col + 12 * xs + t),
                  m3 = load16(col + 18 * xs + t), m4 = load16(col + 24 * xs + t), m5 = load16(col + 30 * xs + t);
        const v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        store16(e + (0 * 6 + s) * lanes + t, m0 + a + c);
        store16(e + (1 * 6 + s) * lanes + t, b + 2.0f * d);
        store16(e + (2 * 6 + s) * lanes + t, a + 4.0f * c);
        store16(e + (3 * 6 + s) * lanes + t, b + 8.0f * d + m5);
      }
    }
    const float add = bias ? bias[oc0 + r] : 0.0f;
    for (int i = 0; i < 4; ++i) {
      const float* ei = e + i * 6 * lanes;
      for (int t = 0; t < lanes; t += 16) {
        const v16 m0 = load16(ei + t), m1 = load16(ei + lanes + t), m2 = load16(ei + 2 * lanes + t),
                  m3 = load16(ei + 3 * lanes + t), m4 = load16(ei + 4 * lanes + t), m5 = load16(ei + 5 * lanes + t);
        const v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        store16(y + (i * 4 + 0) * YS + t, m0 + a + c + add);
        store16(y + (i * 4 + 1) * YS + t, b + 2.0f * d + add);
        store16(y + (i * 4 + 2) * YS + t, a + 4.0f * c + add);
        store16(y + (i * 4 + 3) * YS + t, b + 8.0f * d + m5 + add);
      }
    }
    // Scatter: interleave the 4 columns of every tile's output rows (a segment's tiles are then
    // one row span each) and copy, per segment and row, the part inside OH x OW.
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < lanes; j += 16) interleave4(lines[i] + 4 * j, y + i * 4 * YS + j, YS);
    for (int si = 0; si < segments; ++si) {
      const Segment& sg = seg[si];
      float* plane = out + (sg.n * g.OC + oc0 + r) * g.OH * g.OW;
      const int64_t ow0 = 4 * sg.tw0, width = std::min<int64_t>(4 * sg.count, g.OW - ow0);
      for (int i = 0; i < 4; ++i) {
        const int64_t oh = 4 * sg.th + i;
        if (oh >= g.OH) break;
        copy_short(plane + oh * g.OW + ow0, lines[i] + 4 * sg.lane0, width);
      }
    }
  }
}

// Compiled for both ISAs and both panel widths: 32 lanes (the AVX-512 micro-kernel's NR) are two
// zmm per row, 16 lanes (AVX2's NR) two ymm; cpu_isa() picks.
__attribute__((target("avx512f"))) void input_transform_avx512(float* v, const float* in, const Conv2dGeometry& g,
                                                               int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<32, true>(v, in, g, t0);
  input_transform<16, true>(v, in, g, t0);
}
void input_transform_avx2(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<32, false>(v, in, g, t0);
  input_transform<16, false>(v, in, g, t0);
}
__attribute__((target("avx512f"))) void output_transform_avx512(float* out, const float* m, const float* bias,
                                                                const Conv2dGeometry& g, int64_t oc0, int rows,
                                                                int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<32>(out, m, bias, g, oc0, rows, t0);
  output_transform<16>(out, m, bias, g, oc0, rows, t0);
}
void output_transform_avx2(float* out, const float* m, const float* bias, const Conv2dGeometry& g, int64_t oc0,
                           int rows, int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<32>(out, m, bias, g, oc0, rows, t0);
  output_transform<16>(out, m, bias, g, oc0, rows, t0);
}

}  // namespace

void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    input_transform_avx512(v, in, g, t0, lanes);
  } else {
    input_transform_avx2(v, in, g, t0, lanes);
  }
}

void winograd_f43_output_transform(float* out, const float* m, const float* bias, const Conv2dGeometry& g, int64_t oc0,
                                   int rows, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    output_transform_avx512(out, m, bias, g, oc0, rows, t0, lanes);
  } else {
    output_transform_avx2(out, m, bias, g, oc0, rows, t0, lanes);
  }
}

}  // namespace tinytorch::kernels

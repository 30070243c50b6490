// Depthwise convolution (groups == C, each input channel feeding OC / C output channels), with
// vectors across output channels, written once for any GCC vector of floats V (8 floats with AVX2,
// 16 with AVX-512): V's width in consecutive output channels of one image are a block, the input
// rows a band of output rows needs are copied zero-padded and interleaved by channel, every tap of
// every output pixel is one multiply-add of whole vectors, and the output band is transposed back to
// its planes. Any kernel size, stride, dilation and width takes whole vectors. Included by the ISA
// files depthwise/avx2.cpp and avx512.cpp, and by depthwise.cpp for the scratch layout; internal
// linkage throughout (see ARCHITECTURE.md, "ISA"). Reference counterpart: conv2d_forward_reference.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/conv2d.hpp"
#include "kernels/simd/scalar.hpp"

namespace tinytorch::kernels {
namespace {

typedef float v8 __attribute__((vector_size(32)));  // 8 floats: one ymm

// sizeof(V) / 4 floats from p, any alignment.
template <class V>
inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// The float at p in every lane: a broadcast load (GCC's form of a loop over lanes merged
// neighbouring ones into one load and shuffles, the shuffle port's bottleneck).
template <class V>
inline V splat(const float* p) {
  if constexpr (sizeof(V) == 32) {
    return reinterpret_cast<V>(_mm256_broadcast_ss(p));
  } else {
    return reinterpret_cast<V>(_mm512_set1_ps(*p));
  }
}

// 8x8 transpose of r[0..8) (row i: 8 floats) in place: r[j] becomes column j. Three rounds of
// two-input shuffles (unpack, 64-bit pairs, 128-bit halves), 24 in all.
inline __attribute__((always_inline)) void transpose8(v8* r) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // rows 2i, 2i+1: columns 0, 1, 4, 5
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // columns 2, 3, 6, 7
  }
  // u[i], u[4 + i]: columns i and i + 4 of rows 0-3 and of rows 4-7
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

// Interleaves n columns of 8 rows: dst[c * ld + j] = src[j][c] for j < 8, c < n.
inline __attribute__((always_inline)) void interleave8(float* dst, int64_t ld, const float* const* src, int64_t n) {
  if (n < 8) {
    for (int64_t c = 0; c < n; ++c)
      for (int j = 0; j < 8; ++j) dst[c * ld + j] = src[j][c];
    return;
  }
  for (int64_t c = 0;; c += 8) {
    if (c + 8 > n) c = n - 8;  // the last block overlaps the one before: it rewrites equal values
    v8 r[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) r[j] = load<v8>(src[j] + c);
    transpose8(r);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) __builtin_memcpy(dst + (c + k) * ld, &r[k], sizeof(v8));
    if (c + 8 == n) break;
  }
}

// The inverse, for the first `rows` of 8 rows: dst[j][c] = src[c * ld + j] for j < rows, c < n.
inline __attribute__((always_inline)) void deinterleave8(float* const* dst, int rows, const float* src, int64_t ld,
                                                         int64_t n) {
  if (n < 8) {
    for (int64_t c = 0; c < n; ++c)
      for (int j = 0; j < rows; ++j) dst[j][c] = src[c * ld + j];
    return;
  }
  for (int64_t c = 0;; c += 8) {
    if (c + 8 > n) c = n - 8;  // overlapping last block, as in interleave8
    v8 r[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) r[k] = load<v8>(src + (c + k) * ld);
    transpose8(r);
    for (int j = 0; j < rows; ++j) __builtin_memcpy(dst[j] + c, &r[j], sizeof(v8));
    if (c + 8 == n) break;
  }
}

// --- the channel-blocked path ----------------------------------------------------------------------
// Layout of the scratch, in floats (L = lanes): weights [taps][L], bias [L], the interleaved output
// band [band rows][OW][L], the padded input band [rows][cols][L], and for narrow images a staging
// buffer [rows][W][L]. Unused lanes (past OC) hold zeros.

int64_t band_input_rows(const Conv2dGeometry& g, int64_t band_rows) {
  return (band_rows - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
}

int64_t band_input_cols(const Conv2dGeometry& g) { return (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1; }

// Input rows shorter than a vector are interleaved through a staging buffer (see depthwise_block).
bool narrow(const Conv2dGeometry& g) { return g.W < 8; }

// U consecutive output pixels of one row, all taps: each weight vector is loaded once and feeds U
// accumulators; each tap of each pixel is one input vector (a memory operand of its multiply-add).
// S > 0: the stride along the row is S and the window's columns are adjacent (dilation 1), known
// at compile time, so that every input vector's address is a base register and a constant: with
// the stride read at run time GCC kept U offsets, which with AVX2's 16 registers spilled (5 loads
// from the stack per 7 multiply-adds, perf annotate). S == 0: any stride and dilation.
template <class V, int U, int S>
inline __attribute__((always_inline)) void block_pixels(float* row_out, const float* base, const float* wt,
                                                        const float* bias, int64_t ow, const Conv2dGeometry& g,
                                                        int64_t cols) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  V acc[U];
  const V b = load<V>(bias);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) acc[u] = b;
  const int64_t step = S > 0 ? S * L : g.stride_w * L;  // between neighbouring output pixels
  const int64_t tap = S > 0 ? L : g.dilation_w * L;     // between neighbouring window columns
  const float* first = base + ow * step;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const float* rowp = first + kh * g.dilation_h * cols * L;
    const float* wrow = wt + kh * g.KW * L;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const V w = load<V>(wrow + kw * L);
      const float* p = rowp + kw * tap;
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) acc[u] += w * load<V>(p + u * step);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) __builtin_memcpy(row_out + (ow + u) * L, &acc[u], sizeof(V));
}

// block_pixels for the n (0-7) pixels left at the end of a row: U = n at compile time.
template <class V, int S, int U = 7>
inline __attribute__((always_inline)) void block_rest(int64_t n, float* row_out, const float* base, const float* wt,
                                                      const float* bias, int64_t ow, const Conv2dGeometry& g,
                                                      int64_t cols) {
  if constexpr (U > 0) {
    if (n == U) return block_pixels<V, U, S>(row_out, base, wt, bias, ow, g, cols);
    block_rest<V, S, U - 1>(n, row_out, base, wt, bias, ow, g, cols);
  }
}

// The output rows [oh0, oh1) of a band from its padded input (block_pixels' S).
template <class V, int S>
inline __attribute__((always_inline)) void block_rows(float* band_out, const float* padded, const float* wt,
                                                      const float* bias, int64_t oh0, int64_t oh1, int64_t cols,
                                                      const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* base = padded + (oh - oh0) * g.stride_h * cols * L;
    float* row_out = band_out + (oh - oh0) * g.OW * L;
    int64_t ow = 0;
    for (; ow + 8 <= g.OW; ow += 8) block_pixels<V, 8, S>(row_out, base, wt, bias, ow, g, cols);
    block_rest<V, S>(g.OW - ow, row_out, base, wt, bias, ow, g, cols);  // the rest of the row in one pass
  }
}

// The input rows [oh0 * stride_h - pad_top, ...) that output rows oh0 .. oh0 + band read, zero-padded:
// `rows` rows of `cols` pixels, at lane j the input channel c of output channel oc0 + j's group
// (depthwise: its one input channel). Lanes past OC (lanes of them are real) repeat the last
// channel. Narrow images stage all their rows at padded + rows * cols * L first (see narrow).
template <class V>
inline __attribute__((always_inline)) void padded_band(float* padded, const float* in, int64_t oc0, int64_t lanes,
                                                       int64_t oh0, int64_t rows, int64_t cols, int64_t c,
                                                       const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t OCG = g.OC / g.groups, CG = g.C / g.groups;
  // Each lane's input plane, found once (a division per lane and row cost more than the
  // multiply-adds of a small image's band).
  const float* plane[L];
  for (int64_t j = 0; j < L; ++j) plane[j] = in + ((oc0 + lesser(j, lanes - 1)) / OCG * CG + c) * g.H * g.W;
  auto sources = [&](const float** src, int64_t j0, int64_t ih, int64_t iw) {
    for (int64_t j = 0; j < 8; ++j) src[j] = plane[j0 + j] + ih * g.W + iw;
  };
  const int64_t lo = lesser(cols, g.pad_left), hi = clamp_to(g.W + g.pad_left, lo, cols);
  const int64_t r0 = clamp_to(g.pad_top - oh0 * g.stride_h, 0, rows);  // rows [r0, r1) are inside
  const int64_t r1 = clamp_to(g.H + g.pad_top - oh0 * g.stride_h, r0, rows);
  zero_floats(padded, r0 * cols * L);
  zero_floats(padded + r1 * cols * L, (rows - r1) * cols * L);
  for (int64_t r = r0; r < r1; ++r) {
    float* dst = padded + r * cols * L;
    zero_floats(dst, lo * L);
    zero_floats(dst + hi * L, (cols - hi) * L);
  }
  if (narrow(g) && r1 > r0) {
    // Rows shorter than a vector: interleave all the band's rows as one run (a plane's rows are
    // contiguous) into `stage`, then place each row.
    float* stage = padded + rows * cols * L;
    for (int64_t j0 = 0; j0 < L; j0 += 8) {
      const float* src[8];
      sources(src, j0, oh0 * g.stride_h + r0 - g.pad_top, 0);
      interleave8(stage + j0, L, src, (r1 - r0) * g.W);
    }
    for (int64_t r = r0; r < r1 && hi > lo; ++r) {
      __builtin_memcpy(padded + (r * cols + lo) * L, stage + ((r - r0) * g.W + lo - g.pad_left) * L,
                       static_cast<size_t>((hi - lo) * L) * sizeof(float));
    }
  } else {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j0 = 0; j0 < L; j0 += 8) {
        const float* src[8];
        sources(src, j0, oh0 * g.stride_h + r - g.pad_top, lo - g.pad_left);
        interleave8(padded + (r * cols + lo) * L + j0, L, src, hi - lo);
      }
    }
  }
}

template <class V>
inline __attribute__((always_inline)) void depthwise_block(float* out, const float* in, const float* weight,
                                                           const float* bias, int64_t oc0, int64_t oh0, int64_t oh1,
                                                           float* scratch, const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t lanes = lesser(L, g.OC - oc0), taps = g.KH * g.KW;
  const int64_t rows = band_input_rows(g, oh1 - oh0), cols = band_input_cols(g);
  float* wt = scratch;
  float* bs = wt + taps * L;
  float* band_out = bs + L;  // [oh1 - oh0][OW][L]
  float* padded = band_out + (oh1 - oh0) * g.OW * L;
  // The block's weight rows [taps] interleaved to [taps][L] by 8x8 transposes (a scalar loop per
  // tap and lane cost as much as a third of the multiply-adds on 7x7 images, perf). Lanes past OC
  // repeat the last channel and are never stored.
  for (int64_t j0 = 0; j0 < L; j0 += 8) {
    const float* src[8];
    for (int64_t j = 0; j < 8; ++j) src[j] = weight + (oc0 + lesser(j0 + j, lanes - 1)) * taps;
    interleave8(wt + j0, L, src, taps);
  }
  // (as one masked load, GCC's form of a loop over lanes with a condition, it cost 8% on 7x7 images)
  zero_floats(bs, L);
  if (bias) __builtin_memcpy(bs, bias + oc0, static_cast<size_t>(lanes) * sizeof(float));
  padded_band<V>(padded, in, oc0, lanes, oh0, rows, cols, 0, g);

  if (g.dilation_w == 1 && g.stride_w == 1) {
    block_rows<V, 1>(band_out, padded, wt, bs, oh0, oh1, cols, g);
  } else if (g.dilation_w == 1 && g.stride_w == 2) {
    block_rows<V, 2>(band_out, padded, wt, bs, oh0, oh1, cols, g);
  } else {
    block_rows<V, 0>(band_out, padded, wt, bs, oh0, oh1, cols, g);
  }
  // Rows oh0 .. oh1 of a plane are contiguous: the band goes out in one run per plane.
  for (int64_t j0 = 0; j0 < lanes; j0 += 8) {
    float* dst[8];
    const int planes = static_cast<int>(lesser(8, lanes - j0));
    for (int j = 0; j < planes; ++j) dst[j] = out + ((oc0 + j0 + j) * g.OH + oh0) * g.OW;
    deinterleave8(dst, planes, band_out + j0, L, (oh1 - oh0) * g.OW);
  }
}

// --- the weight gradient --------------------------------------------------------------------------
// dw[oc, kh, kw] = sum over pixels of dy[oc, oh, ow] * x[oh * stride_h + kh * dilation_h,
// ow * stride_w + kw * dilation_w] (padded coordinates): with dy's band and the input's band
// interleaved as the forward pass lays them out, each tap of each pixel is one multiply-add of
// whole vectors into the tap's running sum, whatever the image's width.

// Taps kw0 .. kw0 + NT of kernel row kh over the band's `band` output rows, added to sums[t] ([NT][L]).
// U pixels at a time, each with its own NT sums (U x NT independent chains), added at the end:
// per pixel one vector of dy and NT of the input feed NT multiply-adds.
// ONE: the block's lanes are all one group's output channels, which read the same input channel:
// the band holds one float per pixel, broadcast (padded_plane_band).
template <class V, int NT, int U, bool ONE>
inline __attribute__((always_inline)) void grad_taps(float* sums, const float* padded, const float* dy_band,
                                                     int64_t band, int64_t kh, int64_t kw0, int64_t cols,
                                                     const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float), E = ONE ? 1 : L;  // floats per band pixel
  V acc[U][NT];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[u][t] = V{};
  const int64_t step = g.stride_w * E, tap = g.dilation_w * E;
  auto input = [](const float* p) { return ONE ? splat<V>(p) : load<V>(p); };
  for (int64_t r = 0; r < band; ++r) {
    const float* x = padded + ((r * g.stride_h + kh * g.dilation_h) * cols + kw0 * g.dilation_w) * E;
    const float* d = dy_band + r * g.OW * L;
    int64_t ow = 0;
    for (; ow + U <= g.OW; ow += U) {
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) {
        const V dv = load<V>(d + (ow + u) * L);
        const float* xp = x + (ow + u) * step;
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) acc[u][t] += dv * input(xp + t * tap);
      }
    }
    for (; ow < g.OW; ++ow) {
      const V dv = load<V>(d + ow * L);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) acc[0][t] += dv * input(x + ow * step + t * tap);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    V sum = load<V>(sums + t * L);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) sum += acc[u][t];
    __builtin_memcpy(sums + t * L, &sum, sizeof(V));
  }
}

// grad_taps for n (1-7) taps: two pixels at a time up to four taps (8 chains; with AVX2's 16
// registers, 8 sums, 2 of dy and 1 of the input), one pixel beyond.
template <class V, bool ONE, int NT = 7>
inline __attribute__((always_inline)) void grad_taps_n(int64_t n, float* sums, const float* padded,
                                                       const float* dy_band, int64_t band, int64_t kh, int64_t kw0,
                                                       int64_t cols, const Conv2dGeometry& g) {
  if constexpr (NT > 0) {
    if (n == NT) return grad_taps<V, NT, (NT <= 4 ? 2 : 1), ONE>(sums, padded, dy_band, band, kh, kw0, cols, g);
    grad_taps_n<V, ONE, NT - 1>(n, sums, padded, dy_band, band, kh, kw0, cols, g);
  }
}

// padded_band's rows of one input plane, one float per pixel.
inline void padded_plane_band(float* padded, const float* plane, int64_t oh0, int64_t rows, int64_t cols,
                              const Conv2dGeometry& g) {
  const int64_t lo = lesser(cols, g.pad_left), hi = clamp_to(g.W + g.pad_left, lo, cols);
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = padded + r * cols;
    const int64_t ih = oh0 * g.stride_h + r - g.pad_top;
    if (ih < 0 || ih >= g.H || hi == lo) {
      zero_floats(dst, cols);
      continue;
    }
    zero_floats(dst, lo);
    __builtin_memcpy(dst + lo, plane + ih * g.W + lo - g.pad_left, static_cast<size_t>(hi - lo) * sizeof(float));
    zero_floats(dst + hi, cols - hi);
  }
}

// Adds output rows [oh0, oh1) of one image's contribution to the weight gradient of the
// depthwise_block_lanes() output channels from oc0 into sums ([CG][KH * KW][L] for CG = C / groups
// input channels per group; lane j: output channel oc0 + j, lanes past OC get sums that are never
// read). Any groups: lane j reads input channel c of its own group, so that a grouped layer is CG
// depthwise ones, dy's band interleaved once for all. dy [OC, OH, OW] and in [C, H, W] are the
// image's; scratch as depthwise_block's.
template <class V>
inline __attribute__((always_inline)) void depthwise_weight_grad_block(float* sums, const float* dy, const float* in,
                                                                       int64_t oc0, int64_t oh0, int64_t oh1,
                                                                       float* scratch, const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t lanes = lesser(L, g.OC - oc0), band = oh1 - oh0, CG = g.C / g.groups, T = g.KH * g.KW;
  const int64_t rows = band_input_rows(g, band), cols = band_input_cols(g);
  float* dy_band = scratch + (T + 1) * L;  // where depthwise_block keeps its output band
  float* padded = dy_band + band * g.OW * L;
  // dy's rows oh0 .. oh1 of a plane are contiguous: one run per plane, lanes past OC repeat the last
  for (int64_t j0 = 0; j0 < L; j0 += 8) {
    const float* src[8];
    for (int64_t j = 0; j < 8; ++j) src[j] = dy + ((oc0 + lesser(j0 + j, lanes - 1)) * g.OH + oh0) * g.OW;
    interleave8(dy_band + j0, L, src, band * g.OW);
  }
  // Where every lane is one group's output channel, each input value is the same in every lane: the
  // band holds one float per pixel (a RegNet layer of 8 channels per group had its input copied
  // into all 8 lanes, the transposes a third of its time).
  const int64_t OCG = g.OC / g.groups;
  const bool one = oc0 / OCG == (oc0 + lanes - 1) / OCG;
  for (int64_t c = 0; c < CG; ++c) {
    if (one) {
      padded_plane_band(padded, in + (oc0 / OCG * CG + c) * g.H * g.W, oh0, rows, cols, g);
    } else {
      padded_band<V>(padded, in, oc0, lanes, oh0, rows, cols, c, g);
    }
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw0 = 0; kw0 < g.KW; kw0 += 7) {
        float* s = sums + (c * T + kh * g.KW + kw0) * L;
        if (one) {
          grad_taps_n<V, true>(lesser(7, g.KW - kw0), s, padded, dy_band, band, kh, kw0, cols, g);
        } else {
          grad_taps_n<V, false>(lesser(7, g.KW - kw0), s, padded, dy_band, band, kh, kw0, cols, g);
        }
      }
    }
  }
}

// --- the input gradient ---------------------------------------------------------------------------
// dx[ci, ih, iw] = sum over the OCG output channels o of ci's group and the taps (kh, kw) for which
// oh = (ih + pad_top - kh * dilation_h) / stride_h and ow = (iw + pad_left - kw * dilation_w) /
// stride_w are whole: weight[o, ci's index in its group, kh, kw] * dy[o, oh, ow]. Vectors run across
// input channels: for each o's index k in its group, dy's rows the band reads are interleaved with
// lane j holding output channel k of input channel ic0 + j's group (zero outside dy), and each tap
// of each dx pixel is one multiply-add of whole vectors, no column matrix and no scatter.

// The span of dy (rows [oh_lo, oh_lo + rows), columns [ow_lo, ow_lo + cols), either may reach
// outside dy) that dx rows [ih0, ih1) read.
struct DyWindow {
  int64_t oh_lo, rows, ow_lo, cols;
};
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline DyWindow dy_window(const Conv2dGeometry& g, int64_t ih0, int64_t ih1) {
  DyWindow w{};
  w.oh_lo = -floor_div(-(ih0 + g.pad_top - (g.KH - 1) * g.dilation_h), g.stride_h);  // ceil
  w.rows = std::max<int64_t>(0, floor_div(ih1 - 1 + g.pad_top, g.stride_h) - w.oh_lo + 1);
  w.ow_lo = -floor_div(-(g.pad_left - (g.KW - 1) * g.dilation_w), g.stride_w);
  w.cols = std::max<int64_t>(0, floor_div(g.W - 1 + g.pad_left, g.stride_w) - w.ow_lo + 1);
  return w;
}

// Floats of the input gradient's scratch for a band of dx rows: weights [OCG][T][L], the dx band
// [band][W][L], dy's windows [OCG][rows][cols][L].
inline int64_t input_grad_scratch(const Conv2dGeometry& g, int64_t band, int64_t L) {
  const DyWindow w = dy_window(g, 0, band);
  const int64_t OCG = g.OC / g.groups;
  return (OCG * g.KH * g.KW + band * g.W + OCG * (w.rows + 1) * w.cols) * L;
}

// U consecutive dx pixels of one phase (stride_w apart) of one row: every k and tap, one weight
// vector and U of dy's. ONE: the block's lanes are all one group's channels, whose dy values are
// the same in every lane: the windows hold one float per pixel, broadcast.
template <class V, int U, bool ONE>
inline __attribute__((always_inline)) void input_grad_pixels(float* out, const float* wt, const float* windows,
                                                             const int64_t* htaps, int64_t nh, const int64_t* wtaps,
                                                             int64_t nw, int64_t m, int64_t OCG, int64_t T,
                                                             int64_t window_floats, int64_t cols, int64_t step,
                                                             const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float), E = ONE ? 1 : L;  // floats per window pixel
  V acc[U];
#pragma GCC unroll 12
  for (int u = 0; u < U; ++u) acc[u] = V{};
  for (int64_t k = 0; k < OCG; ++k) {
    const float* e = windows + k * window_floats;
    for (int64_t a = 0; a < nh; ++a) {
      const int64_t kh = htaps[2 * a], r = htaps[2 * a + 1];
      for (int64_t b = 0; b < nw; ++b) {
        const int64_t kw = wtaps[2 * b], c = wtaps[2 * b + 1] + m;
        const V w = load<V>(wt + (k * T + kh * g.KW + kw) * L);
        const float* p = e + (r * cols + c) * E;
#pragma GCC unroll 12
        for (int u = 0; u < U; ++u) acc[u] += w * (ONE ? splat<V>(p + u) : load<V>(p + u * L));
      }
    }
  }
#pragma GCC unroll 12
  for (int u = 0; u < U; ++u) __builtin_memcpy(out + u * step * L, &acc[u], sizeof(V));
}

template <class V, bool ONE, int U = 3>
inline __attribute__((always_inline)) void input_grad_rest(int64_t n, float* out, const float* wt, const float* windows,
                                                           const int64_t* htaps, int64_t nh, const int64_t* wtaps,
                                                           int64_t nw, int64_t m, int64_t OCG, int64_t T,
                                                           int64_t window_floats, int64_t cols, int64_t step,
                                                           const Conv2dGeometry& g) {
  if constexpr (U > 0) {
    if (n == U)
      return input_grad_pixels<V, U, ONE>(out, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols, step,
                                          g);
    input_grad_rest<V, ONE, U - 1>(n, out, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols, step, g);
  }
}

// A row's pixels of phase rw (M of them, from m = 0): twelve at a time, then eight, four and the
// rest. (Four at a time, the inner loop's tap lookups cost as much as its multiply-adds: grouped
// 3x3 stride-2 input gradients run 1.3-1.5x faster in twelves.)
template <class V, bool ONE>
inline __attribute__((always_inline)) void input_grad_phase(float* out, int64_t M, const float* wt,
                                                            const float* windows, const int64_t* htaps, int64_t nh,
                                                            const int64_t* wtaps, int64_t nw, int64_t OCG, int64_t T,
                                                            int64_t window_floats, int64_t cols,
                                                            const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t step = g.stride_w * L;
  int64_t m = 0;
  for (; m + 12 <= M; m += 12)
    input_grad_pixels<V, 12, ONE>(out + m * step, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols,
                                  g.stride_w, g);
  if (m + 8 <= M) {
    input_grad_pixels<V, 8, ONE>(out + m * step, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols,
                                 g.stride_w, g);
    m += 8;
  }
  if (m + 4 <= M) {
    input_grad_pixels<V, 4, ONE>(out + m * step, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols,
                                 g.stride_w, g);
    m += 4;
  }
  input_grad_rest<V, ONE>(M - m, out + m * step, wt, windows, htaps, nh, wtaps, nw, m, OCG, T, window_floats, cols,
                          g.stride_w, g);
}

// dx rows [ih0, ih1) of the input channels ic0 .. ic0 + L (fewer at the end of C) of one image:
// dx [C, H, W] and dy [OC, OH, OW] are the image's, weight [OC, CG, KH, KW]. KH, KW <= 32.
template <class V>
inline __attribute__((always_inline)) void lanes_input_grad_block(float* dx, const float* dy, const float* weight,
                                                                  int64_t ic0, int64_t ih0, int64_t ih1, float* scratch,
                                                                  const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t lanes = lesser(L, g.C - ic0), CG = g.C / g.groups, OCG = g.OC / g.groups, T = g.KH * g.KW;
  const DyWindow win = dy_window(g, ih0, ih1);
  float* wt = scratch;                                                   // [OCG][T][L]
  float* band = wt + OCG * T * L;                                        // [ih1 - ih0][W][L]
  float* windows = band + (ih1 - ih0) * g.W * L;                         // [OCG][rows][cols][L]
  auto channel = [&](int64_t j) { return ic0 + lesser(j, lanes - 1); };  // lanes past C repeat the last
  // wt[k][t][j] = weight[channel j's group's k-th output, channel j's index in its group, t]: each
  // lane's row found once (with the divisions in the innermost loop, they cost more than the
  // multiply-adds of small images)
  for (int64_t j = 0; j < L; ++j) {
    const int64_t ci = channel(j);
    const float* row = weight + (ci / CG * OCG * CG + ci % CG) * T;
    for (int64_t k = 0; k < OCG; ++k)
      for (int64_t t = 0; t < T; ++t) wt[(k * T + t) * L + j] = row[k * CG * T + t];
  }
  // dy's window, k-th output channel of each lane's group, zero outside dy; where every lane is
  // one group's channel, one float per pixel (a RegNet layer of 8 channels per group had its dy
  // values copied into all 8 lanes: 8 times the memory traffic of its multiply-adds' operands).
  const float* dy_group[L];  // each lane's group's first output plane
  for (int64_t j = 0; j < L; ++j) dy_group[j] = dy + channel(j) / CG * OCG * g.OH * g.OW;
  const bool one = channel(0) / CG == channel(L - 1) / CG;
  const int64_t E = one ? 1 : L, window_floats = win.rows * win.cols * E;  // floats per window pixel, per window
  const int64_t c0 = clamp_to(-win.ow_lo, 0, win.cols), c1 = clamp_to(g.OW - win.ow_lo, c0, win.cols);
  for (int64_t k = 0; k < OCG; ++k) {
    float* e = windows + k * window_floats;
    for (int64_t r = 0; r < win.rows; ++r) {
      const int64_t oh = win.oh_lo + r;
      float* row = e + r * win.cols * E;
      if (oh < 0 || oh >= g.OH || c1 == c0) {
        zero_floats(row, win.cols * E);
        continue;
      }
      zero_floats(row, c0 * E);
      zero_floats(row + c1 * E, (win.cols - c1) * E);
      if (one) {
        __builtin_memcpy(row + c0, dy_group[0] + (k * g.OH + oh) * g.OW + win.ow_lo + c0,
                         static_cast<size_t>(c1 - c0) * sizeof(float));
        continue;
      }
      for (int64_t j0 = 0; j0 < L; j0 += 8) {
        const float* src[8];
        for (int64_t j = 0; j < 8; ++j) src[j] = dy_group[j0 + j] + (k * g.OH + oh) * g.OW + win.ow_lo + c0;
        interleave8(row + c0 * L + j0, L, src, c1 - c0);
      }
    }
  }
  int64_t htaps[64], wtaps[64];
  for (int64_t ih = ih0; ih < ih1; ++ih) {
    int64_t nh = 0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t a = ih + g.pad_top - kh * g.dilation_h;
      if (a % g.stride_h != 0) continue;
      htaps[2 * nh] = kh, htaps[2 * nh + 1] = a / g.stride_h - win.oh_lo, ++nh;
    }
    float* out_row = band + (ih - ih0) * g.W * L;
    for (int64_t rw = 0; rw < lesser(g.stride_w, g.W); ++rw) {
      int64_t nw = 0;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t a = rw + g.pad_left - kw * g.dilation_w;
        if (a % g.stride_w != 0) continue;
        wtaps[2 * nw] = kw, wtaps[2 * nw + 1] = a / g.stride_w - win.ow_lo, ++nw;
      }
      const int64_t M = (g.W - rw + g.stride_w - 1) / g.stride_w;  // pixels rw + m * stride_w
      if (one) {
        input_grad_phase<V, true>(out_row + rw * L, M, wt, windows, htaps, nh, wtaps, nw, OCG, T, window_floats,
                                  win.cols, g);
      } else {
        input_grad_phase<V, false>(out_row + rw * L, M, wt, windows, htaps, nh, wtaps, nw, OCG, T, window_floats,
                                   win.cols, g);
      }
    }
  }
  // rows ih0 .. ih1 of a plane are contiguous: the band goes out in one run per plane
  for (int64_t j0 = 0; j0 < lanes; j0 += 8) {
    float* dst[8];
    const int planes = static_cast<int>(lesser(8, lanes - j0));
    for (int j = 0; j < planes; ++j) dst[j] = dx + ((ic0 + j0 + j) * g.H + ih0) * g.W;
    deinterleave8(dst, planes, band + j0, L, (ih1 - ih0) * g.W);
  }
}

}  // namespace
}  // namespace tinytorch::kernels

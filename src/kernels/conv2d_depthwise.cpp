// Depthwise convolution (groups == C, each input channel feeding OC / C output channels): one
// output plane at a time, from a zero-padded copy of its input plane, as whole-row multiply-adds
// that the compiler vectorizes (compiled for AVX-512 and for AVX2; cpu_isa() picks).
// Reference counterpart: conv2d_forward_reference.
#include <algorithm>

#include "core/contract.hpp"
#include "kernels/conv2d.hpp"
#include "kernels/cpu.hpp"

namespace tinytorch::kernels {

int64_t depthwise_padded_plane_floats(const Conv2dGeometry& g) {
  const int64_t rows = (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
  const int64_t cols = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  return rows * cols;
}

namespace {

typedef float v16 __attribute__((vector_size(64)));  // 16 floats: one zmm, or two ymm
typedef float v8 __attribute__((vector_size(32)));   // one ymm

// sizeof(V) / 4 floats from p, any alignment.
template <class V>
inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// 16 outputs starting at `at`, every tap accumulated in registers. TAPS > 0 fixes the tap count
// at compile time (fully unrolled); 0 reads it from `taps`.
template <int TAPS>
inline __attribute__((always_inline)) void row16(float* row, const float* base, const float* weight,
                                                 const int64_t* offset, int64_t taps, float bias, int64_t at) {
  v16 acc = v16{} + bias;
  const int64_t n = TAPS > 0 ? TAPS : taps;
#pragma GCC unroll 16
  for (int64_t t = 0; t < n; ++t) acc += weight[t] * load<v16>(base + offset[t] + at);
  __builtin_memcpy(row + at, &acc, sizeof acc);
}

template <int TAPS>
inline __attribute__((always_inline)) void vector_row(float* row, const float* base, const float* weight,
                                                      const int64_t* offset, int64_t taps, float bias, int64_t OW) {
  for (int64_t ow = 0; ow + 16 <= OW; ow += 16) row16<TAPS>(row, base, weight, offset, taps, bias, ow);
  // The last partial block is recomputed as the final 16 columns: the overlap rewrites equal values.
  if (OW % 16) row16<TAPS>(row, base, weight, offset, taps, bias, OW - 16);
}

// 3x3, stride 1, dilation 1: four output rows at a time. Each of the six input rows they read is
// loaded once per kernel column and feeds up to three of the four rows, so a vector of outputs
// costs 4.5 loads instead of 9 (the loads, half of them split across cache lines, were the limit).
// One input vector is live at a time and every tap is one multiply-add into an accumulator of its
// row: two per row, one for the middle kernel row, so that the dependent chains are 6 and 3
// multiply-adds long instead of 9 (whose latency set the pace: 3-4% slower with one). Summing a
// kernel row first instead cost a multiply and an add more per row and spilled with AVX2. The loops
// have constant bounds and unroll fully, so the accumulators stay in registers.
template <class V>
inline __attribute__((always_inline)) void rows4_3x3(float* out, const float* base, int64_t cols, const float* w,
                                                     float bias, int64_t OW, int64_t rows) {
  constexpr int64_t L = sizeof(V) / sizeof(float);  // lanes: 16 (AVX-512) or 8 (AVX2)
  V wv[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) wv[t] = V{} + w[t];
  for (int64_t at = 0;; at += L) {
    if (at + L > OW) at = OW - L;  // the last vector overlaps the previous one: equal values
    V acc[4], mid[4];              // per output row: kernel rows 0 and 2 (with the bias), kernel row 1
#pragma GCC unroll 4
    for (int o = 0; o < 4; ++o) acc[o] = V{} + bias, mid[o] = V{};
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {  // input row i feeds output rows i - 2 .. i (kernel row i - o)
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) {
        const V x = load<V>(base + at + i * cols + j);
#pragma GCC unroll 4
        for (int o = 0; o < 4; ++o) {
          if (i - o == 1) {
            mid[o] += wv[3 + j] * x;
          } else if (i - o >= 0 && i - o < 3) {
            acc[o] += wv[(i - o) * 3 + j] * x;
          }
        }
      }
    }
#pragma GCC unroll 4
    for (int o = 0; o < 4; ++o) {
      acc[o] += mid[o];
      if (o < rows) __builtin_memcpy(out + o * OW + at, &acc[o], sizeof(V));
    }
    if (at + L >= OW) break;
  }
}

}  // namespace

namespace {

// V: the vector type of the 3x3 fast path, one register wide (v16 with AVX-512, v8 with AVX2: a
// 64-byte vector lowered to ymm pairs ran out of registers there and spilled).
template <class V>
inline __attribute__((always_inline)) void depthwise_plane(float* out, const float* in, const float* weight, float bias,
                                                           float* padded, const Conv2dGeometry& g) {
  // padded [rows, cols]: input rows -pad_top .. and columns -pad_left .. that the windows touch.
  const int64_t rows = (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
  const int64_t cols = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  const int64_t lo = std::min(cols, g.pad_left), hi = std::clamp<int64_t>(g.W + g.pad_left, lo, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t ih = r - g.pad_top;
    float* dst = padded + r * cols;
    if (ih < 0 || ih >= g.H) {
      std::fill_n(dst, cols, 0.0f);
      continue;
    }
    std::fill_n(dst, lo, 0.0f);
    std::copy_n(in + ih * g.W + (lo - g.pad_left), hi - lo, dst + lo);
    std::fill_n(dst + hi, cols - hi, 0.0f);
  }
  const int64_t taps = g.KH * g.KW;
  constexpr int64_t kMaxTaps = 121;  // kernels up to 11x11 take the vector path
  int64_t offset[kMaxTaps];          // tap t reads base + offset[t]
  for (int64_t t = 0; t < std::min(taps, kMaxTaps); ++t) {
    offset[t] = t / g.KW * g.dilation_h * cols + t % g.KW * g.dilation_w;
  }
  // Stride-1 rows at least 16 wide run 16 outputs at a time; the rest take the scalar loop.
  const bool full = g.stride_w == 1 && taps <= kMaxTaps && g.OW >= 16;
  int64_t oh = 0;
  if (full && g.OH >= 4 && g.KH == 3 && g.KW == 3 && g.stride_h == 1 && g.dilation_h == 1 && g.dilation_w == 1) {
    // Blocks of 4 rows (the padded plane has OH + 2); a short last block recomputes the last 4.
    for (; oh < g.OH; oh += 4) {
      const int64_t first = std::min(oh, std::max<int64_t>(0, g.OH - 4));
      rows4_3x3<V>(out + first * g.OW, padded + first * cols, cols, weight, bias, g.OW,
                   std::min<int64_t>(4, g.OH - first));
    }
  }
  for (; oh < g.OH; ++oh) {
    float* row = out + oh * g.OW;
    const float* base = padded + oh * g.stride_h * cols;
    if (full) {
      if (taps == 9) {
        vector_row<9>(row, base, weight, offset, taps, bias, g.OW);
      } else {
        vector_row<0>(row, base, weight, offset, taps, bias, g.OW);
      }
      continue;
    }
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      float acc = bias;
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
          acc += weight[kh * g.KW + kw] * base[kh * g.dilation_h * cols + kw * g.dilation_w + ow * g.stride_w];
      row[ow] = acc;
    }
  }
}

// The same loops compiled twice: 16-float vectors are one zmm with AVX-512, two ymm without.
__attribute__((target("avx512f"))) void depthwise_plane_avx512(float* out, const float* in, const float* weight,
                                                               float bias, float* padded, const Conv2dGeometry& g) {
  depthwise_plane<v16>(out, in, weight, bias, padded, g);
}

void depthwise_plane_avx2(float* out, const float* in, const float* weight, float bias, float* padded,
                          const Conv2dGeometry& g) {
  depthwise_plane<v8>(out, in, weight, bias, padded, g);
}

}  // namespace

namespace {

// 8x8 transpose of r[0..8) (row i: 8 floats) in place: r[j] becomes column j. Three rounds of
// two-input shuffles (unpack, 64-bit pairs, 128-bit halves), 24 in all.
inline __attribute__((always_inline)) void transpose8(v8* r) {
  typedef int i8 __attribute__((vector_size(32)));
  v8 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], i8{0, 8, 1, 9, 4, 12, 5, 13});
    t[2 * i + 1] = __builtin_shuffle(r[2 * i], r[2 * i + 1], i8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  // u[i], u[4 + i]: columns i and i + 4 of rows 0-3 and of rows 4-7
  const i8 pairs_lo{0, 1, 8, 9, 4, 5, 12, 13}, pairs_hi{2, 3, 10, 11, 6, 7, 14, 15};
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = __builtin_shuffle(t[4 * h], t[4 * h + 2], pairs_lo);
    u[4 * h + 1] = __builtin_shuffle(t[4 * h], t[4 * h + 2], pairs_hi);
    u[4 * h + 2] = __builtin_shuffle(t[4 * h + 1], t[4 * h + 3], pairs_lo);
    u[4 * h + 3] = __builtin_shuffle(t[4 * h + 1], t[4 * h + 3], pairs_hi);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    r[k] = __builtin_shuffle(u[k], u[4 + k], i8{0, 1, 2, 3, 8, 9, 10, 11});
    r[4 + k] = __builtin_shuffle(u[k], u[4 + k], i8{4, 5, 6, 7, 12, 13, 14, 15});
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
template <class V, int U>
inline __attribute__((always_inline)) void block_pixels(float* row_out, const float* base, const float* wt,
                                                        const float* bias, int64_t ow, const Conv2dGeometry& g,
                                                        int64_t cols) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  V acc[U];
  const V b = load<V>(bias);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) acc[u] = b;
  const int64_t step = g.stride_w * L;  // between neighbouring output pixels
  const float* first = base + ow * step;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const float* rowp = first + kh * g.dilation_h * cols * L;
    const float* wrow = wt + kh * g.KW * L;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const V w = load<V>(wrow + kw * L);
      const float* p = rowp + kw * g.dilation_w * L;
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) acc[u] += w * load<V>(p + u * step);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) __builtin_memcpy(row_out + (ow + u) * L, &acc[u], sizeof(V));
}

template <class V>
inline __attribute__((always_inline)) void depthwise_block(float* out, const float* in, const float* weight,
                                                           const float* bias, int64_t oc0, int64_t oh0, int64_t oh1,
                                                           float* scratch, const Conv2dGeometry& g) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t multiplier = g.OC / g.C, lanes = std::min(L, g.OC - oc0), taps = g.KH * g.KW;
  const int64_t rows = band_input_rows(g, oh1 - oh0), cols = band_input_cols(g);
  float* wt = scratch;
  float* bs = wt + taps * L;
  float* band_out = bs + L;  // [oh1 - oh0][OW][L]
  float* padded = band_out + (oh1 - oh0) * g.OW * L;
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t j = 0; j < L; ++j) wt[t * L + j] = j < lanes ? weight[(oc0 + j) * taps + t] : 0.0f;
  for (int64_t j = 0; j < L; ++j) bs[j] = bias && j < lanes ? bias[oc0 + j] : 0.0f;

  // The band's input rows, zero-padded, channel j of a pixel at lane j. Lanes past OC repeat the
  // last channel: their weights are zero and they are never stored.
  auto sources = [&](const float** src, int64_t j0, int64_t ih, int64_t iw) {
    for (int64_t j = 0; j < 8; ++j) {
      const int64_t oc = oc0 + std::min(j0 + j, lanes - 1);
      src[j] = in + (oc / multiplier * g.H + ih) * g.W + iw;
    }
  };
  const int64_t lo = std::min(cols, g.pad_left), hi = std::clamp<int64_t>(g.W + g.pad_left, lo, cols);
  const int64_t r0 = std::clamp<int64_t>(g.pad_top - oh0 * g.stride_h, 0, rows);  // rows [r0, r1) are inside
  const int64_t r1 = std::clamp<int64_t>(g.H + g.pad_top - oh0 * g.stride_h, r0, rows);
  std::fill_n(padded, r0 * cols * L, 0.0f);
  std::fill_n(padded + r1 * cols * L, (rows - r1) * cols * L, 0.0f);
  for (int64_t r = r0; r < r1; ++r) {
    float* dst = padded + r * cols * L;
    std::fill_n(dst, lo * L, 0.0f);
    std::fill_n(dst + hi * L, (cols - hi) * L, 0.0f);
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
      std::copy_n(stage + ((r - r0) * g.W + lo - g.pad_left) * L, (hi - lo) * L, padded + (r * cols + lo) * L);
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

  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* base = padded + (oh - oh0) * g.stride_h * cols * L;
    float* row_out = band_out + (oh - oh0) * g.OW * L;
    int64_t ow = 0;
    for (; ow + 8 <= g.OW; ow += 8) block_pixels<V, 8>(row_out, base, wt, bs, ow, g, cols);
    switch (g.OW - ow) {  // the rest of the row in one pass
      case 7:
        block_pixels<V, 7>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 6:
        block_pixels<V, 6>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 5:
        block_pixels<V, 5>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 4:
        block_pixels<V, 4>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 3:
        block_pixels<V, 3>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 2:
        block_pixels<V, 2>(row_out, base, wt, bs, ow, g, cols);
        break;
      case 1:
        block_pixels<V, 1>(row_out, base, wt, bs, ow, g, cols);
        break;
      default:
        break;
    }
  }
  // Rows oh0 .. oh1 of a plane are contiguous: the band goes out in one run per plane.
  for (int64_t j0 = 0; j0 < lanes; j0 += 8) {
    float* dst[8];
    const int planes = static_cast<int>(std::min<int64_t>(8, lanes - j0));
    for (int j = 0; j < planes; ++j) dst[j] = out + ((oc0 + j0 + j) * g.OH + oh0) * g.OW;
    deinterleave8(dst, planes, band_out + j0, L, (oh1 - oh0) * g.OW);
  }
}

__attribute__((target("avx512f"))) void depthwise_block_avx512(float* out, const float* in, const float* weight,
                                                               const float* bias, int64_t oc0, int64_t oh0, int64_t oh1,
                                                               float* scratch, const Conv2dGeometry& g) {
  depthwise_block<v16>(out, in, weight, bias, oc0, oh0, oh1, scratch, g);
}

void depthwise_block_avx2(float* out, const float* in, const float* weight, const float* bias, int64_t oc0, int64_t oh0,
                          int64_t oh1, float* scratch, const Conv2dGeometry& g) {
  depthwise_block<v8>(out, in, weight, bias, oc0, oh0, oh1, scratch, g);
}

}  // namespace

int64_t depthwise_block_lanes() { return cpu_isa() == Isa::Avx512 ? 16 : 8; }

int64_t depthwise_block_scratch_floats(const Conv2dGeometry& g, int64_t band_rows) {
  const int64_t L = depthwise_block_lanes();
  const int64_t rows = band_input_rows(g, band_rows);
  return (g.KH * g.KW + 1 + band_rows * g.OW + rows * band_input_cols(g) + (narrow(g) ? rows * g.W : 0)) * L;
}

void conv2d_depthwise_block(float* out, const float* in, const float* weight, const float* bias, int64_t oc0,
                            int64_t oh0, int64_t oh1, float* scratch, const Conv2dGeometry& g) {
  TT_EXPECTS(g.groups == g.C && g.OC % g.C == 0 && 0 <= oc0 && oc0 < g.OC && 0 <= oh0 && oh0 < oh1 && oh1 <= g.OH);
  if (cpu_isa() == Isa::Avx512) {
    depthwise_block_avx512(out, in, weight, bias, oc0, oh0, oh1, scratch, g);
  } else {
    depthwise_block_avx2(out, in, weight, bias, oc0, oh0, oh1, scratch, g);
  }
}

void conv2d_depthwise_plane(float* out, const float* in, const float* weight, float bias, float* padded,
                            const Conv2dGeometry& g) {
  TT_EXPECTS(g.groups == g.C && g.OC % g.C == 0 && padded != nullptr);  // one input plane per output plane
  if (cpu_isa() == Isa::Avx512) {
    depthwise_plane_avx512(out, in, weight, bias, padded, g);
  } else {
    depthwise_plane_avx2(out, in, weight, bias, padded, g);
  }
}

}  // namespace tinytorch::kernels

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

// Depthwise convolution (groups == C, each input channel feeding OC / C output channels): one
// output plane at a time, from a zero-padded copy of its input plane, as whole-row multiply-adds
// that the compiler vectorizes (compiled for AVX-512 and for AVX2; cpu_isa() picks).
// Reference counterpart: conv2d_forward_reference.
#include <algorithm>

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

inline v16 load16(const float* p) {
  v16 v;
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
  for (int64_t t = 0; t < n; ++t) acc += weight[t] * load16(base + offset[t] + at);
  __builtin_memcpy(row + at, &acc, sizeof acc);
}

template <int TAPS>
inline __attribute__((always_inline)) void vector_row(float* row, const float* base, const float* weight,
                                                      const int64_t* offset, int64_t taps, float bias, int64_t OW) {
  for (int64_t ow = 0; ow + 16 <= OW; ow += 16) row16<TAPS>(row, base, weight, offset, taps, bias, ow);
  // The last partial block is recomputed as the final 16 columns: the overlap rewrites equal values.
  if (OW % 16) row16<TAPS>(row, base, weight, offset, taps, bias, OW - 16);
}

}  // namespace

namespace {

inline __attribute__((always_inline)) void depthwise_plane(float* out, const float* in, const float* weight,
                                                           float bias, float* padded, const Conv2dGeometry& g) {
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
  for (int64_t oh = 0; oh < g.OH; ++oh) {
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
  depthwise_plane(out, in, weight, bias, padded, g);
}

void depthwise_plane_avx2(float* out, const float* in, const float* weight, float bias, float* padded,
                          const Conv2dGeometry& g) {
  depthwise_plane(out, in, weight, bias, padded, g);
}

}  // namespace

void conv2d_depthwise_plane(float* out, const float* in, const float* weight, float bias, float* padded,
                            const Conv2dGeometry& g) {
  if (cpu_isa() == Isa::Avx512) {
    depthwise_plane_avx512(out, in, weight, bias, padded, g);
  } else {
    depthwise_plane_avx2(out, in, weight, bias, padded, g);
  }
}

}  // namespace tinytorch::kernels

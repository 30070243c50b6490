// im2col_block: lays out the receptive fields of a block of output pixels as GEMM columns.
#include <algorithm>
#include <cstring>

#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

void im2col_block(float* col, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t pb) {
  const int64_t CG = g.channels_per_group();
  float* dst = col;
  for (int64_t c = 0; c < CG; ++c) {
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        // One row of col: the input value under tap (c, kh, kw) for each pixel of the block,
        // walked one output row (a run of ow) at a time.
        for (int64_t p = p0; p < p0 + pb;) {
          const int64_t oh = p / g.OW, ow = p % g.OW;
          const int64_t run = std::min(g.OW - ow, p0 + pb - p);
          const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
          if (ih < 0 || ih >= g.H) {
            std::fill_n(dst, run, 0.0f);
          } else {
            const float* src = in + (c * g.H + ih) * g.W;
            const int64_t iw0 = ow * g.stride_w - g.pad_left + kw * g.dilation_w;  // iw of the run's first pixel
            if (g.stride_w == 1) {
              // Pixels j with 0 <= iw0 + j < W read the row; the rest read padding.
              const int64_t lo = std::clamp<int64_t>(-iw0, 0, run);
              const int64_t hi = std::clamp<int64_t>(g.W - iw0, lo, run);
              std::fill_n(dst, lo, 0.0f);
              if (hi > lo) std::memcpy(dst + lo, src + iw0 + lo, static_cast<size_t>(hi - lo) * sizeof(float));
              std::fill_n(dst + hi, run - hi, 0.0f);
            } else {
              for (int64_t j = 0; j < run; ++j) {
                const int64_t iw = iw0 + j * g.stride_w;
                dst[j] = (iw >= 0 && iw < g.W) ? src[iw] : 0.0f;
              }
            }
          }
          dst += run;
          p += run;
        }
      }
    }
  }
}

}  // namespace tinytorch::kernels

namespace tinytorch::kernels {

void im2col_packed(float* dst, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t np, int64_t k0,
                   int64_t kc, int nr) {
  const int shift = __builtin_ctz(static_cast<unsigned>(nr));
  const int64_t panels = (np + nr - 1) / nr, panel_stride = kc * nr;
  const int64_t taps = g.KH * g.KW;
  for (int64_t k = k0; k < k0 + kc; ++k) {
    const int64_t c = k / taps, kh = k % taps / g.KW, kw = k % g.KW;
    float* row = dst + (k - k0) * nr;  // pixel q goes to lane (q & (nr-1)) of panel (q >> shift)
    for (int64_t q = 0; q < np;) {
      const int64_t p = p0 + q;
      const int64_t oh = p / g.OW, ow = p % g.OW;
      // A run: pixels of one output row that also stay inside one panel.
      const int64_t run = std::min({g.OW - ow, np - q, nr - (q & (nr - 1))});
      float* out = row + (q >> shift) * panel_stride + (q & (nr - 1));
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      if (ih < 0 || ih >= g.H) {
        std::fill_n(out, run, 0.0f);
      } else {
        const float* src = in + (c * g.H + ih) * g.W;
        const int64_t iw0 = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
        if (g.stride_w == 1) {
          const int64_t lo = std::clamp<int64_t>(-iw0, 0, run);
          const int64_t hi = std::clamp<int64_t>(g.W - iw0, lo, run);
          std::fill_n(out, lo, 0.0f);
          if (hi > lo) std::memcpy(out + lo, src + iw0 + lo, static_cast<size_t>(hi - lo) * sizeof(float));
          std::fill_n(out + hi, run - hi, 0.0f);
        } else {
          for (int64_t j = 0; j < run; ++j) {
            const int64_t iw = iw0 + j * g.stride_w;
            out[j] = (iw >= 0 && iw < g.W) ? src[iw] : 0.0f;
          }
        }
      }
      q += run;
    }
    // The last panel's unused lanes.
    if (np < panels * nr) std::fill_n(row + (panels - 1) * panel_stride + (np & (nr - 1)), panels * nr - np, 0.0f);
  }
}

}  // namespace tinytorch::kernels

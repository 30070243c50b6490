// im2col_block: lays out the receptive fields of a block of output pixels as GEMM columns.
#include <algorithm>
#include <cstring>

#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

void col2im_add(float* dx, const float* col, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), P = g.OH * g.OW;
  for (int64_t c = 0; c < CG; ++c) {
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* src = col + ((c * g.KH + kh) * g.KW + kw) * P;  // row (c, kh, kw)
        // Output columns ow whose input column iw = ow * stride + off lies in [0, W): [ow0, ow1).
        const int64_t off = kw * g.dilation_w - g.pad_left;
        const auto [ow0, ow1] = inside(off, g.stride_w, g.W, g.OW);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
          if (ih < 0 || ih >= g.H) continue;
          float* dst = dx + (c * g.H + ih) * g.W + off;  // dst[ow * stride] is input column iw
          const float* row = src + oh * g.OW;
          if (g.stride_w == 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow] += row[ow];
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow * g.stride_w] += row[ow];
          }
        }
      }
    }
  }
}

void im2col_block(float* col, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t pb, int64_t ld, int64_t k0,
                  int64_t kc) {
  const int64_t taps = g.KH * g.KW;
  const int64_t k1 = kc < 0 ? g.channels_per_group() * taps : k0 + kc;
  const int64_t skip = ld == 0 ? 0 : ld - pb;  // from the end of one row to the start of the next
  float* dst = col;
  // Row k is tap (c, kh, kw); both it and the pixel (oh, ow) advance without a division per step
  // (a 5x5 stride-3 layer's weight gradient spent a third of its time dividing).
  int64_t c = k0 / taps, kh = k0 % taps / g.KW, kw = k0 % g.KW;
  const int64_t oh0 = p0 / g.OW, ow0 = p0 % g.OW;
  for (int64_t k = k0; k < k1; ++k, dst += skip) {
    // One row of col: the input value under tap (c, kh, kw) for each pixel of the block,
    // walked one output row (a run of ow) at a time.
    int64_t oh = oh0, ow = ow0;
    for (int64_t p = p0; p < p0 + pb; ow = 0, ++oh) {
      const int64_t run = std::min(g.OW - ow, p0 + pb - p);
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      if (ih < 0 || ih >= g.H) {
        std::fill_n(dst, run, 0.0f);
      } else {
        const float* src = in + (c * g.H + ih) * g.W;
        const int64_t iw0 = ow * g.stride_w - g.pad_left + kw * g.dilation_w;  // iw of the run's first pixel
        // Pixels j with 0 <= iw0 + j * stride < W read the row; the rest read padding.
        const int64_t sw = g.stride_w;
        const auto [lo, hi] = inside(iw0, sw, g.W, run);
        std::fill_n(dst, lo, 0.0f);
        if (sw == 1) {
          if (hi > lo) std::memcpy(dst + lo, src + iw0 + lo, static_cast<size_t>(hi - lo) * sizeof(float));
        } else if (sw == 2) {  // a constant stride: vectorized, loads and a shuffle
          const float* s0 = src + iw0;
          for (int64_t j = lo; j < hi; ++j) dst[j] = s0[2 * j];
        } else {
          const float* s0 = src + iw0;
          for (int64_t j = lo; j < hi; ++j) dst[j] = s0[j * sw];
        }
        std::fill_n(dst + hi, run - hi, 0.0f);
      }
      dst += run;
      p += run;
    }
    if (++kw == g.KW) {
      kw = 0;
      if (++kh == g.KH) {
        kh = 0;
        ++c;
      }
    }
  }
}

}  // namespace tinytorch::kernels

namespace tinytorch::kernels {

void im2col_packed(float* dst, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t np, int64_t k0, int64_t kc,
                   int nr) {
  const int64_t panels = (np + nr - 1) / nr, panel_stride = kc * nr;
  const int64_t taps = g.KH * g.KW;
  const int64_t oh0 = p0 / g.OW, ow0 = p0 % g.OW;
  const int64_t sw = g.stride_w;
  for (int64_t k = k0; k < k0 + kc; ++k) {
    const int64_t c = k / taps, kh = k % taps / g.KW, kw = k % g.KW;
    const float* plane = in + c * g.H * g.W;
    float* row = dst + (k - k0) * nr;  // pixel q goes to lane q % nr of panel q / nr
    // Walk the block in runs that stay inside one output row and one panel; oh, ow, panel and
    // lane advance incrementally (no division per run).
    int64_t oh = oh0, ow = ow0, panel = 0, lane = 0;
    for (int64_t q = 0; q < np;) {
      const int64_t run = std::min({g.OW - ow, np - q, nr - lane});
      float* out = row + panel * panel_stride + lane;
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      if (ih < 0 || ih >= g.H) {
        for (int64_t j = 0; j < run; ++j) out[j] = 0.0f;
      } else {
        const float* src = plane + ih * g.W;
        const int64_t iw0 = ow * sw - g.pad_left + kw * g.dilation_w;  // iw of pixel j is iw0 + j * sw
        // Pixels [lo, hi) read inside the row; the rest read padding.
        const auto [lo, hi] = inside(iw0, sw, g.W, run);
        for (int64_t j = 0; j < lo; ++j) out[j] = 0.0f;
        if (sw == 1) {
          for (int64_t j = lo; j < hi; ++j) out[j] = src[iw0 + j];
        } else {
          for (int64_t j = lo; j < hi; ++j) out[j] = src[iw0 + j * sw];
        }
        for (int64_t j = hi; j < run; ++j) out[j] = 0.0f;
      }
      q += run;
      ow += run;
      if (ow == g.OW) ow = 0, ++oh;
      lane += run;
      if (lane == nr) lane = 0, ++panel;
    }
    // The last panel's unused lanes.
    for (int64_t j = np - (panels - 1) * nr; j < nr; ++j) row[(panels - 1) * panel_stride + j] = 0.0f;
  }
}

}  // namespace tinytorch::kernels

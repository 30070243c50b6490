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

// The reference pooling loops: the oracle for the fast pooling kernels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/pool2d.hpp"

namespace tinytorch::kernels {

void maxpool2d_forward_reference(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g) {
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const float* plane = in + nc * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = -1;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
            if (iw < 0 || iw >= g.W) continue;
            const float v = plane[ih * g.W + iw];
            // The first element seeds the max; after it, a larger value or any NaN wins, as in PyTorch.
            if (best_index < 0 || v > best || std::isnan(v)) {
              best = v;
              best_index = ih * g.W + iw;
            }
          }
        }
        const int64_t o = (nc * g.OH + oh) * g.OW + ow;
        out[o] = best;
        if (indices) indices[o] = best_index;
      }
    }
  }
}

void avgpool2d_forward_reference(float* out, const float* in, const Pool2dGeometry& g, bool count_include_pad) {
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const float* plane = in + nc * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const AvgWindow win = avg_window(g, oh, ow, count_include_pad);
        double sum = 0.0;
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += plane[ih * g.W + iw];
        const int64_t count = win.divisor;
        out[(nc * g.OH + oh) * g.OW + ow] = count > 0 ? static_cast<float>(sum / count) : 0.0f;
      }
    }
  }
}

}  // namespace tinytorch::kernels

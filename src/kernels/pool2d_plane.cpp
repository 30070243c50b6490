// Fast pooling over one plane: whole output rows at a time, with a branch-free path for the
// common 2x2 stride-2 window that the compiler vectorizes; other windows run the reference loops
// on the plane. Reference: reference/pool2d_reference.cpp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/pool2d.hpp"

namespace tinytorch::kernels {
namespace {

// The reference's rule for the next value in scan order: a larger value or a NaN replaces the
// current maximum (so the first of equal values is kept, and any NaN wins).
inline float take(float best, float v) { return (v > best || v != v) ? v : best; }

}  // namespace

void maxpool2d_plane(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g) {
  const bool simple = g.KH == 2 && g.KW == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
                      g.dilation_h == 1 && g.dilation_w == 1 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
  if (!simple) {
    // Any other window: the reference loops on this one plane (they are as fast as a generic
    // window gets; the common 2x2 case below is what is worth specializing).
    Pool2dGeometry plane = g;
    plane.N = plane.C = 1;
    maxpool2d_forward_reference(out, indices, in, plane);
    return;
  }
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    float* row = out + oh * g.OW;
    const int64_t base = 2 * oh * g.W;
    const float* r0 = in + base;
    const float* r1 = r0 + g.W;
    if (!indices) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        row[ow] = take(take(take(r0[2 * ow], r0[2 * ow + 1]), r1[2 * ow]), r1[2 * ow + 1]);
      }
    } else {  // the same with the winner's index, for backward
      int64_t* idx = indices + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float best = r0[2 * ow];
        int64_t at = base + 2 * ow;
        const float v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
        if (v1 > best || v1 != v1) best = v1, at = base + 2 * ow + 1;
        if (v2 > best || v2 != v2) best = v2, at = base + g.W + 2 * ow;
        if (v3 > best || v3 != v3) best = v3, at = base + g.W + 2 * ow + 1;
        row[ow] = best;
        idx[ow] = at;
      }
    }
  }
}

void avgpool2d_plane(float* out, const float* in, const Pool2dGeometry& g, bool count_include_pad) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const AvgWindow win = avg_window(g, oh, ow, count_include_pad);
      float sum = 0.0f;
      for (int64_t ih = win.h0; ih < win.h1; ++ih)
        for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += in[ih * g.W + iw];
      out[oh * g.OW + ow] = win.divisor > 0 ? sum / static_cast<float>(win.divisor) : 0.0f;
    }
  }
}

void maxpool2d_backward_plane(float* dx, const float* dy, const int64_t* indices, const Pool2dGeometry& g) {
  std::fill_n(dx, g.H * g.W, 0.0f);
  for (int64_t o = 0; o < g.OH * g.OW; ++o)
    if (indices[o] >= 0) dx[indices[o]] += dy[o];
}

void avgpool2d_backward_plane(float* dx, const float* dy, const Pool2dGeometry& g, bool count_include_pad) {
  std::fill_n(dx, g.H * g.W, 0.0f);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const AvgWindow win = avg_window(g, oh, ow, count_include_pad);
      if (win.divisor <= 0) continue;
      const float share = dy[oh * g.OW + ow] / static_cast<float>(win.divisor);
      for (int64_t ih = win.h0; ih < win.h1; ++ih)
        for (int64_t iw = win.w0; iw < win.w1; ++iw) dx[ih * g.W + iw] += share;
    }
  }
}

}  // namespace tinytorch::kernels

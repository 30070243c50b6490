// Fast pooling over one plane: whole output rows at a time, with a branch-free path for the
// common 2x2 stride-2 window that the compiler vectorizes and a separable one for every other max
// window; with the winners' indices (training) other windows run the reference loops on the plane. Reference:
// reference/pool2d_reference.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/pool2d.hpp"

namespace tinytorch::kernels {
namespace {

// The reference's rule for the next value in scan order: a larger value or a NaN replaces the
// current maximum (so the first of equal values is kept, and any NaN wins).
inline float take(float best, float v) { return (v > best || v != v) ? v : best; }

constexpr int64_t kSeparableColumns = 2048;

// Any max window without indices, separably: per output row, the maximum down each column of the
// rows the window covers, then across each window's columns, both over contiguous columns so that
// they vectorize.
// Columns are in padded coordinates (padding is -inf), a chunk of output columns at a time
// through a stack buffer. The maximum of a set does not depend on the order it is taken in; a
// NaN anywhere in a window makes its result NaN, as in the reference.
void maxpool2d_separable(float* out, const float* in, const Pool2dGeometry& g) {
  float column[kSeparableColumns], across[kSeparableColumns];
  const int64_t span = (g.KW - 1) * g.dilation_w + 1;
  const int64_t chunk = std::max<int64_t>(1, (kSeparableColumns - span) / g.stride_w + 1);
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t ih0 = oh * g.stride_h - g.pad_h;
    for (int64_t o0 = 0; o0 < g.OW; o0 += chunk) {
      const int64_t o1 = std::min(g.OW, o0 + chunk);
      const int64_t x0 = o0 * g.stride_w - g.pad_w;  // input column of column[0]
      const int64_t width = (o1 - 1 - o0) * g.stride_w + span;
      const int64_t lo = std::clamp<int64_t>(-x0, 0, width), hi = std::clamp<int64_t>(g.W - x0, lo, width);
      std::fill_n(column, width, lowest);
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = ih0 + kh * g.dilation_h;
        if (ih < 0 || ih >= g.H) continue;
        const float* row = in + ih * g.W + x0;
        for (int64_t x = lo; x < hi; ++x) column[x] = take(column[x], row[x]);
      }
      // Across the window at every column (contiguous again), then every stride-th one kept.
      const int64_t starts = (o1 - 1 - o0) * g.stride_w + 1;
      std::copy_n(column, starts, across);
      for (int64_t kw = 1; kw < g.KW; ++kw) {
        const float* shifted = column + kw * g.dilation_w;
        for (int64_t x = 0; x < starts; ++x) across[x] = take(across[x], shifted[x]);
      }
      for (int64_t ow = o0; ow < o1; ++ow) out[oh * g.OW + ow] = across[(ow - o0) * g.stride_w];
    }
  }
}

// Whether in[0 .. n) holds a -0. The separable order (down the columns, then across) folds a
// window's values in another order than the reference's scan (across the rows, then down), which
// gives the same result but for ties of different bits: +0 and -0 (the first in scan order wins;
// which NaN of several wins is not kept, a NaN is).
bool has_negative_zero(const float* in, int64_t n) {
  using Bits8 = int32_t __attribute__((vector_size(32)));  // eight floats' bits
  constexpr int32_t kNegativeZero = INT32_MIN;             // the sign bit alone
  Bits8 seen = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Bits8 bits;
    std::memcpy(&bits, in + i, sizeof bits);
    seen |= bits == kNegativeZero;
  }
  bool found = false;
  for (int k = 0; k < 8; ++k) found |= seen[k] != 0;
  for (; i < n; ++i) found |= in[i] == 0.0f && std::signbit(in[i]);
  return found;
}

}  // namespace

void maxpool2d_plane(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g) {
  const bool simple = g.KH == 2 && g.KW == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
                      g.dilation_h == 1 && g.dilation_w == 1 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
  if (!simple) {
    if (!indices && (g.KW - 1) * g.dilation_w + 1 <= kSeparableColumns / 2 && !has_negative_zero(in, g.H * g.W)) {
      maxpool2d_separable(out, in, g);
      return;
    }
    // The winners' indices (for backward), an absurdly wide window, or a plane with -0 (whose
    // ties with +0 the separable order would settle otherwise): the reference loops on this one
    // plane.
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

float plane_mean(const float* in, int64_t n) {
  constexpr int64_t kBlock = 256, kLanes = 8;
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float lanes[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) lanes[j] += in[i + j];
    }
    float sum = 0.0f;
    for (; i < e; ++i) sum += in[i];
    for (float lane : lanes) sum += lane;
    total += sum;
  }
  return static_cast<float>(total / static_cast<double>(n));
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

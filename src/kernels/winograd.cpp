// Winograd F(4x4, 3x3) weight, input and output transforms, vectorized across tiles: every
// inner loop runs over the `lanes` tiles of one packed panel, which the compiler turns into
// AVX2 arithmetic.
#include "kernels/winograd.hpp"

#include <algorithm>
#include <cstring>

namespace tinytorch::kernels {
namespace {

constexpr int kMaxLanes = 32;

int64_t tiles_h(const Conv2dGeometry& g) { return (g.OH + 3) / 4; }
int64_t tiles_w(const Conv2dGeometry& g) { return (g.OW + 3) / 4; }

// out[i] (6 rows) = B^T in (6 rows), each row `lanes` wide, rows `stride` apart.
inline void bt_rows(float* out, const float* in, int64_t stride, int lanes) {
  const float *d0 = in, *d1 = in + stride, *d2 = in + 2 * stride, *d3 = in + 3 * stride, *d4 = in + 4 * stride,
              *d5 = in + 5 * stride;
  float *r0 = out, *r1 = out + stride, *r2 = out + 2 * stride, *r3 = out + 3 * stride, *r4 = out + 4 * stride,
        *r5 = out + 5 * stride;
  for (int t = 0; t < lanes; ++t) {
    r0[t] = 4.0f * d0[t] - 5.0f * d2[t] + d4[t];
    r1[t] = -4.0f * (d1[t] + d2[t]) + d3[t] + d4[t];
    r2[t] = 4.0f * (d1[t] - d2[t]) - d3[t] + d4[t];
    r3[t] = 2.0f * (d3[t] - d1[t]) - d2[t] + d4[t];
    r4[t] = 2.0f * (d1[t] - d3[t]) - d2[t] + d4[t];
    r5[t] = 4.0f * d1[t] - 5.0f * d3[t] + d5[t];
  }
}

}  // namespace

void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C,
                                   int64_t oc0, int mr) {
  // Transformed into a local block of 16 input channels, [36][16][mr], then copied out as 36
  // contiguous runs: writing each value straight to its own xi matrix would touch 36 pages per
  // (oc, c) pair.
  constexpr int64_t kChunk = 16;
  float block[36 * kChunk * 16];  // mr <= 16
  float* panel = u + oc0 * C;     // panel oc0 / mr starts at (oc0 / mr) * C * mr = oc0 * C
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t cs = std::min(kChunk, C - c0);
    for (int64_t ci = 0; ci < cs; ++ci) {
      for (int64_t r = 0; r < mr; ++r) {
        float* dst = block + ci * mr + r;  // U[xi] (oc, c) at dst[xi * cs * mr]
        const int64_t oc = oc0 + r, c = c0 + ci;
        if (oc >= OC) {
          for (int xi = 0; xi < 36; ++xi) dst[xi * cs * mr] = 0.0f;
          continue;
        }
        const float* w = weight + (oc * C + c) * 9;
        // G w: [6, 3], then (G w) G^T: [6, 6].
        float gw[6][3];
        for (int j = 0; j < 3; ++j) {
          const float w0 = w[j], w1 = w[3 + j], w2 = w[6 + j];
          gw[0][j] = 0.25f * w0;
          gw[1][j] = (-1.0f / 6) * (w0 + w1 + w2);
          gw[2][j] = (-1.0f / 6) * (w0 - w1 + w2);
          gw[3][j] = (1.0f / 24) * w0 + (1.0f / 12) * w1 + (1.0f / 6) * w2;
          gw[4][j] = (1.0f / 24) * w0 - (1.0f / 12) * w1 + (1.0f / 6) * w2;
          gw[5][j] = w2;
        }
        for (int i = 0; i < 6; ++i) {
          const float w0 = gw[i][0], w1 = gw[i][1], w2 = gw[i][2];
          const float row[6] = {0.25f * w0,
                                (-1.0f / 6) * (w0 + w1 + w2),
                                (-1.0f / 6) * (w0 - w1 + w2),
                                (1.0f / 24) * w0 + (1.0f / 12) * w1 + (1.0f / 6) * w2,
                                (1.0f / 24) * w0 - (1.0f / 12) * w1 + (1.0f / 6) * w2,
                                w2};
          for (int j = 0; j < 6; ++j) dst[(i * 6 + j) * cs * mr] = row[j];
        }
      }
    }
    for (int xi = 0; xi < 36; ++xi) {
      std::memcpy(panel + xi * xi_stride + c0 * mr, block + xi * cs * mr, static_cast<size_t>(cs * mr) * sizeof(float));
    }
  }
}

void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  const int64_t TH = tiles_h(g), TW = tiles_w(g), T = g.N * TH * TW;
  alignas(64) float d[36 * kMaxLanes], e[36 * kMaxLanes];
  for (int64_t c = 0; c < g.C; ++c) {
    // Gather: d[6 * r + s][t] = input at (row 4*th - pad_top + r, col 4*tw - pad_left + s), or 0.
    for (int t = 0; t < lanes; ++t) {
      const int64_t tile = t0 + t;
      if (tile >= T) {
        for (int x = 0; x < 36; ++x) d[x * lanes + t] = 0.0f;
        continue;
      }
      const int64_t n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
      const float* plane = in + (n * g.C + c) * g.H * g.W;
      const int64_t h0 = 4 * th - g.pad_top, w0 = 4 * tw - g.pad_left;
      for (int r = 0; r < 6; ++r) {
        const int64_t ih = h0 + r;
        for (int s = 0; s < 6; ++s) {
          const int64_t iw = w0 + s;
          d[(6 * r + s) * lanes + t] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? plane[ih * g.W + iw] : 0.0f;
        }
      }
    }
    // B^T d (over r, for each column s), then (B^T d) B (over s, for each row).
    for (int s = 0; s < 6; ++s) bt_rows(e + s * lanes, d + s * lanes, 6 * lanes, lanes);
    for (int r = 0; r < 6; ++r) bt_rows(d + 6 * r * lanes, e + 6 * r * lanes, lanes, lanes);
    for (int x = 0; x < 36; ++x) std::memcpy(v + (x * g.C + c) * lanes, d + x * lanes, lanes * sizeof(float));
  }
}

void winograd_f43_output_transform(float* out, const float* m, const float* bias, const Conv2dGeometry& g,
                                   int64_t oc0, int rows, int64_t t0, int lanes) {
  const int64_t TH = tiles_h(g), TW = tiles_w(g), T = g.N * TH * TW;
  alignas(64) float e[24 * kMaxLanes], y[16 * kMaxLanes];
  for (int r = 0; r < rows; ++r) {
    // A^T m: [4][6] per lane, over the 6 rows of the 6x6; then (A^T m) A: [4][4].
    const float* mr = m + r * lanes;                  // m[xi][r][t] at mr[xi * rows * lanes + t]
    const int64_t xs = static_cast<int64_t>(rows) * lanes;
    for (int s = 0; s < 6; ++s) {
      const float *m0 = mr + (0 * 6 + s) * xs, *m1 = mr + (1 * 6 + s) * xs, *m2 = mr + (2 * 6 + s) * xs,
                  *m3 = mr + (3 * 6 + s) * xs, *m4 = mr + (4 * 6 + s) * xs, *m5 = mr + (5 * 6 + s) * xs;
      for (int t = 0; t < lanes; ++t) {
        const float a = m1[t] + m2[t], b = m1[t] - m2[t], c = m3[t] + m4[t], d = m3[t] - m4[t];
        e[(0 * 6 + s) * lanes + t] = m0[t] + a + c;
        e[(1 * 6 + s) * lanes + t] = b + 2.0f * d;
        e[(2 * 6 + s) * lanes + t] = a + 4.0f * c;
        e[(3 * 6 + s) * lanes + t] = b + 8.0f * d + m5[t];
      }
    }
    const float add = bias ? bias[oc0 + r] : 0.0f;
    for (int i = 0; i < 4; ++i) {
      const float *m0 = e + (i * 6 + 0) * lanes, *m1 = e + (i * 6 + 1) * lanes, *m2 = e + (i * 6 + 2) * lanes,
                  *m3 = e + (i * 6 + 3) * lanes, *m4 = e + (i * 6 + 4) * lanes, *m5 = e + (i * 6 + 5) * lanes;
      for (int t = 0; t < lanes; ++t) {
        const float a = m1[t] + m2[t], b = m1[t] - m2[t], c = m3[t] + m4[t], d = m3[t] - m4[t];
        y[(i * 4 + 0) * lanes + t] = m0[t] + a + c + add;
        y[(i * 4 + 1) * lanes + t] = b + 2.0f * d + add;
        y[(i * 4 + 2) * lanes + t] = a + 4.0f * c + add;
        y[(i * 4 + 3) * lanes + t] = b + 8.0f * d + m5[t] + add;
      }
    }
    // Scatter the 4x4 tiles, clipped to OH x OW.
    for (int t = 0; t < lanes; ++t) {
      const int64_t tile = t0 + t;
      if (tile >= T) break;
      const int64_t n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
      float* plane = out + (n * g.OC + oc0 + r) * g.OH * g.OW;
      const int64_t oh0 = 4 * th, ow0 = 4 * tw;
      const int64_t hi = std::min<int64_t>(4, g.OH - oh0), wi = std::min<int64_t>(4, g.OW - ow0);
      for (int64_t i = 0; i < hi; ++i)
        for (int64_t j = 0; j < wi; ++j) plane[(oh0 + i) * g.OW + ow0 + j] = y[(i * 4 + j) * lanes + t];
    }
  }
}

}  // namespace tinytorch::kernels

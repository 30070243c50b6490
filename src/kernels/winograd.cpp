// Winograd F(4x4, 3x3) weight, input and output transforms, vectorized across tiles: every
// inner loop runs over the `lanes` tiles of one packed panel, which the compiler turns into
// AVX-512 or AVX2 arithmetic. Tiles are gathered and scattered a tile row at a time, through
// zero-padded row buffers, so no per-element bounds tests remain.
#include "kernels/winograd.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/cpu.hpp"

namespace tinytorch::kernels {
namespace {

constexpr int kMaxLanes = 32;

int64_t tiles_h(const Conv2dGeometry& g) { return (g.OH + 3) / 4; }
int64_t tiles_w(const Conv2dGeometry& g) { return (g.OW + 3) / 4; }

typedef float v16 __attribute__((vector_size(64)));

inline v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }

// out (6 rows, out_stride apart) = B^T in (6 rows, in_stride apart), each row `lanes` wide.
template <int LANES>
inline __attribute__((always_inline)) void bt_rows(float* out, int64_t out_stride, const float* in, int64_t in_stride) {
  for (int t = 0; t < LANES; t += 16) {
    const v16 d0 = load16(in + t), d1 = load16(in + in_stride + t), d2 = load16(in + 2 * in_stride + t),
              d3 = load16(in + 3 * in_stride + t), d4 = load16(in + 4 * in_stride + t),
              d5 = load16(in + 5 * in_stride + t);
    store16(out + t, 4.0f * d0 - 5.0f * d2 + d4);
    store16(out + out_stride + t, -4.0f * (d1 + d2) + d3 + d4);
    store16(out + 2 * out_stride + t, 4.0f * (d1 - d2) - d3 + d4);
    store16(out + 3 * out_stride + t, 2.0f * (d3 - d1) - d2 + d4);
    store16(out + 4 * out_stride + t, 2.0f * (d1 - d3) - d2 + d4);
    store16(out + 5 * out_stride + t, 4.0f * d1 - 5.0f * d3 + d5);
  }
}

// A run of tiles of one tile row (same image n and tile row th, consecutive tw): the lanes
// [lane0, lane0 + count) of a panel.
struct Segment {
  int64_t n, th, tw0;
  int lane0, count;
};

// Splits tiles t0 .. t0 + lanes into segments; tiles past the grid are left out.
int segments_of(Segment* seg, const Conv2dGeometry& g, int64_t t0, int lanes) {
  const int64_t TH = tiles_h(g), TW = tiles_w(g), T = g.N * TH * TW;
  int count = 0;
  for (int t = 0; t < lanes && t0 + t < T;) {
    const int64_t tile = t0 + t, n = tile / (TH * TW), th = tile / TW % TH, tw = tile % TW;
    const int len = static_cast<int>(std::min<int64_t>(TW - tw, lanes - t));
    seg[count++] = Segment{n, th, tw, t, len};
    t += len;
  }
  return count;
}

// dst[j] = src[4 * j] for j < n, 16 at a time (reads up to src[4 * 16 * ceil(n / 16) - 1], writes
// up to dst[16 * ceil(n / 16) - 1]). __builtin_shufflevector: GCC 12 and clang alike.
inline __attribute__((always_inline)) void deinterleave4(float* dst, const float* src, int n) {
  for (int j = 0; j < n; j += 16, src += 64) {
    const v16 ab = __builtin_shufflevector(load16(src), load16(src + 16), 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0,
                                           0, 0, 0);
    const v16 cd = __builtin_shufflevector(load16(src + 32), load16(src + 48), 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0,
                                           0, 0, 0, 0, 0);
    store16(dst + j, __builtin_shufflevector(ab, cd, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
  }
}

// dst[4 * j + q] = y[q][j] for j < 16 (y[q] = y + q * stride): four rows interleaved into 64.
inline __attribute__((always_inline)) void interleave4(float* dst, const float* y, int64_t stride) {
  const v16 y0 = load16(y), y1 = load16(y + stride), y2 = load16(y + 2 * stride), y3 = load16(y + 3 * stride);
  // a/b: columns 0..7 of (y0, y1) and (y2, y3) paired; c/d: columns 8..15.
  const v16 a = __builtin_shufflevector(y0, y1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 b = __builtin_shufflevector(y2, y3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 c = __builtin_shufflevector(y0, y1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const v16 d = __builtin_shufflevector(y2, y3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  store16(dst, __builtin_shufflevector(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  store16(dst + 16, __builtin_shufflevector(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
  store16(dst + 32, __builtin_shufflevector(c, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  store16(dst + 48, __builtin_shufflevector(c, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
}

}  // namespace

void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr) {
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

namespace {

template <int LANES>
inline __attribute__((always_inline)) void input_transform(float* v, const float* in, const Conv2dGeometry& g,
                                                           int64_t t0) {
  constexpr int lanes = LANES;
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, t0, lanes);
  // d rows are 16 floats longer than the panel: a segment's last 16-wide store may run past its
  // lanes into the next segment's (which is written after it) or into this slack.
  constexpr int DS = LANES + 16;
  alignas(64) float d[36 * DS], e[36 * lanes];
  alignas(64) float row[4 * kMaxLanes + 80] = {};  // zero beyond each span: deinterleave4 reads past it
  const int used = segments ? seg[segments - 1].lane0 + seg[segments - 1].count : 0;
  for (int64_t c = 0; c < g.C; ++c) {
    const float* plane = in + c * g.H * g.W;  // the image's offset is added per segment
    // Gather d[6 * r + s][t] = input (4*th - pad_top + r, 4*tw - pad_left + s), 0 outside: per
    // segment and row r, copy the row's span into a zero-padded buffer, then deinterleave it.
    for (int si = 0; si < segments; ++si) {
      const Segment& sg = seg[si];
      const float* image = plane + sg.n * g.C * g.H * g.W;
      const int64_t w_first = 4 * sg.tw0 - g.pad_left, span = 4 * sg.count + 2;
      const int64_t lo = std::clamp<int64_t>(-w_first, 0, span), hi = std::clamp<int64_t>(g.W - w_first, lo, span);
      for (int r = 0; r < 6; ++r) {
        const int64_t ih = 4 * sg.th - g.pad_top + r;
        if (ih < 0 || ih >= g.H) {
          for (int64_t j = 0; j < span; ++j) row[j] = 0.0f;
        } else {
          const float* src = image + ih * g.W;  // column w_first + j
          for (int64_t j = 0; j < lo; ++j) row[j] = 0.0f;
          for (int64_t j = lo; j < hi; ++j) row[j] = src[w_first + j];
          for (int64_t j = hi; j < span; ++j) row[j] = 0.0f;
        }
        float* dr = d + 6 * r * DS + sg.lane0;
        for (int s = 0; s < 6; ++s) deinterleave4(dr + s * DS, row + s, sg.count);
      }
    }
    // Tiles past the grid (the last panel's spare lanes) transform zeros.
    for (int x = 0; x < 36; ++x)
      for (int t = used; t < lanes; ++t) d[x * DS + t] = 0.0f;
    // B^T d over r (for each column s), then (B^T d) B over s (for each row), written straight
    // into the packed panels: v[xi][c][t], xi = 6 * row + col.
    for (int s = 0; s < 6; ++s) bt_rows<LANES>(e + s * lanes, 6 * lanes, d + s * DS, 6 * DS);
    const int64_t xs = g.C * lanes;
    for (int r = 0; r < 6; ++r) bt_rows<LANES>(v + (6 * r * g.C + c) * lanes, xs, e + 6 * r * lanes, lanes);
  }
}

template <int LANES>
inline __attribute__((always_inline)) void output_transform(float* out, const float* m, const float* bias,
                                                            const Conv2dGeometry& g, int64_t oc0, int rows,
                                                            int64_t t0) {
  constexpr int lanes = LANES;
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, t0, lanes);
  // y rows carry 16 floats of slack: interleave4 reads 16 lanes from a segment's first lane.
  constexpr int YS = LANES + 16;
  alignas(64) float e[24 * lanes], y[16 * YS] = {};
  alignas(64) float line[4 * kMaxLanes + 64];
  const int64_t xs = static_cast<int64_t>(rows) * lanes;
  for (int r = 0; r < rows; ++r) {
    // A^T m: [4][6] per lane, over the 6 rows of the 6x6; then (A^T m) A: [4][4].
    const float* mr = m + r * lanes;  // m[xi][r][t] at mr[xi * xs + t]
    for (int s = 0; s < 6; ++s) {
      const float* col = mr + s * xs;  // m[6 * row + s] at col[row * 6 * xs]
      for (int t = 0; t < lanes; t += 16) {
        const v16 m0 = load16(col + t), m1 = load16(col + 6 * xs + t), m2 = load16(col + 12 * xs + t),
                  m3 = load16(col + 18 * xs + t), m4 = load16(col + 24 * xs + t), m5 = load16(col + 30 * xs + t);
        const v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        store16(e + (0 * 6 + s) * lanes + t, m0 + a + c);
        store16(e + (1 * 6 + s) * lanes + t, b + 2.0f * d);
        store16(e + (2 * 6 + s) * lanes + t, a + 4.0f * c);
        store16(e + (3 * 6 + s) * lanes + t, b + 8.0f * d + m5);
      }
    }
    const float add = bias ? bias[oc0 + r] : 0.0f;
    for (int i = 0; i < 4; ++i) {
      const float* ei = e + i * 6 * lanes;
      for (int t = 0; t < lanes; t += 16) {
        const v16 m0 = load16(ei + t), m1 = load16(ei + lanes + t), m2 = load16(ei + 2 * lanes + t),
                  m3 = load16(ei + 3 * lanes + t), m4 = load16(ei + 4 * lanes + t), m5 = load16(ei + 5 * lanes + t);
        const v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        store16(y + (i * 4 + 0) * YS + t, m0 + a + c + add);
        store16(y + (i * 4 + 1) * YS + t, b + 2.0f * d + add);
        store16(y + (i * 4 + 2) * YS + t, a + 4.0f * c + add);
        store16(y + (i * 4 + 3) * YS + t, b + 8.0f * d + m5 + add);
      }
    }
    // Scatter: per segment and output row, interleave the 4 columns of its tiles into one row
    // span and copy the part inside OH x OW.
    for (int si = 0; si < segments; ++si) {
      const Segment& sg = seg[si];
      float* plane = out + (sg.n * g.OC + oc0 + r) * g.OH * g.OW;
      const int64_t ow0 = 4 * sg.tw0, width = std::min<int64_t>(4 * sg.count, g.OW - ow0);
      for (int i = 0; i < 4; ++i) {
        const int64_t oh = 4 * sg.th + i;
        if (oh >= g.OH) break;
        const float* yi = y + i * 4 * YS + sg.lane0;
        for (int j = 0; j < sg.count; j += 16) interleave4(line + 4 * j, yi + j, YS);
        float* dst = plane + oh * g.OW + ow0;
        for (int64_t j = 0; j < width; ++j) dst[j] = line[j];
      }
    }
  }
}

// Compiled for both ISAs and both panel widths: 32 lanes (the AVX-512 micro-kernel's NR) are two
// zmm per row, 16 lanes (AVX2's NR) two ymm; cpu_isa() picks.
__attribute__((target("avx512f"))) void input_transform_avx512(float* v, const float* in, const Conv2dGeometry& g,
                                                               int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<32>(v, in, g, t0);
  input_transform<16>(v, in, g, t0);
}
void input_transform_avx2(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<32>(v, in, g, t0);
  input_transform<16>(v, in, g, t0);
}
__attribute__((target("avx512f"))) void output_transform_avx512(float* out, const float* m, const float* bias,
                                                                const Conv2dGeometry& g, int64_t oc0, int rows,
                                                                int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<32>(out, m, bias, g, oc0, rows, t0);
  output_transform<16>(out, m, bias, g, oc0, rows, t0);
}
void output_transform_avx2(float* out, const float* m, const float* bias, const Conv2dGeometry& g, int64_t oc0,
                           int rows, int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<32>(out, m, bias, g, oc0, rows, t0);
  output_transform<16>(out, m, bias, g, oc0, rows, t0);
}

}  // namespace

void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    input_transform_avx512(v, in, g, t0, lanes);
  } else {
    input_transform_avx2(v, in, g, t0, lanes);
  }
}

void winograd_f43_output_transform(float* out, const float* m, const float* bias, const Conv2dGeometry& g, int64_t oc0,
                                   int rows, int64_t t0, int lanes) {
  if (cpu_isa() == Isa::Avx512) {
    output_transform_avx512(out, m, bias, g, oc0, rows, t0, lanes);
  } else {
    output_transform_avx2(out, m, bias, g, oc0, rows, t0, lanes);
  }
}

}  // namespace tinytorch::kernels

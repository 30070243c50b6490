// The Winograd input and output transforms, written once for any vector type V (simd/avx2.hpp,
// simd/avx512.hpp) and both schemes (F43, S2 in winograd/common.hpp): input patches through the
// hardware gathers (V::width lanes, masked at the padding) from a table of offsets built once per
// panel, output tiles scattered a tile row at a time. Included only by the ISA files; internal
// linkage throughout.
#pragma once

#include "kernels/winograd/common.hpp"

namespace tinytorch::kernels {
namespace {

// e[S * i + s][t] = (B^T d)[i][s] for lane t, where d[r][s] = plane[idx[S * r + s][t]] where ok,
// else 0: the hardware gathers (16 lanes with AVX-512, 8 with AVX2) feeding the first half of
// B^T d B, bt(out, stride, d) being the scheme's B^T on one column.
template <class V, int LANES, int S, class BT>
__attribute__((always_inline)) inline void gather_bt(float* e, const float* plane, const PatchTable<LANES, S>& p,
                                                     BT bt) {
  for (int s = 0; s < S; ++s) {
    for (int t = 0; t < LANES; t += V::width) {
      typename V::gcc_vec d[S];
      for (int r = 0; r < S; ++r) d[r] = V::gather(plane, p.idx[S * r + s] + t, p.ok[S * r + s] + t);
      bt(e + s * LANES + t, S * LANES, d);
    }
  }
}

template <class V, class Scheme, int LANES>
inline __attribute__((always_inline)) void input_transform(float* v, const float* in, const Conv2dGeometry& g,
                                                           int64_t t0) {
  constexpr int S = Scheme::S;
  alignas(64) float e[S * S * LANES];
  PatchTable<LANES, S> table;
  patch_table(table, g, Scheme::grid(g), t0);
  const auto bt = [](float* out, int64_t stride, const auto& d) __attribute__((always_inline)) {
    Scheme::bt(out, stride, d);
  };
  for (int64_t c = 0; c < g.C; ++c) {
    // Lane t's patch: input (4*th - pad_top + r, 4*tw - pad_left + s), 0 outside. B^T d over r
    // (for each column s) as it is gathered, then (B^T d) B over s (for each row), written
    // straight into the packed panels: v[xi][c][t], xi = S * row + col.
    const float* plane = in + (table.image0 * g.C + c) * g.H * g.W;
    gather_bt<V, LANES, S>(e, plane, table, bt);
    const int64_t xs = winograd_v_stride(g.C, LANES);
    for (int r = 0; r < S; ++r) {
      const float* row = e + S * r * LANES;
      for (int t = 0; t < LANES; t += 16) {
        v16 d[S];
        for (int s = 0; s < S; ++s) d[s] = load16(row + s * LANES + t);
        Scheme::bt(v + S * r * xs + c * LANES + t, xs, d);
      }
    }
  }
}

template <class V, class Scheme, int LANES>
inline __attribute__((always_inline)) void output_transform(float* out, const float* m, int64_t xs, const float* bias,
                                                            const Conv2dGeometry& g, int64_t oc0, int rows,
                                                            int64_t t0) {
  constexpr int S = Scheme::S, O = Scheme::O;
  Segment seg[kMaxLanes];
  const int segments = segments_of(seg, g, Scheme::grid(g), t0, LANES);
  alignas(64) float e[O * S * LANES], y[O * O * LANES];
  alignas(64) float lines[O][O * kMaxLanes];  // output row i of lane t's tile at lines[i][O * t ..]
  for (int r = 0; r < rows; ++r) {
    // A^T m: [O][S] per lane, over the S rows of the S x S; then (A^T m) A: [O][O].
    const float* mr = m + r * LANES;  // m[xi][r][t] at mr[xi * xs + t]
    for (int s = 0; s < S; ++s) {
      const float* col = mr + s * xs;  // m[S * row + s] at col[row * S * xs]
      for (int t = 0; t < LANES; t += 16) {
        v16 mc[S], yc[O];
        for (int i = 0; i < S; ++i) mc[i] = load16(col + i * S * xs + t);
        Scheme::at(yc, mc);
        for (int i = 0; i < O; ++i) store16(e + (i * S + s) * LANES + t, yc[i]);
      }
    }
    const float add = bias ? bias[oc0 + r] : 0.0f;
    for (int i = 0; i < O; ++i) {
      const float* ei = e + i * S * LANES;
      for (int t = 0; t < LANES; t += 16) {
        v16 mc[S], yc[O];
        for (int j = 0; j < S; ++j) mc[j] = load16(ei + j * LANES + t);
        Scheme::at(yc, mc);
        for (int j = 0; j < O; ++j) store16(y + (i * O + j) * LANES + t, yc[j] + add);
      }
    }
    // Scatter: interleave the O columns of every tile's output rows (a segment's tiles are then
    // one row span each) and copy, per segment and row, the part inside OH x OW.
    for (int i = 0; i < O; ++i) {
      for (int j = 0; j < LANES; j += 16) {
        if constexpr (O == 4) {
          interleave4(lines[i] + 4 * j, y + i * 4 * LANES + j, LANES);
        } else {
          interleave2(lines[i] + 2 * j, y + i * 2 * LANES + j, LANES);
        }
      }
    }
    for (int si = 0; si < segments; ++si) {
      const Segment& sg = seg[si];
      float* plane = out + (sg.n * g.OC + oc0 + r) * g.OH * g.OW;
      const int64_t ow0 = O * sg.tw0, width = lesser(O * sg.count, g.OW - ow0);
      for (int i = 0; i < O; ++i) {
        const int64_t oh = O * sg.th + i;
        if (oh >= g.OH) break;
        V::copy_short(plane + oh * g.OW + ow0, lines[i] + O * sg.lane0, width);
      }
    }
  }
}

// Both panel widths: 32 lanes (the AVX-512 micro-kernel's NR) or 16 (AVX2's).
template <class V, class Scheme>
void input_transform_lanes(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  if (lanes == 32) return input_transform<V, Scheme, 32>(v, in, g, t0);
  input_transform<V, Scheme, 16>(v, in, g, t0);
}
template <class V, class Scheme>
void output_transform_lanes(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                            int64_t oc0, int rows, int64_t t0, int lanes) {
  if (lanes == 32) return output_transform<V, Scheme, 32>(out, m, xs, bias, g, oc0, rows, t0);
  output_transform<V, Scheme, 16>(out, m, xs, bias, g, oc0, rows, t0);
}

}  // namespace
}  // namespace tinytorch::kernels

// Fast pooling over one plane: whole output rows at a time, with a branch-free path for the
// common 2x2 stride-2 window that the compiler vectorizes, the 3x3 stride-2 max window taken
// apart by rows (max_rows_then_columns) and, for every other max window (and the average pools),
// the taps folded over space-to-depth blocks of the padded planes
// (pool_taps); with the winners' indices (training) other windows run the reference loops on the
// plane. Reference: reference/pool2d_reference.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/pool2d.hpp"
#include "kernels/window.hpp"

namespace tinytorch::kernels {
namespace {

// The reference's rule for the next value in scan order: a larger value or a NaN replaces the
// current maximum (so the first of equal values is kept, and any NaN wins). For a float or a
// vector of them alike (the masks or'ed, then a select).
template <class V>
inline V take(V best, V v) {
  return (v > best) | (v != v) ? v : best;
}

// Eight floats as one GCC vector, and eight compares' masks.
typedef float Floats8 __attribute__((vector_size(32)));
typedef int32_t Lanes8 __attribute__((vector_size(32)));
inline Floats8 load8(const float* p) {
  Floats8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// Whether any lane of a mask is set.
inline bool any_lane(Lanes8 mask) {
  bool any = false;
  for (int k = 0; k < 8; ++k) any |= mask[k] != 0;
  return any;
}

// Whether in[0 .. n) holds a NaN.
bool any_nan(const float* in, int64_t n) {
  Lanes8 seen = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const Floats8 v = load8(in + i);
    seen |= v != v;
  }
  bool found = any_lane(seen);
  for (; i < n; ++i) found |= std::isnan(in[i]);
  return found;
}

// A band of padded planes, space-to-depth by the strides: padded row hp (row -pad_h of the input
// is 0) and column wp of a band's j-th plane live in block (hp % stride_h, wp % stride_w) at row
// j * R + hp / stride_h, column wp / stride_w; every block has R rows per plane of Q columns, -inf
// where the input has none. Then a window tap (kh, kw) of every output (j, oh, ow) of the band lies
// in one block at a fixed offset from (j * R + oh) * Q + ow: the tap is one contiguous run over
// all the band's outputs. A band is some whole planes, or some output rows of one large plane.
constexpr int64_t kBandFloats = 1 << 12;  // a band's padded input and its accumulator fit in L1

// acc[i] = the fold of taps[0][i], taps[1][i], ... in order with step(a, v), for i < n: four
// vectors of the accumulator at a time held in registers through all the taps, so each tap's value
// is loaded once and each result stored once (a pass per tap loaded and stored the accumulator
// for every tap as well). The steps are the same in the same order: the same bits. The fold starts
// from the first tap's value, where the reference starts from -inf or 0: take(-inf, v) is v, bits
// included; 0 + v is v but for -0.
template <class Step>
void fold_taps(float* acc, const std::vector<const float*>& taps, int64_t n, Step step) {
  using Floats8 = float __attribute__((vector_size(32)));
  auto load = [](const float* p) {
    Floats8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  const size_t T = taps.size();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const float* first = taps[0] + i;
    Floats8 m0 = load(first), m1 = load(first + 8), m2 = load(first + 16), m3 = load(first + 24);
    for (size_t t = 1; t < T; ++t) {
      const float* v = taps[t] + i;
      m0 = step(m0, load(v)), m1 = step(m1, load(v + 8)), m2 = step(m2, load(v + 16)), m3 = step(m3, load(v + 24));
    }
    std::memcpy(acc + i, &m0, sizeof m0), std::memcpy(acc + i + 8, &m1, sizeof m1);
    std::memcpy(acc + i + 16, &m2, sizeof m2), std::memcpy(acc + i + 24, &m3, sizeof m3);
  }
  for (; i < n; ++i) {
    float m = taps[0][i];
    for (size_t t = 1; t < T; ++t) m = step(m, taps[t][i]);
    acc[i] = m;
  }
}

// Any window, `planes` planes in a row: per band, the padded planes laid out as above (copies of
// the rows when the stride is 1, a deinterleave otherwise), then the taps folded in the
// reference's scan order (kh, then kw) into an accumulator laid out as the blocks, each tap one
// contiguous run that vectorizes. Max pooling: the same order as the reference's, so the same bits
// (ties of +0 and -0, and which NaN wins, included); padding is -inf, which never replaces a
// maximum and is where the reference skips. Average pooling: padding is 0, the sum in float, then
// divided by the window's divisor (avg_window's, a product of a row and a column extent).
template <bool Max>
void pool_taps(float* out, const float* in, const Pool2dGeometry& g, int64_t planes, bool count_include_pad) {
  constexpr float fill = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
  const int64_t sh = g.stride_h, sw = g.stride_w;
  const int64_t span_h = (g.KH - 1) * g.dilation_h + 1, span_w = (g.KW - 1) * g.dilation_w + 1;
  const int64_t P = std::max((g.OW - 1) * sw + span_w, g.pad_w + g.W);  // padded width
  const int64_t Q = (P + sw - 1) / sw;
  auto block_rows = [&](int64_t rows) { return ((rows - 1) * sh + span_h + sh - 1) / sh; };
  // Output rows per band (of one plane): their padded rows times P within kBandFloats; when the
  // whole plane fits, whole planes per band.
  const int64_t band_rows = std::min(std::max<int64_t>((kBandFloats / P - span_h) / sh + 1, 1), g.OH);
  const int64_t band_planes =
      band_rows < g.OH ? 1 : std::max<int64_t>(1, kBandFloats / (block_rows(g.OH) * sh * sw * Q));
  // An average window's extent along one axis: clipped to the padded input, or to the input.
  auto extent = [&](int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t lo = o * stride - pad, hi = std::min(lo + k, size + pad);
    return count_include_pad ? hi - lo : std::min(hi, size) - std::max<int64_t>(lo, 0);
  };
  thread_local std::vector<float> padded, acc, column_extent;  // extents as floats: exact, and it vectorizes
  thread_local std::vector<const float*> taps;                 // each tap's run in the band's blocks
  if (!Max) {
    column_extent.resize(static_cast<size_t>(g.OW));
    for (int64_t ow = 0; ow < g.OW; ++ow)
      column_extent[static_cast<size_t>(ow)] = static_cast<float>(extent(ow, sw, g.pad_w, g.KW, g.W));
  }
  for (int64_t p0 = 0; p0 < planes; p0 += band_planes) {
    const int64_t np = std::min(band_planes, planes - p0);
    for (int64_t o0 = 0; o0 < g.OH; o0 += band_rows) {
      const int64_t rows = std::min(band_rows, g.OH - o0);
      const int64_t hp0 = o0 * sh;  // the band's first padded row
      const int64_t R = block_rows(rows);
      padded.assign(static_cast<size_t>(sh * sw * np * R * Q), fill);
      const int64_t ih0 = std::max<int64_t>(0, hp0 - g.pad_h);
      const int64_t ih1 = std::min(g.H, hp0 + R * sh - g.pad_h);
      bool nan = false;
      for (int64_t j = 0; j < np; ++j) {
        const float* plane = in + (p0 + j) * g.H * g.W;
        if (Max) nan = nan || any_nan(plane + ih0 * g.W, (ih1 - ih0) * g.W);
        for (int64_t cp = 0; cp < sw; ++cp) {  // padded columns cp, cp + sw, ...: input iw = wp - pad_w
          const int64_t q0 = std::max<int64_t>(0, (g.pad_w - cp + sw - 1) / sw);
          const int64_t q1 = std::min(Q, (g.W + g.pad_w - cp + sw - 1) / sw);
          int64_t hp = ih0 + g.pad_h - hp0, rp = hp % sh, r = hp / sh;  // the row's block, its row there
          for (int64_t ih = ih0; ih < ih1; ++ih) {
            const float* from = plane + ih * g.W + cp - g.pad_w;  // from[q * sw]: padded column q * sw + cp
            float* dst = padded.data() + (((rp * sw + cp) * np + j) * R + r) * Q;
            if (sw == 1) {
              std::copy(from + q0, from + q1, dst + q0);
            } else if (sw == 2) {  // a constant stride, which vectorizes
              for (int64_t q = q0; q < q1; ++q) dst[q] = from[2 * q];
            } else {
              for (int64_t q = q0; q < q1; ++q) dst[q] = from[q * sw];
            }
            if (++rp == sh) rp = 0, ++r;
          }
        }
      }
      // Accumulator rows R per plane, Q wide; what lies beyond a plane's `rows` rows and OW
      // columns folds values of no window (never read back), and the run stops at the last
      // plane's last output so that every read stays inside its block.
      const int64_t n = ((np - 1) * R + rows - 1) * Q + g.OW;
      acc.resize(static_cast<size_t>(n));
      taps.clear();
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t dh = kh * g.dilation_h;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t dw = kw * g.dilation_w;
          taps.push_back(padded.data() + ((((dh % sh) * sw + dw % sw) * np) * R + dh / sh) * Q + dw / sw);
        }
      }
      if (!Max) {
        fold_taps(acc.data(), taps, n, [](auto a, auto v) { return a + v; });
      } else if (!nan) {
        // Without a NaN take is a compare and a select, one max instruction.
        fold_taps(acc.data(), taps, n, [](auto a, auto v) { return v > a ? v : a; });
      } else {
        fold_taps(acc.data(), taps, n, [](auto a, auto v) { return take(a, v); });
      }
      const float* a = acc.data();
      for (int64_t j = 0; j < np; ++j) {
        for (int64_t r = 0; r < rows; ++r) {
          const float* from = a + (j * R + r) * Q;
          float* to = out + ((p0 + j) * g.OH + o0 + r) * g.OW;
          if (Max) {
            std::copy_n(from, g.OW, to);
            continue;
          }
          const float row_extent = static_cast<float>(extent(o0 + r, sh, g.pad_h, g.KH, g.H));
          const float* columns = column_extent.data();
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const float divisor = row_extent * columns[ow];
            to[ow] = divisor > 0.0f ? from[ow] / divisor : 0.0f;
          }
        }
      }
    }
  }
}

// Max pooling taken apart by rows. The reference scans a window's taps row by row, each row's taps
// in order, and its step (take) is associative: folding each row's taps first, then the rows in
// order, gives the same bits, ties of +0 and -0 and which NaN wins included (the first largest
// value, or the last NaN). So each input row's maxima under every output column are computed
// once, for all the output rows whose windows read that row (3x3 stride 2: once for two), into
// `across`, and then the rows each output row reads are folded: both passes run along contiguous
// rows of outputs, where the taps' fold (pool_taps) first copied the padded planes apart by
// stride phase. Output rows go a chunk at a time, so that the input rows a chunk reads and their
// maxima stay in L1; a chunk without NaN runs in vectors (max_three_stride_two), one holding a
// NaN with take here.
// SW, KW: the window row's stride and width, at compile time (the loop along a row then
// vectorizes), dilation 1. Taken for 3x3 stride 2 (ResNet's, DenseNet's, GoogLeNet's and
// SqueezeNet's pools): 1 x 64 x 112x112 0.19 -> 0.13 ms, 1 x 96 x 55x55 0.080 -> 0.059 (2 threads,
// Sapphire Rapids). At stride 1 the taps' fold, which then copies rows unchanged, stayed faster
// (1 x 192 x 28x28, 3x3: 63 us against 71), and so did it for 5x5 stride 2 and a padded 2x2 stride 2
// when this loop took the window's width at run time (100 us against 153, 48 against 63).
constexpr int64_t kChunkFloats = 1 << 12;

// The reference's step where no value is a NaN: a larger value replaces the maximum.
inline Floats8 larger(Floats8 m, Floats8 v) { return v > m ? v : m; }

// The rows of input maxima (`width` floats each, the first of input row ih0) that output row oh
// folds: the first, and their count; none where its window reads no input row, and then dst (the
// output row) is -inf, as the reference's empty window.
inline int64_t window_rows(const Pool2dGeometry& g, int64_t oh, int64_t ih0, const float* across, int64_t width,
                           float* dst, const float*& first) {
  int64_t k0 = 0, k1 = 0;
  taps_inside(oh * g.stride_h - g.pad_h, g.dilation_h, g.KH, g.H, k0, k1);
  if (k0 >= k1) {
    std::fill_n(dst, g.OW, -std::numeric_limits<float>::infinity());
    return 0;
  }
  first = across + (oh * g.stride_h - g.pad_h + k0 * g.dilation_h - ih0) * width;
  return k1 - k0;
}

// max_rows_then_columns' chunk for windows 3 wide at stride 2 along rows, 8 outputs a vector: input
// rows [ih0, ih1) and output rows [oh0, oh1) of one plane, unless a value of those rows is a NaN
// (then it returns false, and the caller runs the chunk with take). Each input row is copied
// between -inf columns (the padding: -inf never replaces a maximum, so the edge columns' windows
// give the bits of their taps inside), so that every output column runs the same vector code
// (the row's first and last columns went one by one). Sixteen input columns x0, x1 and the
// sixteen two further y0, y1 give outputs ow..ow+7 as the fold of their even, odd and next even
// columns, split apart by in-lane shuffles only: the row of maxima is kept in their lane order
// (outputs 0 1 4 5 2 3 6 7), which the fold of the rows leaves as it is, and put back in column
// order once per output row. The same steps in the same order as the reference: the same bits.
// Against the loop along a row that GCC vectorized with a lane-crossing permute per tap and went
// column by column at the row's ends, after a pass over the chunk for NaN (which the vectors now
// check as they load), one thread on Zen 3: 1 x 64 x 112x112 3x3 stride 2 from 5.9-7.3 to
// 4.0-4.6 us a plane; 2 threads, 1.43x (ResNet's pool), 1 x 96 x 55x55 1.59x, 1 x 192 x 56x56
// 1.70x, 1 x 480 x 28x28 2.2x, batch 8 at 112x112 (bound by memory) 1.05x.
bool max_three_stride_two(float* o, const float* plane, const Pool2dGeometry& g, int64_t oh0, int64_t oh1, int64_t ih0,
                          int64_t ih1, std::vector<float>& across, std::vector<float>& padded) {
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  const int64_t groups = (g.OW + 7) / 8, width = 8 * groups;  // a row of maxima, in whole vectors
  const int64_t span = 2 * width + 2;                         // the padded row the vectors read
  const int64_t copied = std::max<int64_t>(0, std::min(g.W, span - g.pad_w));
  padded.assign(static_cast<size_t>(span), lowest);
  across.resize(static_cast<size_t>(std::max<int64_t>(1, ih1 - ih0) * width));
  Lanes8 nan = {};
  for (int64_t ih = ih0; ih < ih1; ++ih) {
    std::memcpy(padded.data() + g.pad_w, plane + ih * g.W, static_cast<size_t>(copied) * sizeof(float));
    float* a = across.data() + (ih - ih0) * width;
    for (int64_t q = 0; q < groups; ++q) {
      const float* p = padded.data() + 16 * q;
      const Floats8 x0 = load8(p), x1 = load8(p + 8), y0 = load8(p + 2), y1 = load8(p + 10);
      nan |= (x0 != x0) | (x1 != x1) | (y1 != y1);
      // Lanes 0 1 4 5 2 3 6 7 of the even, the odd and the next even columns: in-lane shuffles.
      const Floats8 even = __builtin_shufflevector(x0, x1, 0, 2, 8, 10, 4, 6, 12, 14);
      const Floats8 odd = __builtin_shufflevector(x0, x1, 1, 3, 9, 11, 5, 7, 13, 15);
      const Floats8 next = __builtin_shufflevector(y0, y1, 0, 2, 8, 10, 4, 6, 12, 14);
      const Floats8 m = larger(larger(even, odd), next);
      std::memcpy(a + 8 * q, &m, sizeof m);
    }
  }
  if (any_lane(nan)) return false;
  const int64_t step = g.dilation_h * width;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    float* dst = o + oh * g.OW;
    const float* first = nullptr;
    const int64_t rows = window_rows(g, oh, ih0, across.data(), width, dst, first);
    for (int64_t q = 0; rows > 0 && q < groups; ++q) {
      Floats8 m = load8(first + 8 * q);
      if (rows == 3) {  // the common window: straight code, no loop
        m = larger(larger(m, load8(first + step + 8 * q)), load8(first + 2 * step + 8 * q));
      } else {
        for (int64_t kh = 1; kh < rows; ++kh) m = larger(m, load8(first + kh * step + 8 * q));
      }
      m = __builtin_shufflevector(m, m, 0, 1, 4, 5, 2, 3, 6, 7);  // lanes -> column order (its own inverse)
      if (8 * q + 8 <= g.OW) {
        std::memcpy(dst + 8 * q, &m, sizeof m);
      } else {  // the row's last outputs
        for (int64_t k = 0; k < g.OW - 8 * q; ++k) dst[8 * q + k] = m[k];
      }
    }
  }
  return true;
}

template <int SW, int KW>
void max_rows_then_columns(float* out, const float* in, const Pool2dGeometry& g, int64_t planes) {
  static_assert(SW == 2 && KW == 3, "the chunks without NaN run max_three_stride_two");
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  constexpr int64_t sw = SW, kw_taps = KW, dw = 1;
  // Output columns [ow0, ow1) have every tap of their window row inside the input row.
  const int64_t ow0 = std::min(g.OW, (g.pad_w + sw - 1) / sw);
  const int64_t last = g.W - 1 - (kw_taps - 1) * dw + g.pad_w;  // the largest ow * sw inside
  const int64_t ow1 = std::max(ow0, last < 0 ? 0 : std::min(g.OW, last / sw + 1));
  const int64_t span_h = (g.KH - 1) * g.dilation_h + 1;
  const int64_t chunk =
      std::clamp<int64_t>((kChunkFloats / std::max<int64_t>(1, g.W) - span_h) / g.stride_h + 1, 1, g.OH);
  thread_local std::vector<float> across, padded;
  auto run = [&](auto step, float* o, const float* plane, int64_t oh0, int64_t oh1) {
    const int64_t ih0 = std::max<int64_t>(0, oh0 * g.stride_h - g.pad_h);
    const int64_t ih1 = std::min(g.H, (oh1 - 1) * g.stride_h - g.pad_h + span_h);
    across.resize(static_cast<size_t>(std::max<int64_t>(1, ih1 - ih0) * g.OW));
    for (int64_t ih = ih0; ih < ih1; ++ih) {
      const float* row = plane + ih * g.W;
      float* a = across.data() + (ih - ih0) * g.OW;
      auto edge = [&](int64_t ow) {  // a column whose window row leaves the input row
        int64_t k0 = 0, k1 = 0;
        taps_inside(ow * sw - g.pad_w, dw, kw_taps, g.W, k0, k1);
        float m = lowest;
        for (int64_t kw = k0; kw < k1; ++kw)
          m = kw == k0 ? row[ow * sw - g.pad_w + kw * dw] : step(m, row[ow * sw - g.pad_w + kw * dw]);
        a[ow] = m;
      };
      for (int64_t ow = 0; ow < ow0; ++ow) edge(ow);
      const float* r = row - g.pad_w;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        float m = r[ow * sw];
        for (int64_t kw = 1; kw < kw_taps; ++kw) m = step(m, r[ow * sw + kw * dw]);
        a[ow] = m;
      }
      for (int64_t ow = ow1; ow < g.OW; ++ow) edge(ow);
    }
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      float* dst = o + oh * g.OW;
      const float* first = nullptr;
      const int64_t rows = window_rows(g, oh, ih0, across.data(), g.OW, dst, first);
      if (rows > 0) std::copy_n(first, g.OW, dst);
      for (int64_t kh = 1; kh < rows; ++kh) {
        const float* a = first + kh * g.dilation_h * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = step(dst[ow], a[ow]);
      }
    }
  };
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = in + p * g.H * g.W;
    float* o = out + p * g.OH * g.OW;
    for (int64_t oh0 = 0; oh0 < g.OH; oh0 += chunk) {
      const int64_t oh1 = std::min(g.OH, oh0 + chunk);
      const int64_t ih0 = std::max<int64_t>(0, oh0 * g.stride_h - g.pad_h);
      const int64_t ih1 = std::min(g.H, (oh1 - 1) * g.stride_h - g.pad_h + span_h);
      if (!max_three_stride_two(o, plane, g, oh0, oh1, ih0, ih1, across, padded)) {
        run([](float a, float v) { return take(a, v); }, o, plane, oh0, oh1);  // a NaN in the chunk
      }
    }
  }
}

bool is_two_by_two(const Pool2dGeometry& g) {
  return g.KH == 2 && g.KW == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
         g.dilation_h == 1 && g.dilation_w == 1 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
}

// The common 2x2 stride-2 window, branch free a row at a time (the compiler vectorizes it).
void maxpool2d_two_by_two(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g) {
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

}  // namespace

void maxpool2d_plane(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g) {
  if (is_two_by_two(g)) return maxpool2d_two_by_two(out, indices, in, g);
  // Any window with the winners' indices (for backward): the reference's scan order (rows of
  // taps, then columns) and NaN rule over the taps inside the plane. A row of outputs at a time,
  // tap by tap: each tap updates every output of the row whose window it falls in, so the
  // comparisons of neighbouring outputs are independent (one output's nine in a row were a chain
  // of dependent compares and selects).
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t ih0 = oh * g.stride_h - g.pad_h;
    int64_t kh0 = 0, kh1 = 0;
    taps_inside(ih0, g.dilation_h, g.KH, g.H, kh0, kh1);
    float* best = out + oh * g.OW;
    int64_t* at = indices + oh * g.OW;
    std::fill_n(best, g.OW, -std::numeric_limits<float>::infinity());  // an empty window stays -inf,
    std::fill_n(at, g.OW, int64_t{-1});                                // as the reference's
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const int64_t row = (ih0 + kh * g.dilation_h) * g.W;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        // the outputs whose column under this tap, ow * stride - pad + kw * dilation, is inside
        const int64_t shift = kw * g.dilation_w - g.pad_w;
        const int64_t sw = g.stride_w;  // in a local: the int64 index stores could alias g's fields
        const int64_t ow0 = shift >= 0 ? 0 : (-shift + sw - 1) / sw;
        const int64_t ow1 = shift > g.W - 1 ? 0 : std::min(g.OW, (g.W - 1 - shift) / sw + 1);
        const int64_t base = row + shift;
        for (int64_t ow = ow0; ow < ow1; ++ow) {
          const int64_t i = base + ow * sw;
          const float v = in[i], b = best[ow];
          const int64_t a = at[ow];
          const bool take = (a < 0) | (v > b) | (v != v);  // | and selects, stored always: no branch
          best[ow] = take ? v : b;
          at[ow] = take ? i : a;
        }
      }
    }
  }
}

void maxpool2d_planes(float* out, const float* in, const Pool2dGeometry& g, int64_t planes) {
  if (is_two_by_two(g)) {
    for (int64_t p = 0; p < planes; ++p) maxpool2d_two_by_two(out + p * g.OH * g.OW, nullptr, in + p * g.H * g.W, g);
  } else if (g.KW == 3 && g.stride_w == 2 && g.dilation_w == 1) {
    max_rows_then_columns<2, 3>(out, in, g, planes);
  } else {
    pool_taps<true>(out, in, g, planes, false);
  }
}

void avgpool2d_planes(float* out, const float* in, const Pool2dGeometry& g, int64_t planes, bool count_include_pad) {
  if (!is_two_by_two(g)) {
    pool_taps<false>(out, in, g, planes, count_include_pad);
    return;
  }
  for (int64_t p = 0; p < planes; ++p) {  // the 2x2 stride-2 window, as the max pool's
    const float* plane = in + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* row = out + (p * g.OH + oh) * g.OW;
      const float* r0 = plane + 2 * oh * g.W;
      const float* r1 = r0 + g.W;
      for (int64_t ow = 0; ow < g.OW; ++ow)
        row[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) / 4.0f;
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

// Pooling, concatenation and the per-channel affine in the channel-blocked layout
// (conv2d_blocked.hpp): every step reads and writes pixels of B channels, vectors of B lanes. The
// pools follow PyTorch's output sizes and rules, as max_pool2d and avg_pool2d (the padding lanes
// are pooled too, and stay ignored).
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/window.hpp"
#include "ops/conv2d_blocked.hpp"
#include "ops/pool2d.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch::ops {
namespace {

// x blocked [N, ceil(channels / B), H, W, B] float32 (B its last dimension: 8 or 16); the plain
// shape it stands for.
Shape plain_shape(const char* op, const Tensor& x, int64_t channels) {
  const Shape& s = x.shape();
  if (x.dtype() != DType::Float32 || x.dim() != 5 || (s[4] != 8 && s[4] != 16) || channels < 1 ||
      s[1] != (channels + s[4] - 1) / s[4]) {
    throw ShapeError(std::string(op) + ": expected float32 [N, ceil(C/B), H, W, B] (B 8 or 16) of C = " +
                     std::to_string(channels) + " channels, got " + shape_to_string(s) + " " + dtype_name(x.dtype()));
  }
  return {s[0], channels, s[2], s[3]};
}

// Eight lanes as one vector (GCC's vector extension: AVX2 registers in this build); a block of B
// lanes is B / 8 of them.
using Lanes8 = float __attribute__((vector_size(32)));

inline Lanes8 load8(const float* p) {
  Lanes8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, Lanes8 v) { std::memcpy(p, &v, sizeof v); }

// Eight compares' masks, and whether any lane of one is set.
using Mask8 = int __attribute__((vector_size(32)));
inline bool any_lane(Mask8 mask) {
  bool any = false;
  for (int k = 0; k < 8; ++k) any |= mask[k] != 0;
  return any;
}

// PyTorch's max_pool2d scans a window's taps in order (rows, then columns): the first seeds the
// maximum, after that a larger value or any NaN replaces it. later_max(a, b) is that step for
// partial maxima, b of taps after a's. The fold is associative, so a window split into runs of
// taps, combined in order, gives the same bits (the last NaN, else the first largest value).
// later_max where neither holds a NaN: b > a ? b : a, one instruction (vmaxps(b, a), which gives
// a where either is NaN).
inline Lanes8 max_of_numbers(Lanes8 a, Lanes8 b) {
#ifdef __AVX__
  return __builtin_ia32_maxps256(b, a);
#else
  return b > a ? b : a;
#endif
}

// Right but for a NaN b, which one select puts back (three instructions where the comparisons
// took four).
inline Lanes8 later_max(Lanes8 a, Lanes8 b) { return b != b ? b : max_of_numbers(a, b); }

// The max of B lanes over taps [kh0, kh1) x [kw0, kw1) of the window whose tap (0, 0) is at
// plane + first (which may lie outside the plane; the taps given lie inside).
template <int B>
inline void max_window(float* dst, const float* plane, int64_t first, const kernels::Pool2dGeometry& g, int64_t kh0,
                       int64_t kh1, int64_t kw0, int64_t kw1) {
  constexpr int V = B / 8;
  const int64_t row_step = g.dilation_h * g.W * B, col_step = g.dilation_w * B;
  // One run per tap row, two rows at a time: independent chains, folded in order.
  auto row_max = [&](int64_t kh, Lanes8(&m)[V]) {
    const float* at = plane + first + kh * row_step + kw0 * col_step;
    for (int v = 0; v < V; ++v) m[v] = load8(at + 8 * v);
    for (int64_t kw = kw0 + 1; kw < kw1; ++kw) {
      at += col_step;
      for (int v = 0; v < V; ++v) m[v] = later_max(m[v], load8(at + 8 * v));
    }
  };
  Lanes8 best[V];
  row_max(kh0, best);
  int64_t kh = kh0 + 1;
  for (; kh + 1 < kh1; kh += 2) {
    Lanes8 r0[V], r1[V];
    row_max(kh, r0);
    row_max(kh + 1, r1);
    for (int v = 0; v < V; ++v) best[v] = later_max(best[v], later_max(r0[v], r1[v]));
  }
  if (kh < kh1) {
    Lanes8 r0[V];
    row_max(kh, r0);
    for (int v = 0; v < V; ++v) best[v] = later_max(best[v], r0[v]);
  }
  for (int v = 0; v < V; ++v) store8(dst + 8 * v, best[v]);
}

// The interior columns [ow0, ow1) of an output row (windows inside the row, rows [kh0, kh1) of
// them inside the plane), a window row at a time: each row's taps folded into a vector, then into
// dst (the first row's stored): the scan order's fold grouped by rows, so the same bits as
// max_window. Every column's vectors are independent, so the loop runs at the throughput of the
// maxima, where a window at a time waited for each fold step's latency. KW > 0 a compile-time
// width, 0 any (g.KW). Without Exact a step is one vmaxps, right where no value read is NaN: it
// returns whether one was (a compare and an or beside each load, where a pass over the rows before
// it read the input once more), and the caller then runs the row again with Exact.
template <int B, int KW, bool Exact>
bool max_interior(float* dst, const float* src, const kernels::Pool2dGeometry& g, int64_t ih0, int64_t kh0, int64_t kh1,
                  int64_t ow0, int64_t ow1) {
  Mask8 seen = {};
  auto read = [&](const float* p) {
    const Lanes8 x = load8(p);
    if (!Exact) seen |= x != x;
    return x;
  };
  auto step = [](Lanes8 a, Lanes8 b) { return Exact ? later_max(a, b) : max_of_numbers(a, b); };
  const int64_t taps = KW > 0 ? KW : g.KW, col_step = g.dilation_w * B, out_step = g.stride_w * B;
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const float* at = src + ((ih0 + kh * g.dilation_h) * g.W + ow0 * g.stride_w - g.pad_w) * B;
    float* out = dst + ow0 * B;
    for (int64_t ow = ow0; ow < ow1; ++ow, at += out_step, out += B) {
      for (int v = 0; v < B; v += 8) {
        Lanes8 m = read(at + v);
        for (int64_t kw = 1; kw < taps; ++kw) m = step(m, read(at + kw * col_step + v));
        store8(out + v, kh == kh0 ? m : step(load8(out + v), m));
      }
    }
  }
  return any_lane(seen);
}

// Output row oh of one block's plane: the max over each window, padding as -inf. The columns whose
// windows lie inside the row: max_interior; the others max_window, the taps inside worked out.
template <int B>
void max_row(float* dst, const float* src, const kernels::Pool2dGeometry& g, int64_t oh) {
  int64_t kh0 = 0, kh1 = 0;
  const int64_t ih0 = oh * g.stride_h - g.pad_h;
  kernels::taps_inside(ih0, g.dilation_h, g.KH, g.H, kh0, kh1);
  // [ow0, ow1): the columns whose windows lie inside the row (iw0 >= 0, iw0 + span < W).
  const int64_t last = g.W - 1 - (g.KW - 1) * g.dilation_w + g.pad_w;  // ow * stride_w at most
  const int64_t ow0 = std::min(g.OW, (g.pad_w + g.stride_w - 1) / g.stride_w);
  const int64_t ow1 = last < 0 ? ow0 : std::max(ow0, std::min(g.OW, last / g.stride_w + 1));
  if (kh0 < kh1 && ow0 < ow1) {
    auto interior = [&](auto exact) {
      constexpr bool E = decltype(exact)::value;
      if (g.KW == 2) return max_interior<B, 2, E>(dst, src, g, ih0, kh0, kh1, ow0, ow1);
      if (g.KW == 3) return max_interior<B, 3, E>(dst, src, g, ih0, kh0, kh1, ow0, ow1);
      return max_interior<B, 0, E>(dst, src, g, ih0, kh0, kh1, ow0, ow1);
    };
    // A NaN among the values read (padding lanes too: one there only costs the exact steps): again
    // with the exact steps.
    if (interior(std::false_type{})) interior(std::true_type{});
  }
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    if (ow == ow0 && kh0 < kh1) ow = std::max(ow, ow1);  // done above
    if (ow >= g.OW) break;
    const int64_t iw0 = ow * g.stride_w - g.pad_w;
    int64_t kw0 = 0, kw1 = g.KW;
    kernels::taps_inside(iw0, g.dilation_w, g.KW, g.W, kw0, kw1);
    if (kh0 >= kh1 || kw0 >= kw1) {
      std::fill(dst + ow * B, dst + (ow + 1) * B, -std::numeric_limits<float>::infinity());
      continue;
    }
    max_window<B>(dst + ow * B, src, (ih0 * g.W + iw0) * B, g, kh0, kh1, kw0, kw1);
  }
}

// Output rows [oh0, oh1) of one block's plane where no value they read is a NaN (else false, and
// the caller runs max_row on them), input rows first: each input row the band reads is copied
// between -inf columns (the padding: -inf never replaces a maximum, so the edge columns' windows
// give the bits of their taps inside, and every column runs the same loop), a compare per vector
// noting a NaN as it goes; its taps' maxima under every output column are folded once, for every
// output row whose windows read the row (3 of them at stride 1, where max_row folded each input
// row again for each); then each output row folds its window's rows in order. The scan order's
// fold grouped by rows, as max_row's: the same bits. KW > 0 a compile-time width, 0 any (g.KW).
template <int B, int KW>
bool max_band(float* dst, const float* src, const kernels::Pool2dGeometry& g, int64_t oh0, int64_t oh1,
              std::vector<float>& padded, std::vector<float>& across) {
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  const int64_t taps = KW > 0 ? KW : g.KW, span_h = (g.KH - 1) * g.dilation_h + 1;
  const int64_t ih0 = std::max<int64_t>(0, oh0 * g.stride_h - g.pad_h);
  const int64_t ih1 = std::min(g.H, (oh1 - 1) * g.stride_h - g.pad_h + span_h);
  // The padded row: every column a window reads, the input's at pad_w on.
  const int64_t wide = std::max(g.pad_w + g.W, (g.OW - 1) * g.stride_w + (taps - 1) * g.dilation_w + 1);
  padded.assign(static_cast<size_t>(wide * B), lowest);
  across.resize(static_cast<size_t>(std::max<int64_t>(1, ih1 - ih0) * g.OW * B));
  const int64_t col_step = g.dilation_w * B, out_step = g.stride_w * B;
  Mask8 seen = {};
  for (int64_t ih = ih0; ih < ih1; ++ih) {
    const float* row = src + ih * g.W * B;
    float* p = padded.data() + g.pad_w * B;
    for (int64_t i = 0; i < g.W * B; i += 8) {
      const Lanes8 x = load8(row + i);
      seen |= x != x;
      store8(p + i, x);
    }
    float* a = across.data() + (ih - ih0) * g.OW * B;
    const float* at = padded.data();
    for (int64_t ow = 0; ow < g.OW; ++ow, at += out_step, a += B) {
      for (int v = 0; v < B; v += 8) {
        Lanes8 m = load8(at + v);
        for (int64_t kw = 1; kw < taps; ++kw) m = max_of_numbers(m, load8(at + kw * col_step + v));
        store8(a + v, m);
      }
    }
  }
  if (any_lane(seen)) return false;
  const int64_t row_floats = g.OW * B, step = g.dilation_h * row_floats;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    int64_t kh0 = 0, kh1 = 0;
    kernels::taps_inside(oh * g.stride_h - g.pad_h, g.dilation_h, g.KH, g.H, kh0, kh1);
    float* out = dst + (oh - oh0) * row_floats;
    if (kh0 >= kh1) {  // no input row under the window: -inf, as the reference's empty window
      std::fill(out, out + row_floats, lowest);
      continue;
    }
    const float* first = across.data() + (oh * g.stride_h - g.pad_h + kh0 * g.dilation_h - ih0) * row_floats;
    const int64_t rows = kh1 - kh0;
    for (int64_t i = 0; i < row_floats; i += 8) {
      Lanes8 m = load8(first + i);
      for (int64_t kh = 1; kh < rows; ++kh) m = max_of_numbers(m, load8(first + kh * step + i));
      store8(out + i, m);
    }
  }
  return true;
}

// Output row oh of one block's plane: the mean over each window clipped to the padded input,
// the divisor counting the padding or not (avg_window).
template <int B>
void avg_row(float* dst, const float* src, const kernels::Pool2dGeometry& g, int64_t oh, bool count_include_pad) {
  constexpr int V = B / 8;
  for (int64_t ow = 0; ow < g.OW; ++ow, dst += B) {
    const kernels::AvgWindow w = kernels::avg_window(g, oh, ow, count_include_pad);
    Lanes8 sum[V] = {};
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) {
        const float* at = src + (ih * g.W + iw) * B;
        for (int v = 0; v < V; ++v) sum[v] += load8(at + 8 * v);
      }
    const float scale = w.divisor > 0 ? 1.0f / static_cast<float>(w.divisor) : 0.0f;
    for (int v = 0; v < V; ++v) store8(dst + 8 * v, sum[v] * scale);
  }
}

// Every output row of every (image, block) plane over the threads; `row` fills one, with `window`
// operations per output lane (the work estimate).
template <class Row>
Tensor pool_rows(const Tensor& x_arg, const kernels::Pool2dGeometry& g, int64_t window, Row row) {
  const Tensor x = x_arg.contiguous();
  const Shape& s = x.shape();
  const int64_t B = s[4], planes = s[0] * s[1];
  Tensor out = Tensor::empty({s[0], s[1], g.OH, g.OW, B});
  const float* in = x.data();
  float* o = out.data_to_write();
  parallel_for(
      planes * g.OH,
      [&](int64_t i, int) {
        const int64_t p = i / g.OH, oh = i % g.OH;
        row(o + (p * g.OH + oh) * g.OW * B, in + p * g.H * g.W * B, oh);
      },
      planes * g.OH * g.OW * B * window);
  return out;
}

// A band of at most this many floats of input rows' maxima (max_band's `across`), so that it and
// the rows it is made from stay in L1.
constexpr int64_t kBandFloats = 4096;

// Bands of output rows of every (image, block) plane over the threads: max_band where by_rows
// (below) holds and the band reads no NaN, else max_row a row at a time. Bands as tall as
// kBandFloats allows, shorter where the planes would not give each thread 4 items.
template <int B>
Tensor max_pool_bands(const Tensor& x_arg, const kernels::Pool2dGeometry& g) {
  const Tensor x = x_arg.contiguous();
  const Shape& s = x.shape();
  const int64_t planes = s[0] * s[1];
  Tensor out = Tensor::empty({s[0], s[1], g.OH, g.OW, B});
  const float* in = x.data();
  float* o = out.data_to_write();
  const int64_t span_h = (g.KH - 1) * g.dilation_h + 1;
  int64_t rows = std::clamp<int64_t>((kBandFloats / std::max<int64_t>(1, g.OW * B) - span_h) / g.stride_h + 1, 1, g.OH);
  const int64_t want = 4 * get_num_threads();
  while (rows > 1 && planes * ((g.OH + rows - 1) / rows) < want) rows = (rows + 1) / 2;
  const int64_t bands = (g.OH + rows - 1) / rows;
  // Input rows first where each input row serves 2 output rows or more (3x3 at stride 1: 3); at
  // stride 2 (1.5 each) the rows' copy and their maxima stored and read back cost more than
  // they save, and max_row runs (both timed on one thread, Zen 3, 8 lanes: 3x3 stride 1 on 192 x
  // 28x28 73 -> 46 us, 480 x 14x14 56 -> 35, batch 8 of 192 x 28x28 316 -> 245; stride 2 on 64 x
  // 112x112 52 -> 92, 192 x 56x56 58 -> 118).
  const bool by_rows = g.KH >= 2 * g.stride_h;
  parallel_for(
      planes * bands,
      [&](int64_t i, int) {
        thread_local std::vector<float> padded, across;
        const int64_t p = i / bands, oh0 = i % bands * rows, oh1 = std::min(g.OH, oh0 + rows);
        float* dst = o + (p * g.OH + oh0) * g.OW * B;
        const float* src = in + p * g.H * g.W * B;
        if (by_rows) {
          const bool done = g.KW == 3   ? max_band<B, 3>(dst, src, g, oh0, oh1, padded, across)
                            : g.KW == 2 ? max_band<B, 2>(dst, src, g, oh0, oh1, padded, across)
                                        : max_band<B, 0>(dst, src, g, oh0, oh1, padded, across);
          if (done) return;
        }
        for (int64_t oh = oh0; oh < oh1; ++oh) max_row<B>(dst + (oh - oh0) * g.OW * B, src, g, oh);
      },
      planes * g.OH * g.OW * B * 4 * g.KH * g.KW);  // a tap: two compares, an or and a select (max_window)
  return out;
}

}  // namespace

Tensor max_pool_blocked(const Tensor& x, int64_t channels, const MaxPool2dOptions& o) {
  const kernels::Pool2dGeometry g = pool2d_geometry("max_pool_blocked", plain_shape("max_pool_blocked", x, channels),
                                                    o.kernel_size, o.stride, o.padding, o.dilation, o.ceil_mode);
  if (x.shape()[4] == 8) return max_pool_bands<8>(x, g);
  return max_pool_bands<16>(x, g);
}

Tensor avg_pool_blocked(const Tensor& x, int64_t channels, const AvgPool2dOptions& o) {
  const kernels::Pool2dGeometry g = pool2d_geometry("avg_pool_blocked", plain_shape("avg_pool_blocked", x, channels),
                                                    o.kernel_size, o.stride, o.padding, Size2{1}, o.ceil_mode);
  const bool cip = o.count_include_pad;
  if (x.shape()[4] == 8)
    return pool_rows(x, g, g.KH * g.KW, [&](float* d, const float* s, int64_t oh) { avg_row<8>(d, s, g, oh, cip); });
  return pool_rows(x, g, g.KH * g.KW, [&](float* d, const float* s, int64_t oh) { avg_row<16>(d, s, g, oh, cip); });
}

namespace {

// Blocked inputs joined along the channels (concat_blocked's rule: every input but the last fills
// its blocks): the inputs made contiguous, the output's shape, and where each output block comes
// from (input, block of that input).
struct Joined {
  std::vector<Tensor> parts;
  Shape shape;  // [N, blocks, H, W, B]
  std::vector<std::pair<size_t, int64_t>> source;
  int64_t channels = 0;
};

Joined join(const char* op, const std::vector<Tensor>& xs, const std::vector<int64_t>& channels) {
  if (xs.empty() || xs.size() != channels.size())
    throw ShapeError(std::string(op) + ": expected a channel count per input");
  Joined j;
  const Shape first = plain_shape(op, xs[0], channels[0]);
  const int64_t B = xs[0].shape()[4];
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape p = plain_shape(op, xs[i], channels[i]);
    if (xs[i].shape()[4] != B || p[0] != first[0] || p[2] != first[2] || p[3] != first[3]) {
      throw ShapeError(std::string(op) + ": input " + std::to_string(i) + " " + shape_to_string(xs[i].shape()) +
                       " does not match input 0 " + shape_to_string(xs[0].shape()) + " outside the channels");
    }
    if (i + 1 < xs.size() && channels[i] % B != 0) {
      throw ShapeError(std::string(op) + ": every input but the last must fill its blocks of " + std::to_string(B) +
                       " channels; input " + std::to_string(i) + " has " + std::to_string(channels[i]));
    }
    j.parts.push_back(xs[i].contiguous());
    for (int64_t b = 0; b < xs[i].shape()[1]; ++b) j.source.emplace_back(i, b);
    j.channels += channels[i];
  }
  j.shape = {first[0], static_cast<int64_t>(j.source.size()), first[2], first[3], B};
  return j;
}

// Every (image, output block) plane of a join over the threads: fill(dst, src, block) with the
// plane's P * B floats at dst and its source's at src.
template <class Fill>
Tensor join_planes(const Joined& j, Fill&& fill) {
  const int64_t N = j.shape[0], blocks = j.shape[1], plane = j.shape[2] * j.shape[3] * j.shape[4];
  Tensor out = Tensor::empty(j.shape);
  float* o = out.data_to_write();
  parallel_for(
      N * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / blocks, block = item % blocks;
        const auto& [part, b] = j.source[static_cast<size_t>(block)];
        const Tensor& x = j.parts[part];
        fill(o + item * plane, x.data() + (n * x.shape()[1] + b) * plane, block);
      },
      N * blocks * plane * kStreamedFloatWork);
  return out;
}

}  // namespace

Tensor concat_blocked(const std::vector<Tensor>& xs, const std::vector<int64_t>& channels) {
  const Joined j = join("concat_blocked", xs, channels);
  const auto bytes = static_cast<size_t>(j.shape[2] * j.shape[3] * j.shape[4]) * sizeof(float);
  return join_planes(j, [&](float* dst, const float* src, int64_t) { std::memcpy(dst, src, bytes); });
}

Tensor concat_affine_blocked(const std::vector<Tensor>& xs, const std::vector<int64_t>& channels,
                             const std::vector<float>& scale, const std::vector<float>& shift, bool relu) {
  const Joined j = join("concat_affine_blocked", xs, channels);
  if (static_cast<int64_t>(scale.size()) != j.channels || static_cast<int64_t>(shift.size()) != j.channels) {
    throw ShapeError("concat_affine_blocked: expected " + std::to_string(j.channels) + " scales and shifts, got " +
                     std::to_string(scale.size()) + " and " + std::to_string(shift.size()));
  }
  const int64_t B = j.shape[4], P = j.shape[2] * j.shape[3];
  std::vector<float> a(static_cast<size_t>(j.shape[1] * B), 0.0f), b(a.size(), 0.0f);  // padding lanes: 0
  std::copy(scale.begin(), scale.end(), a.begin());
  std::copy(shift.begin(), shift.end(), b.begin());
  const float lo = relu ? 0.0f : -std::numeric_limits<float>::infinity();
  const Lanes8 low = {lo, lo, lo, lo, lo, lo, lo, lo};
  auto affine = [&](auto lanes) {
    constexpr int V = decltype(lanes)::value / 8;
    return join_planes(j, [&](float* dst, const float* src, int64_t block) {
      Lanes8 sa[V], sb[V];
      for (int v = 0; v < V; ++v)
        sa[v] = load8(a.data() + block * B + 8 * v), sb[v] = load8(b.data() + block * B + 8 * v);
      for (int64_t p = 0; p < P; ++p) {
        for (int v = 0; v < V; ++v) {
          const Lanes8 y = load8(src + p * B + 8 * v) * sa[v] + sb[v];
          store8(dst + p * B + 8 * v, y < low ? low : y);  // keeps a NaN, as relu does
        }
      }
    });
  };
  return B == 8 ? affine(std::integral_constant<int, 8>{}) : affine(std::integral_constant<int, 16>{});
}

Tensor channel_affine_blocked(const Tensor& x, int64_t channels, const std::vector<float>& scale,
                              const std::vector<float>& shift, bool relu) {
  return concat_affine_blocked({x}, {channels}, scale, shift, relu);
}

}  // namespace tinytorch::ops

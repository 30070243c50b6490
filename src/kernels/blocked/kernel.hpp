// The blocked layout's convolution kernels (blocked.hpp), written once for any vector type V of the
// simd headers (V::reg of V::width = B lanes: Avx2's 8, Avx512's 16, or blocked/avx2.cpp's pair of
// AVX2 registers that lets the tests run 16 lanes on any machine). Included only by the ISA files
// blocked/avx2.cpp and avx512.cpp; internal linkage throughout.
//
// A work item covers output rows [oh0, oh1) of one image and a range of output blocks.
//
// Dense: the input rows the item reads are its band, read in place when the window never leaves
// the image (no padding), else copied zero-padded into scratch as [block][row][column][IB], IB = B
// floats per pixel of a blocked input's block, or all C channels of a pixel of a plain input (the
// network's first layer), which the copy interleaves. Output pixel q of the item (row q / OW,
// column q % OW) reads tap t of block cb at base + cb * block_stride + pixel(q) + tap[t] + ci. A
// register tile is P pixels (consecutive q; across rows where the windows are evenly spaced
// across rows, a pointwise layer read in place) times the M output blocks of a weight panel; per
// input channel one weight vector per block and one broadcast input value per pixel.
// Depthwise: read in place (the columns whose windows reach the padding pixel by pixel), or, on
// small padded images, from a zero-padded copy of the band; P pixels of one output row per tile,
// a vector multiply-add per pixel and tap.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/blocked/blocked.hpp"
#include "kernels/simd/exp_poly.hpp"
#include "kernels/simd/scalar.hpp"
#include "kernels/simd/transpose8.hpp"
#include "kernels/window.hpp"

namespace tinytorch::kernels {
namespace {

template <class V>
constexpr int lanes_of() {
  return V::width;
}

// Where an item's taps read: the band (in place or copied) and its strides, in floats.
struct Band {
  const float* base;     // block 0, band row 0, column 0
  int64_t block_stride;  // from one input block to the next
  int64_t row;           // from one band row to the next
  int64_t ib;            // floats per pixel of a block
  // Band rows and columns from one output pixel to the next: the stride, or 1 in a band split by
  // phase (make_band), whose taps then carry the phase (phase: floats from one phase to the next).
  int64_t step_h, step_w, phase = 0;
  // A blocked input whose channels do not fill its last block: the blocks from full_blocks on hold
  // tail_ib channels, the other lanes zero, which the dense tiles skip (24 channels: a quarter of
  // the multiply-adds; MobileNetV2's 24 -> 144 1x1 layers with their depthwise layer, one thread,
  // 0.67-0.69 -> 0.59-0.64 ms and 0.50-0.54 -> 0.43-0.46).
  int64_t full_blocks = INT64_MAX, tail_ib = 0;
  // Whether a window row's taps lie side by side (dilation 1, the band not split by phase): taps
  // (kw, ci) of a full block are then KW * ib consecutive floats of the band, in the packed
  // weight's order, and the tiles run them as one tap of KW * ib channels (a tap of 3 channels
  // of an RGB image cost as much in loop and addresses as in multiply-adds: one thread, 3 -> 64
  // 7x7 and 11x11 stems 1.09-1.19x faster, 3x3 layers 1.01-1.05x; AVX2 1.03-1.26x).
  bool runs = false;
};

// The output stage as the tiles apply it while they store: activation(x + residual), every
// activation (the smooth ones at the vector's width, simd/exp_poly.hpp: as fast a pass over the
// output later cost 3x the convolution, a 16 -> 96 1x1 layer at 112x112 with its swish).
struct StoreStage {
  bool fused;
  Activation activation;
  float a, b;             // the epilogue's
  float lo, hi;           // the clamp of none, relu and clip
  const float* residual;  // at dst - out from a tile's dst: the residual is laid out as the output
  const float* out;
};

inline StoreStage store_stage(const OutputStage& s, const float* out) {
  constexpr float inf = __builtin_inff();
  const Epilogue& e = s.epilogue;
  switch (e.activation) {
    case Activation::None:
      return {true, e.activation, e.a, e.b, -inf, inf, s.residual, out};
    case Activation::Relu:
      return {true, e.activation, e.a, e.b, 0.0f, inf, s.residual, out};
    case Activation::Clip:
      return {true, e.activation, e.a, e.b, e.a, e.b, s.residual, out};
    case Activation::LeakyRelu:
    case Activation::HardSigmoid:
    case Activation::Sigmoid:
    case Activation::HardSwish:
    case Activation::Swish:
      return {true, e.activation, e.a, e.b, -inf, inf, s.residual, out};
  }
  return {false, e.activation, 0.0f, 0.0f, 0.0f, 0.0f, nullptr, out};  // (an activation added later)
}

// B lanes as one GCC vector (declared outside a template: GCC drops vector_size from a typedef
// that depends on a template parameter when it deduces a template's arguments).
typedef float Floats8 __attribute__((vector_size(32)));
typedef int32_t Ints8 __attribute__((vector_size(32)));
typedef float Floats16 __attribute__((vector_size(64)));
typedef int32_t Ints16 __attribute__((vector_size(64)));
template <int B>
struct LaneVectors {
  using F = Floats16;
  using I = Ints16;
};
template <>
struct LaneVectors<8> {
  using F = Floats8;
  using I = Ints8;
};

// The activations that are not a clamp, in place on `count` consecutive vectors of B lanes (each
// one GCC vector): apply_epilogue's definitions (smooth_activation_of) at the kernels' width. One
// call for a tile's row of stored pixels (a call per vector cost 10% of a 16 -> 96 1x1 layer with
// its swish); not inlined: inlined into every tile's store it multiplied the code (the sanitizer
// build spent over 13 minutes on blocked/avx2.cpp alone).
template <int B, Activation A>
void smooth_activation_each(float* lanes, int count, const StoreStage& st) {
  using F = typename LaneVectors<B>::F;
  using I = typename LaneVectors<B>::I;
  for (int i = 0; i < count; ++i) {
    F x;
    __builtin_memcpy(&x, lanes + i * B, sizeof x);
    x = smooth_activation_of<A, F, I>(x, st.a, st.b);
    __builtin_memcpy(lanes + i * B, &x, sizeof x);
  }
}
template <int B>
__attribute__((noinline)) void smooth_activation_run(float* lanes, int count, const StoreStage& st) {
  switch (st.activation) {
    case Activation::LeakyRelu:
      return smooth_activation_each<B, Activation::LeakyRelu>(lanes, count, st);
    case Activation::HardSigmoid:
      return smooth_activation_each<B, Activation::HardSigmoid>(lanes, count, st);
    case Activation::Sigmoid:
      return smooth_activation_each<B, Activation::Sigmoid>(lanes, count, st);
    case Activation::HardSwish:
      return smooth_activation_each<B, Activation::HardSwish>(lanes, count, st);
    case Activation::Swish:
      return smooth_activation_each<B, Activation::Swish>(lanes, count, st);
    default:
      return;
  }
}

// Whether the stage's activation is a clamp (applied inline) rather than a smooth one.
inline bool clamps(const StoreStage& st) {
  return st.activation == Activation::None || st.activation == Activation::Relu || st.activation == Activation::Clip;
}

// v plus the stage's residual, for the output at dst.
template <class V>
__attribute__((always_inline)) inline typename V::reg with_residual(typename V::reg v, const StoreStage& st,
                                                                    const float* dst) {
  return st.residual ? V::add(v, V::load(st.residual + (dst - st.out))) : v;
}

// v with the stage applied, for the output at dst. max(lo, v) and min(hi, v) keep a NaN v.
template <class V>
__attribute__((always_inline)) inline typename V::reg finish(typename V::reg v, const StoreStage& st,
                                                             const float* dst) {
  v = with_residual<V>(v, st, dst);
  if (clamps(st)) return V::min(V::set1(st.hi), V::max(V::set1(st.lo), v));
  alignas(64) float lanes[lanes_of<V>()];
  V::store(lanes, v);
  smooth_activation_run<lanes_of<V>()>(lanes, 1, st);
  return V::load(lanes);
}

// A strided dense layer on a blocked input: its band is copied split by phase (make_band). The
// scratch size (blocked_scratch_floats) follows the same rule.
inline bool splits_by_phase(const BlockedConv& g) {
  return g.in_blocked && !g.depthwise && (g.stride_h > 1 || g.stride_w > 1);
}

inline bool reads_in_place(const BlockedConv& g) {
  return g.in_blocked && g.pad_top == 0 && g.pad_left == 0 &&
         (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1 <= g.H &&
         (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1 <= g.W;
}

// The band of output rows [oh0, oh1) of image n, input blocks [cb0, cb1) (a plain input has one);
// copied into buf when it cannot be read in place, or when `split` (a blocked input, a strided
// dense layer: splits_by_phase) split by phase.
template <int B>
Band make_band(const float* in, const BlockedConv& g, int64_t n, int64_t cb0, int64_t cb1, int64_t oh0, int64_t oh1,
               float* buf, bool split = false) {
  const int64_t IP = blocked_in_plane(g, B);  // a blocked input's plane (a plain one's: H * W per channel)
  if (!split && reads_in_place(g)) {
    const int64_t CB = blocked_input_blocks(g, B);
    return Band{in + (n * CB + cb0) * IP + oh0 * g.stride_h * g.W * B, IP, g.W * B, B, g.stride_h, g.stride_w};
  }
  const int64_t R = blocked_band_rows(g, oh1 - oh0), Wp = blocked_band_cols(g), ih0 = oh0 * g.stride_h - g.pad_top;
  const int64_t c0 = lesser(Wp, greater(0, g.pad_left));         // first column inside the image
  const int64_t c1 = greater(c0, lesser(Wp, g.pad_left + g.W));  // one past the last
  if (split) {
    // Each block's band as stride_h x stride_w sub-images of Rq x Cq pixels, phase (ph, pw)
    // holding band pixel (rq * stride_h + ph, cq * stride_w + pw): an output pixel's tap reads
    // one phase at stride 1, so a tile's pixels are adjacent, as at stride 1 (read at their
    // stride in place, a 1024 -> 2048 1x1 layer at stride 2 ran at half the speed of the same
    // layer on the subsampled image). Only the phases some tap reads are stored, in their slots
    // (blocked_phase_slot): a 1x1 layer's band is its subsampled image.
    const int64_t sh = g.stride_h, sw = g.stride_w, Rq = blocked_split_rows(g, oh1 - oh0), Cq = blocked_split_cols(g),
                  phase = Rq * Cq * B, CB = blocked_input_blocks(g, B);
    const int64_t phases = blocked_split_phases(g), uw = blocked_phase_slot(g.KW, g.dilation_w, sw, sw);
    for (int64_t cb = cb0; cb < cb1; ++cb) {
      for (int64_t ph = 0; ph < sh; ++ph) {
        for (int64_t pw = 0; pw < sw; ++pw) {
          if (!blocked_phase_read(g.KH, g.dilation_h, sh, ph) || !blocked_phase_read(g.KW, g.dilation_w, sw, pw))
            continue;
          const int64_t slot =
              blocked_phase_slot(g.KH, g.dilation_h, sh, ph) * uw + blocked_phase_slot(g.KW, g.dilation_w, sw, pw);
          float* dst = buf + ((cb - cb0) * phases + slot) * phase;
          for (int64_t rq = 0; rq < Rq; ++rq, dst += Cq * B) {
            const int64_t ih = ih0 + rq * sh + ph;
            if (ih < 0 || ih >= g.H) {
              zero_floats(dst, Cq * B);
              continue;
            }
            const float* src = in + (n * CB + cb) * IP + ih * g.W * B;  // the image row
            for (int64_t cq = 0; cq < Cq; ++cq) {
              const int64_t c = cq * sw + pw;  // band column; image column c - pad_left
              if (c < c0 || c >= c1) {
                zero_floats(dst + cq * B, B);
              } else {
                __builtin_memcpy(dst + cq * B, src + (c - g.pad_left) * B, B * sizeof(float));
              }
            }
          }
        }
      }
    }
    return Band{buf, phases * phase, Cq * B, B, 1, 1, phase};
  }
  if (g.in_blocked) {
    const int64_t CB = blocked_input_blocks(g, B);
    for (int64_t cb = cb0; cb < cb1; ++cb) {
      for (int64_t r = 0; r < R; ++r) {
        float* dst = buf + ((cb - cb0) * R + r) * Wp * B;
        const int64_t ih = ih0 + r;
        if (ih < 0 || ih >= g.H) {
          zero_floats(dst, Wp * B);
          continue;
        }
        zero_floats(dst, c0 * B);
        __builtin_memcpy(dst + c0 * B, in + (n * CB + cb) * IP + (ih * g.W + (c0 - g.pad_left)) * B,
                         static_cast<size_t>((c1 - c0) * B) * sizeof(float));
        zero_floats(dst + c1 * B, (Wp - c1) * B);
      }
    }
    return Band{buf, R * Wp * B, Wp * B, B, g.stride_h, g.stride_w};
  }
  const int64_t C = g.C;  // a plain input: all channels of a pixel side by side
  // Up to 8 channels go 8 columns at a time through a register transpose, each pixel's 8 lanes
  // stored whole (the next pixel's store overwrites all but its C), while the last store's
  // overhang stays inside the columns this copy writes later; the rest column by column.
  const int64_t overhang = C <= 8 ? 7 / C : 0;  // pixels past the last: ceil((8 - C) / C)
  for (int64_t r = 0; r < R; ++r) {
    float* dst = buf + r * Wp * C;
    const int64_t ih = ih0 + r;
    if (ih < 0 || ih >= g.H) {
      zero_floats(dst, Wp * C);
      continue;
    }
    zero_floats(dst, c0 * C);
    zero_floats(dst + c1 * C, (Wp - c1) * C);
    const float* src = in + (n * C * g.H + ih) * g.W + (c0 - g.pad_left);  // channel 0's row
    const int64_t plane = g.H * g.W;
    int64_t col = c0;
    if (C <= 8) {
      for (; col + 8 + overhang <= c1; col += 8) {
        v8 v[8];
        for (int64_t c = 0; c < 8; ++c) v[c] = c < C ? load8(src + c * plane + (col - c0)) : v8{};
        transpose8(v);
        for (int64_t j = 0; j < 8; ++j) __builtin_memcpy(dst + (col + j) * C, &v[j], sizeof(v8));
      }
    }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = col; k < c1; ++k) dst[k * C + c] = src[c * plane + (k - c0)];
  }
  return Band{buf, R * Wp * C, Wp * C, C, g.stride_h, g.stride_w};
}

// Where each tap of a window starting at band offset 0 reads: (row, column) = (kh * dilation_h,
// kw * dilation_w), in a band split by phase that pixel's phase and place in it.
inline void fill_taps(int64_t* taps, const BlockedConv& g, const Band& b) {
  const int64_t sh = b.phase ? g.stride_h : 1, sw = b.phase ? g.stride_w : 1;
  const int64_t uw = blocked_phase_slot(g.KW, g.dilation_w, sw, sw);  // column phases stored
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t r = kh * g.dilation_h, c = kw * g.dilation_w;
      const int64_t slot =
          blocked_phase_slot(g.KH, g.dilation_h, sh, r % sh) * uw + blocked_phase_slot(g.KW, g.dilation_w, sw, c % sw);
      taps[kh * g.KW + kw] = slot * b.phase + r / sh * b.row + c / sw * b.ib;
    }
  }
}

// Output pixel q of the item: where its window starts in the band.
inline int64_t pixel_offset(const BlockedConv& g, const Band& b, int64_t q) {
  return q / g.OW * b.step_h * b.row + q % g.OW * b.step_w * b.ib;
}

// The taps a tile runs: rows [kh0, kh1) and columns [kw0, kw1) of the window (of KW columns). A
// tap that every pixel of the tile reads in the padding adds only zeros, and is left out.
struct TapBox {
  int64_t kh0, kh1, kw0, kw1, KW;
};

// Taps [lo, hi) of k (dilation d) that some window starting at first .. last (one per output, the
// starts rising) reads inside [0, size): from the last window's first tap inside to the first
// window's last, a range that holds every tap some window reads inside.
inline void taps_read(int64_t first, int64_t last, int64_t d, int64_t k, int64_t size, int64_t& lo, int64_t& hi) {
  int64_t unused = 0;
  taps_inside(last, d, k, size, lo, unused);
  taps_inside(first, d, k, size, unused, hi);
}

// The taps of output pixels [q, q + np) of an item whose first output row is oh0.
inline TapBox tap_box(const BlockedConv& g, int64_t oh0, int64_t q, int64_t np) {
  TapBox box{0, g.KH, 0, g.KW, g.KW};
  const int64_t r0 = oh0 + q / g.OW, r1 = oh0 + (q + np - 1) / g.OW;
  taps_read(r0 * g.stride_h - g.pad_top, r1 * g.stride_h - g.pad_top, g.dilation_h, g.KH, g.H, box.kh0, box.kh1);
  if (r0 == r1) {  // one row: its columns; pixels of two rows or more cover them all
    const int64_t c0 = q % g.OW, c1 = (q + np - 1) % g.OW;
    taps_read(c0 * g.stride_w - g.pad_left, c1 * g.stride_w - g.pad_left, g.dilation_w, g.KW, g.W, box.kw0, box.kw1);
  } else {
    taps_read(-g.pad_left, (g.OW - 1) * g.stride_w - g.pad_left, g.dilation_w, g.KW, g.W, box.kw0, box.kw1);
  }
  return box;
}

// Packed weight floats of a panel's input-block range that stay in L1 while every tile of the item
// meets them (16 KiB).
constexpr int64_t kChunkFloats = 4096;

// acc += x * w. With 8 lanes under GCC, one vfmadd231ps into acc's own register: from the
// intrinsic, GCC picked one of the three FMA forms per instruction and rotated the accumulators
// of a 2 x 6 pointwise tile through the other registers, moving and spilling some each channel
// (one thread: a 16 -> 96 1x1 layer at 112x112 0.53 -> 0.51 ms, 24 -> 144 at 56x56 1.08x). Only
// the pointwise tile: in dense_tile's loop over taps the same form ran 3x3 layers 1.5x slower.
template <class V>
__attribute__((always_inline)) inline void fmadd_into(typename V::reg& acc, typename V::reg x, typename V::reg w) {
#if defined(__GNUC__) && !defined(__clang__)
  if constexpr (V::width == 8) {  // an __m256 (Avx2, Avx512::Narrow)
    asm("vfmadd231ps %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
    return;
  }
#endif
  acc = V::fmadd(x, w, acc);
}

// A pointwise tile (one tap) of evenly spaced pixels on a blocked input: input blocks of B channels
// each run as B straight multiply-add steps, then the pointer moves a block. The dense tile's loop
// (per block and tap a pointer, a trip count and the taps' bounds, more than its general registers
// hold) ran 8-lane 1x1 layers at 72-79% of the FMA peak, 0.78-0.94x the plain layout's packed
// tiles; this loop 83-87%, 1.08-1.34x on ResNet-50's (docs/PERFORMANCE.md, "Blocked pointwise
// tiles, 8 lanes").
// tail: the channels of a last block that its lanes do not fill (0: every block full).
template <class V, int M, int P, int PS>
__attribute__((always_inline)) inline void pointwise_tile(const float* x, int64_t block_stride, int64_t blocks,
                                                          int64_t tail, const float* wt, int64_t pm,
                                                          typename V::reg (&acc)[M][P]) {
  constexpr int B = lanes_of<V>();
  const int64_t step = pm * B;  // from one input channel's weight vectors to the next's
  auto channel = [&](int64_t ci) __attribute__((always_inline)) {
    typename V::reg wv[M];
#pragma GCC unroll 4
    for (int j = 0; j < M; ++j) wv[j] = V::load(wt + j * B);
#pragma GCC unroll 24
    for (int p = 0; p < P; ++p) {
      const typename V::reg xv = V::broadcast(x + p * PS + ci);
#pragma GCC unroll 4
      for (int j = 0; j < M; ++j) fmadd_into<V>(acc[j][p], xv, wv[j]);
    }
  };
  for (int64_t cb = 0; cb < blocks; ++cb, x += block_stride) {
    // Unrolled fully (by 2, with a branch per two channels, it gained 1.04-1.36x, not 1.20-1.38x).
#pragma GCC unroll 16
    for (int ci = 0; ci < B; ++ci, wt += step) channel(ci);
  }
  for (int64_t ci = 0; ci < tail; ++ci, wt += step) channel(ci);
}

// A dense tile: pixels at offsets px[0..P) of the band (PS = 0), or at px[0] + p * PS floats (PS >
// 0: the addresses are one register plus constants), input blocks [cb0, cb1), output blocks
// [0, M) from w, in a panel of pm >= M blocks (packed [cb][tap][ci][pm][B]), into acc. IBC: the
// floats per pixel of a block when known at compile time (B, a blocked input), else 0 (b.ib). The
// loop is the packed GEMM's tile (gemm/tile.hpp) with the pixels' input values as the broadcast
// operand.
template <class V, int M, int P, int IBC, int PS>
__attribute__((always_inline)) inline void dense_tile(const Band& b, int64_t cb0, int64_t cb1, const int64_t* taps,
                                                      int64_t T, const TapBox& box, const int64_t* px, const float* w,
                                                      int64_t pm, typename V::reg (&acc)[M][P]) {
  constexpr int B = lanes_of<V>();
  const int64_t ib = IBC ? IBC : b.ib;
#pragma GCC unroll 4
  for (int j = 0; j < M; ++j) {
#pragma GCC unroll 24
    for (int p = 0; p < P; ++p) acc[j][p] = V::zero();
  }
  const int64_t step = pm * B;  // from one input channel's weight vectors to the next's
  // A pointwise tile with 8 lanes (16: not measured, the loop below).
  if constexpr (IBC == B && PS > 0 && B == 8) {
    if (T == 1) {
      const int64_t full = lesser(cb1, b.full_blocks) - cb0;
      const float* x = b.base + cb0 * b.block_stride + taps[0] + px[0];
      return pointwise_tile<V, M, P, PS>(x, b.block_stride, greater(int64_t{0}, full), cb1 - cb0 > full ? b.tail_ib : 0,
                                         w + cb0 * ib * step, pm, acc);
    }
  }
  for (int64_t cb = cb0; cb < cb1; ++cb) {
    const bool run = b.runs && cb < b.full_blocks;
    for (int64_t kh = box.kh0; kh < box.kh1; ++kh) {
      for (int64_t kw = box.kw0; kw < box.kw1; kw += run ? box.kw1 - box.kw0 : 1) {
        const int64_t t = kh * box.KW + kw;
        const float* wt = w + (cb * T + t) * ib * step;
        const float* src = b.base + cb * b.block_stride + taps[t];
        const int64_t channels = run ? (box.kw1 - box.kw0) * ib : cb < b.full_blocks ? ib : b.tail_ib;
        // Evenly spaced pixels (PS > 0) read at one pointer plus constants: a pointer per pixel took
        // P registers, and GCC kept the rest on the stack and in vector registers, a load each per
        // channel (a 32 -> 16 1x1 layer at 112x112, one thread: 37-48% of the FMA peak, now 53-58%).
        const float* s[P];
#pragma GCC unroll 24
        for (int p = 0; p < P; ++p) s[p] = PS ? src : src + px[p];
        const float* x = src + px[0];
        // Two channels a step: unrolled fully, GCC hoisted the next channels' loads and spilled
        // accumulators; by 2 a loop branch per two channels, 2-4% faster on both ISAs (4 was slower).
#pragma GCC unroll 2
        for (int64_t ci = 0; ci < channels; ++ci, wt += step, ++x) {
          typename V::reg wv[M];
#pragma GCC unroll 4
          for (int j = 0; j < M; ++j) wv[j] = V::load(wt + j * B);
#pragma GCC unroll 24
          for (int p = 0; p < P; ++p) {
            const typename V::reg xv = V::broadcast(PS ? x + p * PS : s[p] + ci);
#pragma GCC unroll 4
            for (int j = 0; j < M; ++j) acc[j][p] = V::fmadd(xv, wv[j], acc[j][p]);
          }
        }
      }
    }
  }
}

// The next chunk's weights, fetched into L2 a few lines before each tile of this chunk: a layer with
// few pixels per weight (a late layer at batch 1) would otherwise stall on them in its first tile,
// the tiles after it running from L1 while memory idles.
struct Fetch {
  const float *next, *end;
  int64_t per_tile;  // floats, whole lines
  void tile() {
    const float* stop = end - next < per_tile ? end : next + per_tile;
    for (; next < stop; next += 16) __builtin_prefetch(next, 0, 2);
  }
};

// A tile's sums for output pixels [q0, q0 + np) of the panel's M blocks, stored plus the bias
// (`first`: the first chunk of input blocks) or the earlier chunks' sums, with the stage st (the
// last chunk's) applied.
template <class V, int M, int P>
__attribute__((always_inline)) inline void store_tile(typename V::reg (&acc)[M][P], float* out, int64_t plane,
                                                      const float* bias, bool first, int64_t q0, int np,
                                                      const StoreStage* st) {
  constexpr int B = lanes_of<V>();
  const bool smooth = st && !clamps(*st);  // applied to each block's row of pixels once stored
#pragma GCC unroll 4
  for (int j = 0; j < M; ++j) {
    float* dst = out + j * plane + q0 * B;
    const typename V::reg v = V::load(bias + j * B);
#pragma GCC unroll 24
    for (int p = 0; p < P; ++p) {
      if (p >= np) continue;
      typename V::reg y = V::add(acc[j][p], first ? v : V::load(dst + p * B));
      if (st) y = smooth ? with_residual<V>(y, *st, dst + p * B) : finish<V>(y, *st, dst + p * B);
      V::store(dst + p * B, y);
    }
  }
  if (smooth) {
    for (int j = 0; j < M; ++j) smooth_activation_run<B>(out + j * plane + q0 * B, np, *st);
  }
}

// Output pixels [q0, q0 + np) of the panel: their tile, stored plus the bias (first chunk) or the
// earlier chunks' sums.
template <class V, int M, int P, int IBC, int PS>
__attribute__((always_inline)) inline void dense_store_tile(float* out, int64_t plane, const Band& b, int64_t cb0,
                                                            int64_t cb1, const int64_t* taps, int64_t T,
                                                            const TapBox& box, const int64_t* px, const float* w,
                                                            int64_t pm, const float* bias, int64_t q0, int np,
                                                            const StoreStage* st) {
  typename V::reg acc[M][P];
  dense_tile<V, M, P, IBC, PS>(b, cb0, cb1, taps, T, box, px, w, pm, acc);
  store_tile<V, M, P>(acc, out, plane, bias, cb0 == 0, q0, np, st);
}

// Tiles of P pixels from q while they fit before `end`, of a pointwise layer on a blocked input
// (8 lanes) whose pixels are evenly spaced, PS floats apart: x is pixel q's input in the chunk's
// first block, wt the chunk's weights; the rest as pointwise_tile. Returns the first pixel left.
// The same tiles as dense_run's, in a function of their own: inside dense_run, GCC reloaded the
// tile's loop invariants from the stack every tile and spilled accumulators in the channel loop
// (one thread, a 16 -> 96 1x1 layer at 112x112: 0.66 ms there, 0.53 here; 2 threads, MobileNetV2
// at batch 1 1.07x faster, MobileNetV3-Large and EfficientNet-B0 1.05x).
template <class V, int M, int P, int PS>
__attribute__((noinline)) int64_t pointwise_tiles(float* out, int64_t plane, const float* x, int64_t block_stride,
                                                  int64_t blocks, int64_t tail, const float* wt, int64_t pm,
                                                  const float* bias, bool first, int64_t q, int64_t end,
                                                  const StoreStage* st, Fetch& fetch) {
  for (; q + P <= end; q += P, x += P * PS) {
    fetch.tile();
    typename V::reg acc[M][P];
#pragma GCC unroll 4
    for (int j = 0; j < M; ++j) {
#pragma GCC unroll 24
      for (int p = 0; p < P; ++p) acc[j][p] = V::zero();
    }
    pointwise_tile<V, M, P, PS>(x, block_stride, blocks, tail, wt, pm, acc);
    store_tile<V, M, P>(acc, out, plane, bias, first, q, P, st);
  }
  return q;
}

// The taps each tile of a run reads (tap_box): every tap where the layer reads no padding; in a
// run inside one output row, the row's kernel rows and each tile's columns from the run's first
// column on, with no division (per tile, tap_box's divisions cost 1-4% of 3x3 layers on padded
// images).
struct RunBoxes {
  const BlockedConv& g;
  int64_t oh0, q0, col0;  // the run's first output row of the item, first pixel, its column
  bool unpadded, one_row;
  TapBox all, row;
  TapBox at(int64_t q, int64_t n) const {
    if (unpadded) return all;
    if (!one_row) return tap_box(g, oh0, q, n);
    TapBox box = row;
    const int64_t c0 = col0 + (q - q0), c1 = c0 + n - 1;
    taps_read(c0 * g.stride_w - g.pad_left, c1 * g.stride_w - g.pad_left, g.dilation_w, g.KW, g.W, box.kw0, box.kw1);
    return box;
  }
};

// Tiles of P evenly spaced pixels (PS floats apart) from q while they fit before `end`, pixel
// boxes.q0 at `first`; the rest as dense_run. Returns the first pixel left. A function of its own
// as pointwise_tiles, for the same reason: one thread, the 3 -> 32 3x3 stride-2 stem at 224x224
// 0.80x -> 0.85x the plain direct kernel's speed; 2 threads, MobileNetV2, MobileNetV3-Large,
// EfficientNet-B0, ShuffleNetV2 and SqueezeNet at batch 1 1.01-1.02x.
template <class V, int M, int P, int IBC, int PS>
__attribute__((noinline)) int64_t dense_tiles(float* out, int64_t plane, const Band& b, int64_t cb0, int64_t cb1,
                                              const int64_t* taps, int64_t T, const RunBoxes& boxes, int64_t first,
                                              const float* w, int64_t pm, const float* bias, const StoreStage* st,
                                              Fetch& fetch, int64_t q, int64_t end) {
  for (; q + P <= end; q += P) {
    fetch.tile();
    const int64_t px = first + (q - boxes.q0) * PS;
    dense_store_tile<V, M, P, IBC, PS>(out, plane, b, cb0, cb1, taps, T, boxes.at(q, P), &px, w, pm, bias, q, P, st);
  }
  return q;
}

// Output pixels [q0, q1) of one run (a row, a row's whole tiles, or all pixels when evenly spaced
// across rows) in tiles of P, then of 12 and of 6 (those below P), then one of exactly the rest.
// Where the run's windows are evenly spaced (a blocked input, stride 1 or 2: SW) a tile's
// addresses are one register plus constants; otherwise (SW 0) each pixel's offset is its own. (A
// short last tile of P that repeated its last pixel did a whole tile's work for the 49th pixel of a
// 7x7 image: a ninth of the layer.)
template <class V, int M, int P, int IBC, int SW>
void dense_run(float* out, int64_t plane, const Band& b, int64_t cb0, int64_t cb1, const int64_t* taps, int64_t T,
               const BlockedConv& g, int64_t oh0, int64_t q0, int64_t q1, const float* w, int64_t pm, const float* bias,
               const StoreStage* st, Fetch& fetch) {
  constexpr int PS = SW * IBC;
  int64_t q = q0;
  // A layer that reads no padding runs every tap on every tile (tap_box's divisions cost a quarter
  // of a 32 -> 16 1x1 layer's time); evenly spaced pixels sit at one offset plus p * PS.
  const bool unpadded = reads_in_place(g);
  const TapBox all{0, g.KH, 0, g.KW, g.KW};
  // A run inside one output row: its kernel rows found once (RunBoxes).
  const bool one_row = !unpadded && q1 > q0 && q0 / g.OW == (q1 - 1) / g.OW;
  const RunBoxes boxes{g,        oh0,     q0,  one_row ? q0 % g.OW : 0,
                       unpadded, one_row, all, one_row ? tap_box(g, oh0, q0, q1 - q0) : all};
  auto box_of = [&](int64_t q, int64_t n) { return boxes.at(q, n); };
  const int64_t first = PS ? pixel_offset(g, b, q0) : 0;
  // Tiles of TP pixels up to `end`.
  auto tiles = [&](auto tp, int64_t end) {
    constexpr int TP = decltype(tp)::value;
    if constexpr (PS > 0 && IBC == 8 && lanes_of<V>() == 8) {
      if (T == 1) {
        const int64_t full = lesser(cb1, b.full_blocks) - cb0;
        const float* x = b.base + cb0 * b.block_stride + taps[0] + first + (q - q0) * PS;
        q = pointwise_tiles<V, M, TP, PS>(out, plane, x, b.block_stride, greater(int64_t{0}, full),
                                          cb1 - cb0 > full ? b.tail_ib : 0, w + cb0 * IBC * pm * lanes_of<V>(), pm,
                                          bias, cb0 == 0, q, end, st, fetch);
        return;
      }
    }
    if constexpr (PS > 0) {
      q = dense_tiles<V, M, TP, IBC, PS>(out, plane, b, cb0, cb1, taps, T, boxes, first, w, pm, bias, st, fetch, q,
                                         end);
    } else {
      for (; q + TP <= end; q += TP) {  // each pixel at its own offset
        fetch.tile();
        int64_t px[TP];
#pragma GCC unroll 24
        for (int p = 0; p < TP; ++p) px[p] = pixel_offset(g, b, q + p);
        dense_store_tile<V, M, TP, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box_of(q, TP), px, w, pm, bias, q, TP,
                                            st);
      }
    }
  };
  // Pixels that P does not divide end in a short tile of few independent chains, waiting on each
  // multiply-add's latency (49 pixels at P = 6: a tile of one pixel, 2 chains, as long as 3-4
  // whole tiles). Where they can, the last tiles take one pixel fewer instead (49 = 4 x 6 + 5 x 5),
  // while a tile of P - 1 keeps 8 chains or more (an FMA's latency of 4 cycles on 2 ports).
  if constexpr (lanes_of<V>() == 8 && M * (P - 1) >= 8) {
    const int64_t n = q1 - q0, shorter = P - n % P;  // tiles of P - 1 that make up the rest
    if (shorter < P && shorter <= n / P + 1) {
      tiles(std::integral_constant<int, P>{}, q1 - shorter * (P - 1));
      tiles(std::integral_constant<int, P - 1>{}, q1);
      return;
    }
  }
  tiles(std::integral_constant<int, P>{}, q1);
  const int rest = static_cast<int>(q1 - q);
  if (rest == 0) return;
  const TapBox box = box_of(q, rest);
  if constexpr (P > 12) {
    dense_run<V, M, 12, IBC, SW>(out, plane, b, cb0, cb1, taps, T, g, oh0, q, q1, w, pm, bias, st, fetch);
  } else if constexpr (P > 6) {
    dense_run<V, M, 6, IBC, SW>(out, plane, b, cb0, cb1, taps, T, g, oh0, q, q1, w, pm, bias, st, fetch);
  } else if constexpr (PS > 0) {
    fetch.tile();
    const int64_t first = pixel_offset(g, b, q);
    switch (rest) {
      case 5:
        return dense_store_tile<V, M, 5, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box, &first, w, pm, bias, q, 5, st);
      case 4:
        return dense_store_tile<V, M, 4, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box, &first, w, pm, bias, q, 4, st);
      case 3:
        return dense_store_tile<V, M, 3, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box, &first, w, pm, bias, q, 3, st);
      case 2:
        return dense_store_tile<V, M, 2, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box, &first, w, pm, bias, q, 2, st);
      default:
        return dense_store_tile<V, M, 1, IBC, PS>(out, plane, b, cb0, cb1, taps, T, box, &first, w, pm, bias, q, 1, st);
    }
  } else {
    fetch.tile();
    int64_t px[6];  // P <= 6 here; the cases above P - 1 never run
    for (int p = 0; p < rest; ++p) px[p] = pixel_offset(g, b, q + p);
    switch (rest) {
      case 5:
        return dense_store_tile<V, M, 5, IBC, 0>(out, plane, b, cb0, cb1, taps, T, box, px, w, pm, bias, q, 5, st);
      case 4:
        return dense_store_tile<V, M, 4, IBC, 0>(out, plane, b, cb0, cb1, taps, T, box, px, w, pm, bias, q, 4, st);
      case 3:
        return dense_store_tile<V, M, 3, IBC, 0>(out, plane, b, cb0, cb1, taps, T, box, px, w, pm, bias, q, 3, st);
      case 2:
        return dense_store_tile<V, M, 2, IBC, 0>(out, plane, b, cb0, cb1, taps, T, box, px, w, pm, bias, q, 2, st);
      default:
        return dense_store_tile<V, M, 1, IBC, 0>(out, plane, b, cb0, cb1, taps, T, box, px, w, pm, bias, q, 1, st);
    }
  }
}

// A dense item's panel of M output blocks: every output pixel [0, Q) of the band, input blocks in
// chunks whose weights fit kChunkFloats (a tile's partial sums go through the output). Pixels run
// across rows where their windows are evenly spaced across rows too (stride 1, band rows as wide
// as the output: a pointwise layer read in place), else row by row.
template <class V, int M, int P, int IBC>
void dense_panel(float* out, int64_t plane, const Band& b, int64_t blocks, const int64_t* taps, int64_t T,
                 const BlockedConv& g, int64_t oh0, int64_t Q, const float* w, int64_t pm, const float* bias,
                 const StoreStage& stage) {
  constexpr int B = lanes_of<V>();
  const int64_t chunk = greater(1, kChunkFloats / (T * b.ib * M * B));
  const bool flat = b.step_h == 1 && b.step_w == 1 && b.row == g.OW * b.ib;
  // Rows that P does not divide would end in a short tile each (7 = 6 + 1: a tile of 4 chains of
  // FMAs, latency-bound); there the tiles run across rows, each pixel at its own offset.
  const bool across = !flat && g.OW % P != 0 && Q > g.OW;
  const int64_t run = flat || across ? Q : g.OW;
  const int64_t span = T * b.ib * pm * B, tiles = Q / run * ((run + P - 1) / P);  // span: floats per input block
  for (int64_t cb0 = 0; cb0 < blocks; cb0 += chunk) {
    const int64_t cb1 = lesser(blocks, cb0 + chunk);
    const StoreStage* st = cb1 == blocks && stage.fused ? &stage : nullptr;  // the last chunk's stores
    // Within the panel, and only where the tiles read all of it (a part of a panel reads pieces of
    // its rows).
    const float* last = w + (pm == M ? lesser(blocks, cb1 + chunk) : cb1) * span;
    Fetch fetch{w + cb1 * span, last, (chunk * span / tiles + 16) / 16 * 16};
    // Pixels [q0, q1), evenly spaced (within one row, or a flat run) or not.
    auto pixels = [&](int64_t q0, int64_t q1, bool even) {
      if (even && IBC && b.step_w == 1) {
        dense_run<V, M, P, IBC, 1>(out, plane, b, cb0, cb1, taps, T, g, oh0, q0, q1, w, pm, bias, st, fetch);
      } else if (even && IBC && b.step_w == 2) {
        dense_run<V, M, P, IBC, 2>(out, plane, b, cb0, cb1, taps, T, g, oh0, q0, q1, w, pm, bias, st, fetch);
      } else {
        dense_run<V, M, P, IBC, 0>(out, plane, b, cb0, cb1, taps, T, g, oh0, q0, q1, w, pm, bias, st, fetch);
      }
    };
    for (int64_t r0 = 0; r0 < Q; r0 += run) {
      if (!across) {
        pixels(r0, r0 + run, true);
        continue;
      }
      // Across rows: a row's whole tiles at one offset plus constants, then the tile across the
      // row's end pixel by pixel. (Every tile pixel by pixel, one thread, 1.22-1.25x the time of a
      // 3 -> 32 3x3 stride-2 stem at 224x224 and of ResNet's 7x7 one, 1.25x of 16 -> 16 3x3 at
      // 112x112, 1.05-1.08x of 64 and 128 channels at 56x56 and 28x28; AVX2 1.0-1.21x.)
      for (int64_t q = r0; q < r0 + run;) {
        const int64_t inside = ((q / g.OW + 1) * g.OW - q) / P * P;
        if (inside > 0) pixels(q, q + inside, true);
        q += inside;
        const int64_t next = lesser(r0 + run, q + P);
        pixels(q, next, false);
        q = next;
      }
    }
  }
}

template <class V, int M, int P>
void dense_panel_any(float* out, int64_t plane, const Band& b, int64_t blocks, const int64_t* taps, int64_t T,
                     const BlockedConv& g, int64_t oh0, int64_t Q, const float* w, int64_t pm, const float* bias,
                     const StoreStage& st) {
  if (b.ib == lanes_of<V>())
    return dense_panel<V, M, P, lanes_of<V>()>(out, plane, b, blocks, taps, T, g, oh0, Q, w, pm, bias, st);
  if (b.ib == 3)
    return dense_panel<V, M, P, 3>(out, plane, b, blocks, taps, T, g, oh0, Q, w, pm, bias, st);  // an RGB image
  dense_panel<V, M, P, 0>(out, plane, b, blocks, taps, T, g, oh0, Q, w, pm, bias, st);
}

// Depthwise: P pixels of one output row from column ow0, block at src (the band's block, row of
// the output row), weights w [tap][B]. SW: the stride along the row when known (1, 2), else 0.
template <class V, int P, int SW, bool FULL>
__attribute__((always_inline)) inline void depthwise_tile_at(const float* src, int64_t sw, const int64_t* taps,
                                                             int64_t T, const float* w, const float* bias, float* dst,
                                                             int np, const StoreStage& st) {
  constexpr int B = lanes_of<V>();
  const int64_t step = (SW ? SW : sw) * B;
  typename V::reg acc[P];
  const typename V::reg bv = V::load(bias);
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) acc[p] = bv;
  for (int64_t t = 0; t < T; ++t) {
    const typename V::reg wv = V::load(w + t * B);
    const float* s = src + taps[t];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] = V::fmadd(V::load(s + (FULL ? p : lesser(p, np - 1)) * step), wv, acc[p]);
  }
  const bool smooth = st.fused && !clamps(st);  // applied to the row of pixels once stored
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    if (p >= np) continue;
    if (smooth) {
      V::store(dst + p * B, with_residual<V>(acc[p], st, dst + p * B));
    } else {
      V::store(dst + p * B, st.fused ? finish<V>(acc[p], st, dst + p * B) : acc[p]);
    }
  }
  if (smooth) smooth_activation_run<B>(dst, np, st);
}

// A full tile (np == P) with SW known reads at constant offsets from one register.
template <class V, int P, int SW>
__attribute__((always_inline)) inline void depthwise_tile(const float* src, int64_t sw, const int64_t* taps, int64_t T,
                                                          const float* w, const float* bias, float* dst, int np,
                                                          const StoreStage& st) {
  if (SW && np == P) return depthwise_tile_at<V, P, SW, true>(src, sw, taps, T, w, bias, dst, np, st);
  depthwise_tile_at<V, P, SW, false>(src, sw, taps, T, w, bias, dst, np, st);
}

// A row's last `rest` < P pixels as one tile of exactly that size (a 7-pixel row is one tile of 7,
// not 4 + 2 + 1 passes over the taps).
template <class V, int SW, int R>
void depthwise_tail(int rest, const float* src, int64_t sw, const int64_t* taps, int64_t T, const float* w,
                    const float* bias, float* dst, const StoreStage& st) {
  if constexpr (R > 0) {
    if (rest == R) return depthwise_tile<V, R, SW>(src, sw, taps, T, w, bias, dst, R, st);
    depthwise_tail<V, SW, R - 1>(rest, src, sw, taps, T, w, bias, dst, st);
  }
}

// An edge column's (one whose windows reach the padding left or right) output pixels of R
// consecutive rows whose windows are inside the image vertically, one accumulator each: kernel
// columns [kw0, kw1) are the ones inside the image, src the first row's input at kernel row 0 and
// column kw0. The same multiply-adds in the same order as the pixel by pixel form (kernel row by
// row, column by column, from the bias); the R pixels' chains are independent, where one pixel's
// chain of 6 (3x3) waited on each multiply-add's latency.
template <class V, int R>
__attribute__((always_inline)) inline void depthwise_column_tile(const float* src, int64_t row_step, int64_t dst_step,
                                                                 const BlockedConv& g, int64_t kw0, int64_t kw1,
                                                                 const float* w, const float* bias, float* dst,
                                                                 const StoreStage& st) {
  constexpr int B = lanes_of<V>();
  typename V::reg acc[R];
  const typename V::reg bv = V::load(bias);
#pragma GCC unroll 16
  for (int p = 0; p < R; ++p) acc[p] = bv;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      const typename V::reg wv = V::load(w + (kh * g.KW + kw) * B);
      const float* s = src + (kh * g.dilation_h * g.W + (kw - kw0) * g.dilation_w) * B;
#pragma GCC unroll 16
      for (int p = 0; p < R; ++p) acc[p] = V::fmadd(V::load(s + p * row_step), wv, acc[p]);
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < R; ++p) {
    float* d = dst + p * dst_step;
    V::store(d, st.fused ? finish<V>(acc[p], st, d) : acc[p]);
  }
}

template <class V, int R>
void depthwise_column(int rows, const float* src, int64_t row_step, int64_t dst_step, const BlockedConv& g, int64_t kw0,
                      int64_t kw1, const float* w, const float* bias, float* dst, const StoreStage& st) {
  if constexpr (R > 0) {
    if (rows == R) return depthwise_column_tile<V, R>(src, row_step, dst_step, g, kw0, kw1, w, bias, dst, st);
    depthwise_column<V, R - 1>(rows, src, row_step, dst_step, g, kw0, kw1, w, bias, dst, st);
  }
}

// Depthwise output rows [oh0, oh1) of one block, read in place from the block's input plane: per
// row only the kernel rows inside the image; the columns whose window lies inside the image in
// tiles of P, the others (the padding's) pixel by pixel on the rows whose windows reach the
// padding above or below, in column tiles of up to P rows on the others. taps: KH * KW scratch
// offsets, from the row's first input row where its window is inside the image vertically
// (computed once for all such rows), else from the plane.
template <class V, int SW>
void depthwise_rows(float* out, const float* plane, int64_t* taps, const BlockedConv& g, int64_t oh0, int64_t oh1,
                    const float* w, const float* bias, const StoreStage& st) {
  constexpr int B = lanes_of<V>(), P = B == 8 ? 8 : 12;
  const int64_t sw = g.stride_w, dh = g.dilation_h, dw = g.dilation_w;
  // Columns [lo, hi) read no padding.
  const int64_t lo = lesser(g.OW, (g.pad_left + sw - 1) / sw);
  const int64_t last = g.W - 1 + g.pad_left - (g.KW - 1) * dw;  // ow * sw may be at most this
  const int64_t hi = greater(lo, last < 0 ? 0 : lesser(g.OW, last / sw + 1));
  auto edge_columns = [&](auto&& fn) {  // the columns outside [lo, hi)
    for (int64_t ow = 0; ow < lo; ++ow) fn(ow);
    for (int64_t ow = hi; ow < g.OW; ++ow) fn(ow);
  };
  bool relative = false;       // taps hold the offsets from a row's first input row
  int64_t ra = oh1, rb = oh1;  // the rows [ra, rb) whose windows are inside the image vertically
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    float* dst = out + (oh - oh0) * g.OW * B;
    const int64_t ih0 = oh * g.stride_h - g.pad_top;
    const int64_t kh0 = ih0 >= 0 ? 0 : (-ih0 + dh - 1) / dh;
    const int64_t kh1 = lesser(g.KH, ih0 >= g.H ? 0 : (g.H - 1 - ih0) / dh + 1);
    const int64_t T = greater(0, kh1 - kh0) * g.KW;
    const bool inside = kh0 == 0 && kh1 == g.KH;
    const int64_t from = inside ? 0 : ih0;  // the input row the offsets count from
    if (!inside || !relative) {
      for (int64_t t = 0; t < T; ++t) {  // from column 0 of the tile's first pixel's window
        const int64_t kh = kh0 + t / g.KW, kw = t % g.KW;
        taps[t] = ((from + kh * dh) * g.W + kw * dw - g.pad_left) * B;
      }
      relative = inside;
    }
    if (inside) ra = lesser(ra, oh), rb = oh + 1;
    const float* row = plane + (ih0 - from) * g.W * B;
    const float* wt = w + kh0 * g.KW * B;
    int64_t ow = lo;
    for (; ow + P <= hi; ow += P)
      depthwise_tile<V, P, SW>(row + ow * sw * B, sw, taps, T, wt, bias, dst + ow * B, P, st);
    if (SW == 0 && ow < hi) {  // stride 3 and more: one tile, offsets per pixel
      depthwise_tile<V, P, SW>(row + ow * sw * B, sw, taps, T, wt, bias, dst + ow * B, static_cast<int>(hi - ow), st);
    } else if (ow < hi) {  // the rest in one tile of exactly that many, at constant offsets
      depthwise_tail<V, SW, P - 1>(static_cast<int>(hi - ow), row + ow * sw * B, sw, taps, T, wt, bias, dst + ow * B,
                                   st);
    }
    if (inside) continue;  // its padding's columns: in column tiles below
    edge_columns([&](int64_t ow) {
      typename V::reg acc = V::load(bias);
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t iw = ow * sw - g.pad_left + kw * dw;
          if (iw < 0 || iw >= g.W) continue;
          acc = V::fmadd(V::load(plane + ((ih0 + kh * dh) * g.W + iw) * B), V::load(w + (kh * g.KW + kw) * B), acc);
        }
      }
      V::store(dst + ow * B, st.fused ? finish<V>(acc, st, dst + ow * B) : acc);
    });
  }
  if (ra == rb) return;
  edge_columns([&](int64_t ow) {  // those of rows [ra, rb), P rows at a time
    int64_t kw0 = 0, kw1 = g.KW;  // the kernel columns inside the image
    while (kw0 < g.KW && ow * sw - g.pad_left + kw0 * dw < 0) ++kw0;
    while (kw1 > kw0 && ow * sw - g.pad_left + (kw1 - 1) * dw >= g.W) --kw1;
    for (int64_t r = ra; r < rb; r += P) {
      const float* src = plane + ((r * g.stride_h - g.pad_top) * g.W + ow * sw - g.pad_left + kw0 * dw) * B;
      depthwise_column<V, P>(static_cast<int>(lesser(P, rb - r)), src, g.stride_h * g.W * B, g.OW * B, g, kw0, kw1, w,
                             bias, out + ((r - oh0) * g.OW + ow) * B, st);
    }
  });
}

// One work item (blocked.hpp, blocked_conv). A dense item's block range is whole panels.
template <class V>
void blocked_item(float* out, const float* in, const float* weight, const float* bias, const BlockedConv& g, int64_t n,
                  int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1, float* scratch, const OutputStage& stage) {
  constexpr int B = lanes_of<V>();
  const int64_t OB = blocked_blocks(g.OC, B), plane = blocked_out_plane(g, B), T = g.KH * g.KW, rows = oh1 - oh0;
  auto* taps = reinterpret_cast<int64_t*>(scratch);
  const StoreStage st = store_stage(stage, out);
  float* out0 = out + (n * OB) * plane + oh0 * g.OW * B;  // block 0, the item's first row
  if (g.depthwise) {
    // Small padded images: each block's band copied zero-padded, then read as an unpadded image
    // of the band's rows (every column a tile's).
    const bool copy = depthwise_copies(g, B);
    BlockedConv padded = g;
    if (copy) {
      padded.H = blocked_band_rows(g, rows), padded.W = blocked_band_cols(g), padded.pad_top = padded.pad_left = 0;
    }
    for (int64_t ob = ob0; ob < ob1; ++ob) {
      const float* src = in + (n * OB + ob) * blocked_in_plane(g, B);  // the block's input plane
      float* dst = out0 + ob * plane;
      const float *w = weight + ob * T * B, *bs = bias + ob * B;
      const BlockedConv& at = copy ? padded : g;
      int64_t r0 = oh0, r1 = oh1;
      if (copy) {
        BlockedConv one = g;
        one.C = B, one.depthwise = false, one.N = 1;  // the block's plane as a one-block image
        src = make_band<B>(src, one, 0, 0, 1, oh0, oh1, scratch + blocked_taps_floats(g)).base;
        r0 = 0, r1 = rows;
      }
      if (g.stride_w == 1) {
        depthwise_rows<V, 1>(dst, src, taps, at, r0, r1, w, bs, st);
      } else if (g.stride_w == 2) {
        depthwise_rows<V, 2>(dst, src, taps, at, r0, r1, w, bs, st);
      } else {
        depthwise_rows<V, 0>(dst, src, taps, at, r0, r1, w, bs, st);
      }
    }
  } else {
    const int64_t CB = blocked_input_blocks(g, B);
    Band b = make_band<B>(in, g, n, 0, CB, oh0, oh1, scratch + blocked_taps_floats(g), splits_by_phase(g));
    if (g.in_blocked && g.C % B != 0) b.full_blocks = g.C / B, b.tail_ib = g.C % B;
    b.runs = b.phase == 0 && g.dilation_w == 1;
    fill_taps(taps, g, b);
    const int64_t Q = rows * g.OW, K = CB * T * b.ib;  // K: packed weight floats per output lane
    // The item's blocks [ob0, ob1) panel by panel, whole or in part (blocked.hpp).
    for (int64_t i = 0, panels = blocked_panels(OB, B); i < panels; ++i) {
      const int64_t start = blocked_panel_start(i, B), end = blocked_panel_end(i, OB, B);
      const int64_t ob = greater(start, ob0), pm = end - start;
      if (ob >= lesser(end, ob1)) continue;
      const int m = static_cast<int>(lesser(end, ob1) - ob);
      const float* w = weight + start * K * B + (ob - start) * B;  // the panels before hold start blocks
      float* dst = out0 + ob * plane;
      const float* bs = bias + ob * B;
      // Tiles of 12 accumulators (AVX2) or 24 (AVX-512): M blocks x P pixels (blocked.hpp).
      switch (m) {
        case 1:  // AVX-512: 24 pixels (tiles of 12 left 12 registers idle: 1.04-1.16x on 16-channel layers)
          dense_panel_any<V, 1, B == 8 ? 12 : 24>(dst, plane, b, CB, taps, T, g, oh0, Q, w, pm, bs, st);
          break;
        case 2:
          dense_panel_any<V, 2, B == 8 ? 6 : 12>(dst, plane, b, CB, taps, T, g, oh0, Q, w, pm, bs, st);
          break;
        case 3:
          dense_panel_any<V, 3, B == 8 ? 4 : 8>(dst, plane, b, CB, taps, T, g, oh0, Q, w, pm, bs, st);
          break;
        default:
          dense_panel_any<V, B == 8 ? 1 : 4, 6>(dst, plane, b, CB, taps, T, g, oh0, Q, w, pm, bs, st);
          break;
      }
    }
  }
  if (stage.empty() || st.fused) return;
  for (int64_t ob = ob0; ob < ob1; ++ob) stage.apply(out, (n * OB + ob) * plane + oh0 * g.OW * B, rows * g.OW * B);
}

}  // namespace
}  // namespace tinytorch::kernels

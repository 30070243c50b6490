// Direct convolution with vectors across output channels ("ocblock"): for images of few pixels.
//
// The pixel-vectorized kernels (direct, packed, Winograd) fill a register tile with 16 or 32
// consecutive output pixels of one channel; an image with fewer pixels leaves most of the tile
// empty, and the batched algorithm instead gathers every tap of every pixel into an im2col matrix:
// a strided copy per tap and pixel, which only the output channels share, so with few of them the
// copy is the whole cost (8x124x4x3 -> 9, 6x6 stride 2: 0.13x of ONNX Runtime, 5% of the peak).
// Here a vector holds 8 consecutive output channels of one pixel (zero weights past the group's
// last), and each tap of each output pixel is one input value broadcast against the tap's weight
// vectors: no gather, and any pixel count fills the vectors. A register block is 6 pixels x 16
// output channels (12 accumulators); the weights, packed [group][16-channel pair][tap][16] once
// and kept between calls (prepared_weights.hpp), stream from L2 once per 6 pixels.
// The input window every output reads (padding included) is copied zero-padded per work item, so
// no tap checks bounds: tap (c, kh, kw) of output (oh, ow) is window[c][oh*sh + kh*dh][ow*sw +
// kw*dw], one offset per tap plus one per pixel.
// Plain GCC vectors of 8 floats: AVX2 instructions on both ISAs (the library's baseline).
#include <algorithm>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {
namespace {

typedef float v8 __attribute__((vector_size(32)));  // 8 floats: one ymm

constexpr int64_t kPair = 16;  // output channels per register block (two vectors)
constexpr int kPixels = 6;     // pixels per register block

inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

struct Plan {
  int64_t CG, OCG, K, pairs;  // channels, outputs and taps per group; 16-channel pairs per group
  int64_t Hp, Wp;             // the window all outputs read (padding included)
  int64_t chunk, chunks;      // output pixels per work item, and items per image and group
  int64_t window_floats;      // the window's floats, rounded up to 16 (the tap offsets follow, aligned)
  int64_t packed_floats;
};

Plan plan(const Conv2dGeometry& g) {
  Plan p{};
  p.CG = g.channels_per_group();
  p.OCG = g.out_channels_per_group();
  p.K = p.CG * g.KH * g.KW;
  p.pairs = (p.OCG + kPair - 1) / kPair;
  p.Hp = (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
  p.Wp = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  // At least 8 items in all where the pixels allow (each copies its group's window: small images).
  const int64_t P = g.OH * g.OW, want = std::max<int64_t>(1, (8 + g.N * g.groups - 1) / (g.N * g.groups));
  p.chunk = std::max<int64_t>(kPixels, ((P + want - 1) / want + kPixels - 1) / kPixels * kPixels);
  p.chunks = (P + p.chunk - 1) / p.chunk;
  p.window_floats = (p.CG * p.Hp * p.Wp + 15) / 16 * 16;
  p.packed_floats = g.groups * p.pairs * p.K * kPair;
  return p;
}

// NP (1..6) pixels whose window offsets are base[0..NP), taps [0, K) of one 16-channel pair:
// out[j][l] = sum over taps of window[base[j] + offset[k]] * w[k][l].
template <int NP>
void block(const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
           float (*out)[kPair]) {
  v8 acc[NP][2] = {};
  for (int64_t k = 0; k < K; ++k) {
    const v8 w0 = load8(w + k * kPair), w1 = load8(w + k * kPair + 8);
    const float* src = window + offset[k];
#pragma GCC unroll 6
    for (int j = 0; j < NP; ++j) {
      const float x = src[base[j]];
      acc[j][0] += x * w0;
      acc[j][1] += x * w1;
    }
  }
  for (int j = 0; j < NP; ++j) {
    __builtin_memcpy(out[j], &acc[j][0], sizeof(v8));
    __builtin_memcpy(out[j] + 8, &acc[j][1], sizeof(v8));
  }
}

template <int NP = kPixels>
void block_of(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
              float (*out)[kPair]) {
  if constexpr (NP > 0) {
    if (np == NP) return block<NP>(window, base, offset, K, w, out);
    block_of<NP - 1>(np, window, base, offset, K, w, out);
  }
}

}  // namespace

int64_t conv2d_ocblock_workspace_bytes(const Conv2dGeometry& g) {
  const Plan p = plan(g);
  return (p.window_floats + p.K * 2) * 4;  // the window, then the tap offsets (int64)
}

void conv2d_ocblock(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage) {
  const Plan p = plan(g);
  const int64_t P = g.OH * g.OW, K = p.K;
  // Weights [group][pair][tap][16]: output channel pair * 16 + l of the group at lane l, zeros past
  // the group's last.
  const auto packed = prepared_weight(
      PreparedTag{kOcBlockPacked, kPair, g.OC, K, g.groups}, weight, g.OC * K, p.packed_floats, [&](float* a) {
        std::fill_n(a, p.packed_floats, 0.0f);
        for (int64_t grp = 0; grp < g.groups; ++grp)
          for (int64_t oc = 0; oc < p.OCG; ++oc)
            for (int64_t k = 0; k < K; ++k)
              a[((grp * p.pairs + oc / kPair) * K + k) * kPair + oc % kPair] = weight[(grp * p.OCG + oc) * K + k];
      });
  const float* w_all = packed->prepared.data();
  const size_t scratch = static_cast<size_t>(conv2d_ocblock_workspace_bytes(g));
  parallel_for(
      g.N * g.groups * p.chunks,
      [&](int64_t item, int) {
        const int64_t n = item / (g.groups * p.chunks), grp = item / p.chunks % g.groups;
        const int64_t q0 = item % p.chunks * p.chunk, q1 = std::min(P, q0 + p.chunk);
        float* window = workspace(scratch);
        auto* offset = reinterpret_cast<int64_t*>(window + p.window_floats);
        // The group's channels, zero-padded: window row r is input row r - pad_top, column q input
        // column q - pad_left.
        std::fill_n(window, p.CG * p.Hp * p.Wp, 0.0f);
        const int64_t r0 = std::min(p.Hp, g.pad_top), r1 = std::clamp<int64_t>(g.H + g.pad_top, r0, p.Hp);
        const int64_t c0 = std::min(p.Wp, g.pad_left), c1 = std::clamp<int64_t>(g.W + g.pad_left, c0, p.Wp);
        for (int64_t c = 0; c < p.CG; ++c) {
          const float* plane = in + ((n * g.C) + grp * p.CG + c) * g.H * g.W;
          for (int64_t r = r0; r < r1 && c1 > c0; ++r) {
            std::copy(plane + (r - g.pad_top) * g.W + c0 - g.pad_left, plane + (r - g.pad_top) * g.W + c1 - g.pad_left,
                      window + (c * p.Hp + r) * p.Wp + c0);
          }
        }
        int64_t k = 0;
        for (int64_t c = 0; c < p.CG; ++c)
          for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw)
              offset[k++] = (c * p.Hp + kh * g.dilation_h) * p.Wp + kw * g.dilation_w;
        for (int64_t pair = 0; pair < p.pairs; ++pair) {
          const float* w = w_all + (grp * p.pairs + pair) * K * kPair;
          const int64_t lanes = std::min(kPair, p.OCG - pair * kPair), oc0 = grp * p.OCG + pair * kPair;
          for (int64_t q = q0; q < q1; q += kPixels) {
            const int np = static_cast<int>(std::min<int64_t>(kPixels, q1 - q));
            int64_t base[kPixels];
            for (int j = 0; j < np; ++j) {
              const int64_t oh = (q + j) / g.OW, ow = (q + j) % g.OW;
              base[j] = oh * g.stride_h * p.Wp + ow * g.stride_w;
            }
            float result[kPixels][kPair];
            block_of(np, window, base, offset, K, w, result);
            for (int j = 0; j < np; ++j) {
              float* dst = out + (n * g.OC + oc0) * P + q + j;
              for (int64_t l = 0; l < lanes; ++l) dst[l * P] = result[j][l] + (bias ? bias[oc0 + l] : 0.0f);
            }
          }
        }
        apply_stage(out, stage, g, grp * p.OCG, (grp + 1) * p.OCG, n * P + q0, n * P + q1);
      },
      g.flops());
}

}  // namespace tinytorch::ops

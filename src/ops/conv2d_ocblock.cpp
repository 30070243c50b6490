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
// output channels (a "pair" of vectors, 12 accumulators). Groups of 8 output channels (RegNet's,
// ResNeXt's third stage), or of 16k + 1 .. 16k + 8, would leave half a pair's lanes empty: there a
// block is 12 pixels x 8 channels, one vector each (lanes_of), and a "pair" is that one vector.
// The weights are packed [group][pair][tap][L lanes] (L = 16 or 8) once and kept between calls
// (prepared_weights.hpp).
// Work items are blocks of pairs times chunks of up to 240 pixels: an item reads its pairs'
// weights once, a K block of 256 taps (16 KiB per pair) at a time that stays in L1 while every
// pixel of the chunk meets it, so a layer of many channels and few pixels (512 -> 512, 3x3 at 7x7:
// 9 MiB of weights for 49 pixels) streams its weights from memory once, not once per 6 pixels.
// The input window every output reads (padding included) is copied zero-padded into the thread's
// own buffer when an item's image and group differ from those of the thread's previous item, so no
// tap checks bounds: tap (c, kh, kw) of output (oh, ow) is window[c][oh*sh + kh*dh][ow*sw + kw*dw],
// one offset per tap plus one per pixel. (Copied for all images and groups before the items, the
// windows of a batch went out to memory and came back: 8 x 1024 -> 1024 stride 2 at 14x14 in
// groups of 32 copied 8 MiB.)
// Stride 1 on images wide beside their window ("linear" pixels, Plan::linear): outputs are
// computed over the window's full width, Wp columns per output row of which the last
// (KW - 1) * dilation are discarded, so that consecutive pixels are consecutive window floats and
// a register block's 12 broadcasts share one address register (displacements 0, 4, .., 44 bytes).
// Otherwise each pixel has its own window offset: 12 pointers that do not fit in the general
// registers beside the loop's own (the compiler reloads them from the stack: 8 x 256 -> 256 3x3
// at 28x28 in groups of 32 ran at 45% of the FMA peak; 1.1x faster linear).
// A block of one vector per pixel (the ISA's width: 8 channels with AVX2, 16 with AVX-512) runs
// kernels/ocblock's block, 12 pixels x one register, and with AVX-512 two such pairs at once where
// the item has them (12 pixels x 32 channels, each input value broadcast once for both); the
// others (16 channels with AVX2, 8 with AVX-512) plain GCC vectors of 8 floats here, AVX2
// instructions on both ISAs (the library's baseline). With AVX-512 a block of 16 channels was two
// 256-bit vectors of 6 pixels, half the work per multiply-add of one 512-bit vector
// (docs/PERFORMANCE.md, "ocblock at AVX-512's width").
#include <algorithm>
#include <utility>
#include <vector>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/ocblock/ocblock.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {
namespace {

typedef float v8 __attribute__((vector_size(32)));  // 8 floats: one ymm

constexpr int64_t kPair = 16;  // output channels per register block: two vectors, or one (kSingle)
constexpr int64_t kSingle = 8;
constexpr int kPixels = 6;  // pixels per register block of kPair channels; 12 with kSingle

// Output channels per register block for groups of OCG: one vector where that computes fewer
// lanes in all (OCG % 16 in 1 .. 8), else two (which load the input once for both).
int64_t lanes_of(int64_t OCG) {
  return (OCG + kSingle - 1) / kSingle * kSingle < (OCG + kPair - 1) / kPair * kPair ? kSingle : kPair;
}

inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

struct Plan {
  int64_t CG, OCG, K, pairs;  // channels, outputs and taps per group; lane blocks ("pairs") per group
  bool linear;                // pixels computed over the window's width (Pe of them)
  int64_t Pe;                 // pixels computed per image: OH * OW, or (OH - 1) * Wp + OW when linear
  int64_t L, pixels;          // lanes (output channels) and pixels per register block
  int64_t Hp, Wp;             // the window all outputs read (padding included)
  int64_t chunk, chunks;      // output pixels per work item (the last chunk may have fewer), chunks per image
  int64_t blocks;             // blocks of pairs per group (block_pairs)
  int64_t KC;                 // taps per K block
  int64_t window_floats;      // one window's floats, rounded up to 16
  int64_t packed_floats;
};

constexpr int64_t kChunk = 240;     // output pixels per work item at most (a multiple of 12)
constexpr int64_t kTapBlock = 256;  // taps per K block: a pair's slice of them is 16 KiB, half of L1

Plan plan(const Conv2dGeometry& g) {
  Plan p{};
  p.CG = g.channels_per_group();
  p.OCG = g.out_channels_per_group();
  p.K = p.CG * g.KH * g.KW;
  p.L = lanes_of(p.OCG);
  // 12 accumulators either way: 12 pixels of one vector (the ISA's block, or 8 lanes), 6 of two
  p.pixels = p.L <= std::max(kSingle, kernels::ocblock_kernels().lanes) ? 2 * kPixels : kPixels;
  p.pairs = (p.OCG + p.L - 1) / p.L;
  p.Hp = (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
  p.Wp = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  // Linear where the discarded columns are fewer than an eighth of those computed, about what the
  // general form's pointer reloads cost. Forced ocblock, both forms (Zen 4, 2 threads): 8 x 128 ->
  // 128 3x3 in groups of 16 at 18x18 (2 of 20 discarded) 1.1x faster linear, 28x28 in groups of 32
  // or 13 1.1-1.2x; at 14x14 (2 of 16) 5-12% slower (ResNet-18's 256 -> 256 at batch 1 among them),
  // at 7x7 (2 of 9) 15-20% slower.
  p.linear = g.stride_h == 1 && g.stride_w == 1 && (p.Wp - g.OW) * 8 < p.Wp;
  p.Pe = p.linear ? (g.OH - 1) * p.Wp + g.OW : g.OH * g.OW;
  const int64_t P = p.Pe;
  // Chunks of equal size, in whole register blocks (784 pixels: 4 x 196, not 3 x 240 and 64).
  const int64_t chunks = (P + kChunk - 1) / kChunk;
  p.chunk = std::min(P, ((P + chunks - 1) / chunks + p.pixels - 1) / p.pixels * p.pixels);
  p.chunks = (P + p.chunk - 1) / p.chunk;
  // At least 8 items in all where the pairs allow: the output channels are split before the
  // pixels, since every item reads its pairs' weights once for all its pixels.
  const int64_t per_group = std::max<int64_t>(1, (8 + g.N * g.groups * p.chunks - 1) / (g.N * g.groups * p.chunks));
  p.blocks = std::min(per_group, p.pairs);
  const int64_t k_blocks = (p.K + kTapBlock - 1) / kTapBlock;
  p.KC = (p.K + k_blocks - 1) / k_blocks;
  // Linear pixels past a row's last output read up to (KW - 1) * dilation floats past the window
  // (for discarded outputs): zeros there too.
  const int64_t slack = p.linear ? (g.KW - 1) * g.dilation_w : 0;
  p.window_floats = (p.CG * p.Hp * p.Wp + slack + 15) / 16 * 16;
  p.packed_floats = g.groups * p.pairs * p.K * p.L;
  return p;
}

// Block b's pairs [pair0, pair1): as equal as whole pairs make them (43 pairs in 8 blocks: 5 and
// 6, not 6 x 7 and 1, which left one of 2 threads idle a tenth of the time).
std::pair<int64_t, int64_t> block_pairs(const Plan& p, int64_t b) {
  return {b * p.pairs / p.blocks, (b + 1) * p.pairs / p.blocks};
}

// NP pixels whose window offsets are base[0..NP) (Linear: 0 .. NP - 1, base unused), taps [0, K)
// of one block of L = 8 V output channels: acc[j * L + l] (+)= sum over taps of
// window[base[j] + offset[k]] * w[k * L + l]; `first` starts from 0.
template <int NP, int V, bool Linear>
void block(const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w, float* acc_io,
           bool first) {
  constexpr int L = 8 * V;
  v8 acc[NP][V] = {};
  if (!first) {
    for (int j = 0; j < NP; ++j)
      for (int v = 0; v < V; ++v) acc[j][v] = load8(acc_io + j * L + v * 8);
  }
  const float* px[NP];  // each pixel's tap 0: a tap is then one broadcast at px[j] + offset, no address sums
  if constexpr (!Linear) {
    for (int j = 0; j < NP; ++j) px[j] = window + base[j];
  }
  for (int64_t k = 0; k < K; ++k) {
    v8 wv[V];
    for (int v = 0; v < V; ++v) wv[v] = load8(w + k * L + v * 8);
    const int64_t o = offset[k];
#pragma GCC unroll 12
    for (int j = 0; j < NP; ++j) {
      const float x = Linear ? window[o + j] : px[j][o];  // linear: one address register, displacement j
      for (int v = 0; v < V; ++v) acc[j][v] += x * wv[v];
    }
  }
  for (int j = 0; j < NP; ++j)
    for (int v = 0; v < V; ++v) __builtin_memcpy(acc_io + j * L + v * 8, &acc[j][v], sizeof(v8));
}

// block<np, V> for np in 1 .. NP (the linear form when base is null: window is pixel 0's).
template <int V, int NP = 12 / V>
void block_of(int np, const float* window, const int64_t* base, const int64_t* offset, int64_t K, const float* w,
              float* acc, bool first) {
  if constexpr (NP > 0) {
    if (np == NP) {
      if (base == nullptr) return block<NP, V, true>(window, base, offset, K, w, acc, first);
      return block<NP, V, false>(window, base, offset, K, w, acc, first);
    }
    block_of<V, NP - 1>(np, window, base, offset, K, w, acc, first);
  }
}

// Image n's group grp, zero-padded: window row r is input row r - pad_top, column q input column
// q - pad_left.
void copy_window(float* window, const float* in, const Conv2dGeometry& g, const Plan& p, int64_t n, int64_t grp) {
  std::fill_n(window, p.window_floats, 0.0f);
  const int64_t r0 = std::min(p.Hp, g.pad_top), r1 = std::clamp<int64_t>(g.H + g.pad_top, r0, p.Hp);
  const int64_t c0 = std::min(p.Wp, g.pad_left), c1 = std::clamp<int64_t>(g.W + g.pad_left, c0, p.Wp);
  for (int64_t c = 0; c < p.CG; ++c) {
    const float* plane = in + ((n * g.C) + grp * p.CG + c) * g.H * g.W;
    for (int64_t r = r0; r < r1 && c1 > c0; ++r) {
      std::copy(plane + (r - g.pad_top) * g.W + c0 - g.pad_left, plane + (r - g.pad_top) * g.W + c1 - g.pad_left,
                window + (c * p.Hp + r) * p.Wp + c0);
    }
  }
}

}  // namespace

int64_t conv2d_ocblock_workspace_bytes(const Conv2dGeometry& g) {
  const Plan p = plan(g);
  // shared: the tap offsets (int64); per thread: the item's accumulators and a window
  return p.K * 2 * 4 + (2 * p.chunk * kPair + p.window_floats) * 4;
}

void conv2d_ocblock(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage) {
  const Plan p = plan(g);
  const int64_t P = g.OH * g.OW, Pe = p.Pe, K = p.K;
  // Weights [group][pair][tap][L]: output channel pair * L + l of the group at lane l, zeros past
  // the group's last.
  const int64_t L = p.L;
  const auto packed = prepared_weight(
      PreparedTag{kOcBlockPacked, L, g.OC, K, g.groups}, weight, g.OC * K, p.packed_floats, [&](float* a) {
        std::fill_n(a, p.packed_floats, 0.0f);
        for (int64_t grp = 0; grp < g.groups; ++grp)
          for (int64_t oc = 0; oc < p.OCG; ++oc)
            for (int64_t k = 0; k < K; ++k)
              a[((grp * p.pairs + oc / L) * K + k) * L + oc % L] = weight[(grp * p.OCG + oc) * K + k];
      });
  const float* w_all = packed->prepared.data();
  const kernels::OcblockKernels& wide = kernels::ocblock_kernels();  // blocks of one vector per pixel
  // The [K] tap offsets (int64).
  auto* offset = reinterpret_cast<int64_t*>(workspace(static_cast<size_t>(K * 2) * 4, WorkspaceSlot::Shared));
  int64_t k = 0;
  for (int64_t c = 0; c < p.CG; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) offset[k++] = (c * p.Hp + kh * g.dilation_h) * p.Wp + kw * g.dilation_w;
  const int64_t items = g.N * g.groups * p.blocks * p.chunks;
  // Per thread: the buffer and the window (image * groups + group) it holds.
  std::vector<std::pair<const float*, int64_t>> held(static_cast<size_t>(threads_for(items)), {nullptr, -1});
  parallel_for(
      items,
      [&](int64_t item, int thread) {
        const int64_t image = item / (p.blocks * p.chunks), n = image / g.groups, grp = image % g.groups;
        const auto [pair0, pair1] = block_pairs(p, item / p.chunks % p.blocks);
        const int64_t q0 = item % p.chunks * p.chunk, q1 = std::min(Pe, q0 + p.chunk);
        // [chunk pixels][L channels] of one pair and of the next (two at once: block2), written back
        // transposed into [OC, P]; then the window
        float* acc = workspace(static_cast<size_t>(2 * p.chunk * kPair + p.window_floats) * 4);
        float* window = acc + 2 * p.chunk * kPair;
        auto& [buffer, holds] = held[static_cast<size_t>(thread)];
        if (buffer != acc || holds != image) {
          copy_window(window, in, g, p, n, grp);
          buffer = acc, holds = image;
        }
        int64_t base[kChunk];
        if (!p.linear) {
          for (int64_t q = q0; q < q1; ++q) base[q - q0] = q / g.OW * g.stride_h * p.Wp + q % g.OW * g.stride_w;
        }
        // Pair pr's sums at src into the output, plus the bias.
        auto store_pair = [&](int64_t pr, const float* src_pair) {
          const int64_t lanes = std::min(L, p.OCG - pr * L), oc0 = grp * p.OCG + pr * L;
          // Runs of pixels that are consecutive in the output: the whole chunk, or (linear) each
          // row's part of it short of the columns past OW, which were computed for nothing.
          for (int64_t q = q0; q < q1;) {
            const int64_t row_end = p.linear ? std::min(q1, (q / p.Wp + 1) * p.Wp) : q1;
            const int64_t to = p.linear ? q / p.Wp * g.OW + q % p.Wp : q;  // q's output pixel
            const int64_t count =
                p.linear ? std::max<int64_t>(0, std::min(row_end, q / p.Wp * p.Wp + g.OW) - q) : q1 - q;
            for (int64_t l = 0; l < lanes; ++l) {
              float* dst = out + (n * g.OC + oc0 + l) * P + to;
              const float* src = src_pair + (q - q0) * L + l;
              const float b = bias ? bias[oc0 + l] : 0.0f;
              for (int64_t i = 0; i < count; ++i) dst[i] = src[i * L] + b;
            }
            q = row_end;
          }
        };
        for (int64_t pair = pair0; pair < pair1;) {
          // Two pairs at once where the ISA's block of two vectors takes them: each input value is
          // broadcast once for 32 channels (docs/PERFORMANCE.md, "ocblock at AVX-512's width").
          const bool two = L == wide.lanes && wide.block2 != nullptr && pair + 1 < pair1;
          const float* w = w_all + (grp * p.pairs + pair) * K * L;
          float* acc1 = acc + p.chunk * L;  // the second pair's sums
          // A K block of the pairs' weights (16 KiB a pair) stays in L1 while every pixel of the chunk meets it.
          for (int64_t k0 = 0; k0 < K; k0 += p.KC) {
            const int64_t kc = std::min(p.KC, K - k0);
            // Blocks of 5 or 6 pixels (49 = 4 x 6 + 5 x 5, not 8 x 6 + 1: a lone pixel's block
            // does 2 multiply-adds per 3 loads); of 11 or 12 with one vector.
            const int64_t n_blocks = (q1 - q0 + p.pixels - 1) / p.pixels;
            for (int64_t b = 0, q = q0; b < n_blocks; ++b) {
              const int np = static_cast<int>((q1 - q0) / n_blocks + (b < (q1 - q0) % n_blocks ? 1 : 0));
              const int64_t* at = p.linear ? nullptr : base + (q - q0);
              const float* from = p.linear ? window + q : window;
              if (two) {
                wide.block2(np, from, at, offset + k0, kc, w + k0 * L, w + (K + k0) * L, acc + (q - q0) * L,
                            acc1 + (q - q0) * L, k0 == 0);
              } else if (L == wide.lanes) {
                wide.block(np, from, at, offset + k0, kc, w + k0 * L, acc + (q - q0) * L, k0 == 0);
              } else if (L == kPair) {
                block_of<2>(np, from, at, offset + k0, kc, w + k0 * L, acc + (q - q0) * L, k0 == 0);
              } else {
                block_of<1>(np, from, at, offset + k0, kc, w + k0 * L, acc + (q - q0) * L, k0 == 0);
              }
              q += np;
            }
          }
          store_pair(pair, acc);
          if (two) store_pair(pair + 1, acc1);
          pair += two ? 2 : 1;
        }
        // The item's output pixels: q's plain index, a column past OW counting as the next row's start.
        auto plain = [&](int64_t q) { return p.linear ? q / p.Wp * g.OW + std::min(q % p.Wp, g.OW) : q; };
        apply_stage(out, stage, g, grp * p.OCG + pair0 * L, grp * p.OCG + std::min(p.OCG, pair1 * L), n * P + plain(q0),
                    n * P + plain(q1));
      },
      conv2d_work(g));
}

}  // namespace tinytorch::ops

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
// Narrower still, a vector holds M pixels of L = lanes / M channels (kernels/ocblock's interleaved
// blocks, M = 2 or 4, Plan::M): groups of 8 channels fill AVX-512's 16 lanes with 2 pixels, groups
// of 4 (or 12, 20) with 4 pixels of 4 channels, each tap one load of M consecutive window floats
// repeated across the vector.
// The weights are packed [group][pair][tap][L M lanes] (L = 16, 8 or 4; each weight M times) once
// and kept between calls (prepared_weights.hpp).
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
// Linear pixels (Plan::linear): outputs are computed over the window's full width, Wq columns per
// output row of which the last few are discarded, so that consecutive pixels are consecutive window
// floats and a register block's 12 broadcasts share one address register (displacements 0, 4, ..,
// 44 bytes). At stride s the window is held as s x s phase planes (row r in plane r % s at r / s,
// column q likewise), in which a row's pixels are again consecutive: Wq = ceil(Wp / s). Otherwise
// each pixel has its own window offset: 12 pointers that do not fit in the general registers beside
// the loop's own (the compiler reloads them from the stack: 8 x 256 -> 256 3x3 at 28x28 in groups
// of 32 ran at 45% of the FMA peak; 1.1x faster linear). Interleaved blocks are always linear.
// A block of one vector per pixel (the ISA's width: 8 channels with AVX2, 16 with AVX-512) runs
// kernels/ocblock's block, 12 pixels x one register, and with AVX-512 two such pairs at once where
// the item has them (12 pixels x 32 channels, each input value broadcast once for both); AVX2's
// blocks of 16 channels are plain GCC vectors here, 6 pixels x two of 8 floats. With AVX-512 a
// block of 16 channels was two 256-bit vectors of 6 pixels, half the work per multiply-add of one
// 512-bit vector (docs/PERFORMANCE.md, "ocblock at AVX-512's width"); a block of 8 channels is
// one 256-bit GCC vector of 12 pixels where it is not interleaved ("ocblock's interleaved pixels").
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
typedef float v4 __attribute__((vector_size(16)));

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
  int64_t Pe;                 // pixels computed per image: OH * OW, or (OH - 1) * Wq + OW when linear
  int64_t L, pixels;          // lanes (output channels) and pixels per register block
  int64_t M;                  // pixels per vector (interleaved blocks), else 1
  int64_t Hp, Wp;             // the window all outputs read (padding included)
  int64_t sh, sw, Hq, Wq;     // as held: sh x sw phase planes of Hq x Wq (linear; else 1 x 1 of Hp x Wp)
  int64_t chunk, chunks;      // output pixels per work item (the last chunk may have fewer), chunks per image
  int64_t blocks;             // blocks of pairs per group (block_pairs)
  int64_t KC;                 // taps per K block
  int64_t window_floats;      // one window's floats, rounded up to 16
  int64_t packed_floats;
};

constexpr int64_t kChunk = 240;     // output pixels per work item at most (a multiple of 12)
constexpr int64_t kTapBlock = 256;  // taps per K block: a pair's slice of them is 16 KiB, half of L1

Plan plan(const Conv2dGeometry& g, int threads) {
  Plan p{};
  p.CG = g.channels_per_group();
  p.OCG = g.out_channels_per_group();
  p.K = p.CG * g.KH * g.KW;
  p.Hp = (g.OH - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
  p.Wp = (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
  // The linear form at stride s holds the window as s x s phase planes (copy_window), so that
  // consecutive pixels of a row read consecutive floats: Wq columns per output row.
  const bool unit_stride = g.stride_h == 1 && g.stride_w == 1;
  const int64_t Wq = (p.Wp + g.stride_w - 1) / g.stride_w;
  // Linear where the discarded columns are fewer than an eighth of those computed (with AVX-512's
  // blocks a sixth), about what the general form's pointer reloads cost. Forced ocblock, both
  // forms (Zen 4, 2 threads): 8 x 128 -> 128 3x3 in groups of 16 at 18x18 (2 of 20 discarded) 1.1x
  // faster linear, 28x28 in groups of 32 or 13 1.1-1.2x; at 14x14 (2 of 16) 5-12% slower
  // (ResNet-18's 256 -> 256 at batch 1 among them), at 7x7 (2 of 9) 15-20% slower. With
  // AVX-512's 16-lane blocks (Xeon model 207, one thread, the forms alternating per call) the
  // reloads cost more: at 14x14 linear ran 1.13-1.15x faster (3x3 in groups of 16 and 32
  // channels, dense 256 -> 256), at 12x12 and 10x10 1.00-1.02x, at 8x8 (2 of 10) 0.88x, at 7x7
  // 0.83-0.89x; its AVX2 blocks at 14x14 0.87-0.91x. Strided, only where each window float copied
  // meets 128 or more multiply-add lanes (output channels x taps / stride^2): the phase planes are
  // a gather, not a row's memmove, and at fewer the copy cost what the addresses saved (Xeon model
  // 207, one thread, alternating per call: 3x3 stride 2 in groups of 16 and 32 outputs, 36 and 72
  // lanes a float, 0.83-0.99x; dense 64 -> 64 and 32 -> 64 at 56x56 and 112x112, 144,
  // 1.01-1.14x; 16 -> 487 7x7 stride 3 1.42x).
  const bool strided_pays = p.OCG * g.KH * g.KW >= 128 * g.stride_h * g.stride_w;
  const kernels::OcblockKernels& wide = kernels::ocblock_kernels();
  p.linear = (unit_stride || strided_pays) && (Wq - g.OW) * (wide.lanes == 16 ? 6 : 8) < Wq;
  p.L = lanes_of(p.OCG);
  p.M = 1;
  // Blocks of L = lanes / M output channels, M pixels per vector (kernels/ocblock's interleaved
  // blocks), where they compute at least an eighth fewer lanes x pixels than lanes_of's blocks, the
  // fewer of M = 2 and 4: groups of 8 channels (ResNeXt's, RegNet's) fill a 16-lane vector with 2
  // pixels, not half of it with one, groups of 12 a vector of 4 lanes x 4 pixels three times, not
  // 16 lanes once. Lanes count in whole vectors (with AVX-512 lanes_of's 8-lane blocks take half a
  // vector's time, with AVX2 a 16-lane pair two vectors). The M pixels must be M consecutive window
  // floats, so interleaved blocks run over linear pixels whatever the discarded columns, which
  // count among the pixels (1 x 286 -> 9 6x6 dilated at 6x5 discards 10 of 15 columns: not
  // interleaved), as do a vector's pixels past the image (one pixel in a vector of 4); and at stride
  // 1 or 2 only, where the phase planes' copy is a shuffle of 16 columns (at 3, a gather per
  // float). Xeon model 207, one thread: 3x3 in groups of 2 to 40 at stride 1, 14x14 and 28x28, 1.2-2.5x;
  // at 7x7 and 14x14, not linear before, 1.4-2.6x; stride 2 in groups of 8 1.27-1.36x; AVX2 in
  // groups of 2 to 4 and 20 1.1-2.2x.
  const int64_t W = wide.lanes, linear_pixels = (g.OH - 1) * Wq + g.OW;
  const int64_t computed = (p.OCG + p.L - 1) / p.L * std::max(p.L, W) * (p.linear ? linear_pixels : g.OH * g.OW);
  int64_t fewest = computed;
  for (const int64_t M : {2, 4}) {
    const int64_t L = W / M, lanes = (p.OCG + L - 1) / L * L * ((linear_pixels + M - 1) / M * M);
    if (L >= 2 && wide.interleaved[M == 4] != nullptr && g.stride_h <= 2 && g.stride_w <= 2 && lanes < fewest &&
        lanes * 8 <= computed * 7) {
      fewest = lanes;
      p.L = L;
      p.M = M;
    }
  }
  if (p.M > 1) p.linear = true;
  p.sh = p.linear ? g.stride_h : 1;
  p.sw = p.linear ? g.stride_w : 1;
  p.Hq = (p.Hp + p.sh - 1) / p.sh;
  p.Wq = (p.Wp + p.sw - 1) / p.sw;
  // 12 accumulators either way: 12 pixels of one vector (the ISA's block, or 8 lanes), 6 of two,
  // 12 vectors of M pixels
  p.pixels = p.M > 1 ? 12 * p.M : p.L <= std::max(kSingle, wide.lanes) ? 2 * kPixels : kPixels;
  p.pairs = (p.OCG + p.L - 1) / p.L;
  p.Pe = p.linear ? (g.OH - 1) * p.Wq + g.OW : g.OH * g.OW;
  const int64_t P = p.Pe;
  // Chunks of equal size, in whole register blocks (784 pixels: 4 x 196, not 3 x 240 and 64).
  const int64_t chunks = (P + kChunk - 1) / kChunk;
  p.chunk = std::min(P, ((P + chunks - 1) / chunks + p.pixels - 1) / p.pixels * p.pixels);
  p.chunks = (P + p.chunk - 1) / p.chunk;
  // At least an item per thread where the pairs allow, their number a multiple of the threads if
  // the pairs allow that too: the output channels are split before the pixels, since every item
  // reads its pairs' weights once for all its pixels. Until 2026-12-07 at least 8 items whatever
  // the threads. Forced ocblock, the two alternated per call (Xeon of model 207, AVX-512) on 40
  // random layers of 7x7 to 28x28 (windows 2-7, strides 1-2, groups 1-32, batch 1-8): 1.036x
  // faster in geomean on 2 threads, 1.035x on 1, 6 faster by 3% or more (4 x 128 -> 32 7x7 stride 2
  // at 28x28 1.49x, 2 x 128 -> 32 3x3 at 14x14 1.29x), none slower by 3%.
  const int64_t T = std::max(1, threads), base = g.N * g.groups * p.chunks;
  int64_t per_group = std::max<int64_t>(1, (T + base - 1) / base);
  while (per_group < p.pairs && base * per_group % T != 0) ++per_group;
  p.blocks = std::min(per_group, p.pairs);
  const int64_t k_blocks = (p.K + kTapBlock - 1) / kTapBlock;
  p.KC = (p.K + k_blocks - 1) / k_blocks;
  // Linear pixels past a row's last output read up to (KW - 1) * dilation floats past the window
  // (for discarded outputs), and a vector's M - 1 pixels past the last: zeros there too.
  const int64_t slack = p.linear ? (g.KW - 1) * g.dilation_w + p.M : 0;
  p.window_floats = (p.CG * p.sh * p.sw * p.Hq * p.Wq + slack + 15) / 16 * 16;
  p.packed_floats = g.groups * p.pairs * p.K * p.L * p.M;
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
// q - pad_left; held as phase planes, row r in plane r % sh at r / sh, column q in plane q % sw at
// q / sw (one plane when not linear, or at stride 1).
void copy_window(float* window, const float* in, const Conv2dGeometry& g, const Plan& p, int64_t n, int64_t grp) {
  std::fill_n(window, p.window_floats, 0.0f);
  const int64_t r0 = std::min(p.Hp, g.pad_top), r1 = std::clamp<int64_t>(g.H + g.pad_top, r0, p.Hp);
  const int64_t c0 = std::min(p.Wp, g.pad_left), c1 = std::clamp<int64_t>(g.W + g.pad_left, c0, p.Wp);
  const int64_t plane = p.Hq * p.Wq;
  for (int64_t c = 0; c < p.CG; ++c) {
    const float* in_plane = in + ((n * g.C) + grp * p.CG + c) * g.H * g.W;
    for (int64_t pr = 0; pr < p.sh && c1 > c0; ++pr) {
      float* dst = window + (c * p.sh + pr) * p.sw * plane;  // plane (pr, 0)
      for (int64_t rr = 0; rr < p.Hq; ++rr, dst += p.Wq) {
        const int64_t r = rr * p.sh + pr;
        if (r < r0 || r >= r1) continue;
        const float* src = in_plane + (r - g.pad_top) * g.W - g.pad_left;  // window column q at src[q]
        if (p.sw == 1) {
          std::copy(src + c0, src + c1, dst + c0);
          continue;
        }
        // Column q to plane q % sw at q / sw; at stride 2, 16 and then 8 columns at a time split
        // into even and odd.
        int64_t q = c0;
        if (p.sw == 2) {
          if (c0 % 2 != 0) dst[plane + c0 / 2] = src[c0];
          for (q = c0 + c0 % 2; q + 16 <= c1; q += 16) {
            const v8 a = load8(src + q), b = load8(src + q + 8);
            const v8 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
            const v8 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
            __builtin_memcpy(dst + q / 2, &even, sizeof even);
            __builtin_memcpy(dst + plane + q / 2, &odd, sizeof odd);
          }
          if (q + 8 <= c1) {
            const v8 a = load8(src + q);
            const v4 even = __builtin_shufflevector(a, a, 0, 2, 4, 6), odd = __builtin_shufflevector(a, a, 1, 3, 5, 7);
            __builtin_memcpy(dst + q / 2, &even, sizeof even);
            __builtin_memcpy(dst + plane + q / 2, &odd, sizeof odd);
            q += 8;
          }
        }
        for (int64_t pc = q % p.sw, j = q / p.sw; q < c1; ++q) {  // (no division per column)
          dst[pc * plane + j] = src[q];
          if (++pc == p.sw) pc = 0, ++j;
        }
      }
    }
  }
}

}  // namespace

int64_t conv2d_ocblock_workspace_bytes(const Conv2dGeometry& g) {
  const Plan p = plan(g, 1);  // (the items' count changes no buffer)
  // shared: the tap offsets (int64); per thread: the item's accumulators and a window
  return p.K * 2 * 4 + (2 * p.chunk * kPair + p.window_floats) * 4;
}

void conv2d_ocblock(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                    const OutputStage& stage) {
  const Plan p = plan(g, conv2d_work(g) < serial_work() ? 1 : get_num_threads());  // as parallel_for decides
  const int64_t P = g.OH * g.OW, Pe = p.Pe, K = p.K;
  // Weights [group][pair][tap][L M]: output channel pair * L + l of the group at lanes l M .. l M +
  // M - 1, zeros past the group's last.
  const int64_t L = p.L, M = p.M, LM = L * M;
  const auto packed = prepared_weight(
      PreparedTag{kOcBlockPacked, L * 8 + M, g.OC, K, g.groups}, weight, g.OC * K, p.packed_floats, [&](float* a) {
        std::fill_n(a, p.packed_floats, 0.0f);
        for (int64_t grp = 0; grp < g.groups; ++grp)
          for (int64_t oc = 0; oc < p.OCG; ++oc)
            for (int64_t k = 0; k < K; ++k)
              for (int64_t e = 0; e < M; ++e)
                a[((grp * p.pairs + oc / L) * K + k) * LM + oc % L * M + e] = weight[(grp * p.OCG + oc) * K + k];
      });
  const float* w_all = packed->prepared.data();
  const kernels::OcblockKernels& wide = kernels::ocblock_kernels();  // blocks of one vector per pixel
  // The [K] tap offsets (int64).
  auto* offset = reinterpret_cast<int64_t*>(workspace(static_cast<size_t>(K * 2) * 4, WorkspaceSlot::Shared));
  // Channel 0's taps, then each channel's at a plane group further (no division per tap: 637 -> 9
  // 3x3 at one output pixel spent half its time on them).
  const int64_t plane = p.Hq * p.Wq, taps = g.KH * g.KW;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t r = kh * g.dilation_h, q = kw * g.dilation_w;
      offset[kh * g.KW + kw] = (r % p.sh * p.sw + q % p.sw) * plane + r / p.sh * p.Wq + q / p.sw;
    }
  for (int64_t k = taps; k < K; ++k) offset[k] = offset[k - taps] + p.sh * p.sw * plane;
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
            const int64_t row_end = p.linear ? std::min(q1, (q / p.Wq + 1) * p.Wq) : q1;
            const int64_t to = p.linear ? q / p.Wq * g.OW + q % p.Wq : q;  // q's output pixel
            const int64_t count =
                p.linear ? std::max<int64_t>(0, std::min(row_end, q / p.Wq * p.Wq + g.OW) - q) : q1 - q;
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
          const float* w = w_all + (grp * p.pairs + pair) * K * LM;
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
              if (M > 1) {
                wide.interleaved[M == 4](np, from, offset + k0, kc, w + k0 * LM, acc + (q - q0) * L, k0 == 0);
              } else if (two) {
                wide.block2(np, from, at, offset + k0, kc, w + k0 * L, w + (K + k0) * L, acc + (q - q0) * L,
                            acc1 + (q - q0) * L, k0 == 0);
              } else if (L == wide.lanes) {
                wide.block(np, from, at, offset + k0, kc, w + k0 * L, acc + (q - q0) * L, k0 == 0);
              } else if (L == kPair) {  // AVX2's 16-channel pairs
                block_of<2>(np, from, at, offset + k0, kc, w + k0 * L, acc + (q - q0) * L, k0 == 0);
              } else {  // 8 channels with AVX-512, not interleaved (a stride of 3 or more)
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
        auto plain = [&](int64_t q) { return p.linear ? q / p.Wq * g.OW + std::min(q % p.Wq, g.OW) : q; };
        apply_stage(out, stage, g, grp * p.OCG + pair0 * L, grp * p.OCG + std::min(p.OCG, pair1 * L), n * P + plain(q0),
                    n * P + plain(q1));
      },
      conv2d_work(g));
}

}  // namespace tinytorch::ops

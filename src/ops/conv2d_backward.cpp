// The convolution's gradients, fast paths (the references: kernels/reference/conv2d_reference.cpp).
//
// dx: for stride 1 the input gradient is itself a convolution (of dy with the weight flipped in
//     space and transposed in channels, padded by dilation*(k-1) - padding), so it runs on the
//     forward algorithms, Winograd included. Other strides, for depthwise layers and dense layers
//     of few outputs and wide windows (by_phases), split dx by phase (its pixels of one row and
//     column remainder modulo the stride): each phase is a stride-1 convolution of dy with the taps
//     that reach it, run on the forward algorithms too and scattered into dx. Strided grouped
//     layers of up to 8 outputs per group (lanes_input_rule) by channel lanes: vectors across input
//     channels, dy's rows interleaved once per output channel of a group, each tap of each dx pixel
//     a multiply-add of whole vectors. The rest (and where the dilation does not divide the
//     stride): GEMM (weight^T x dy) then col2im, in blocks of channels whose rows of the column
//     matrix stay in cache.
// dw: depthwise layers, and others of few outputs per group and several taps (lanes_rule), by
//     channel lanes: vectors across output channels, dy and the input interleaved as the
//     depthwise forward kernel lays them out, each tap of each pixel a multiply-add of whole
//     vectors. The rest: per group, sum over images of dy [OCG, P] x col^T [P, K], as GEMMs,
//     either on our micro-kernels with col built in slabs that stay in L2 (tiles_rule: layers
//     with a window and many pixels), or through OpenBLAS with images in chunks whose columns lie
//     side by side (the chunk's pixels the GEMM's inner dimension), blocks of dw over the threads,
//     each adding the chunks in order. Blocks and chunks follow from the shape, never the thread
//     count: the same bits on any number of threads. Per image, with a partial dw per chunk of
//     images summed at the end, ResNet-18's 512-channel layers at 3x3 pixels (batch 8, 96x96
//     images) did 9 multiply-adds per write of a 9 MiB partial.
// db: per channel, a double sum in a fixed order.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blas.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "ops/conv2d.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {

namespace {

// Floats of one block of column rows that a thread writes and reads back at once (512 KiB: within
// a core's L2 on the machines we measure, 1-2 MiB).
constexpr int64_t kColumnBlockFloats = int64_t{128} << 10;

// Input channels per item of the stride-1 weight flip (see conv2d_backward_input).
constexpr int64_t kFlipChannels = 16;

// One dimension of one phase of a strided input gradient: the input positions q * stride + r
// (q = 0, 1, ...) get dx[q * stride + r] = sum over taps k with (r + pad - k * dilation) a multiple
// of the stride of dy[q + m_k] w[k], m_k = (r + pad - k * dilation) / stride. Where the dilation
// divides the stride those taps are k0, k0 + s', ... (s' = stride / dilation) and m falls by one
// from each to the next: a stride-1 correlation of dy with them in reverse order.
struct Phase {
  int64_t first_tap = 0, taps = 0;  // w's taps first_tap + j * spacing, j < taps (0: dx is 0 here)
  int64_t spacing = 1;
  int64_t zeros = 0;  // zero taps before them, where the correlation would start past dy's first row
  int64_t pad = 0;    // the stride-1 convolution's padding before dy (at most its span: m_k0 >= 0)
  int64_t count = 0;  // its outputs, q = 0 .. count - 1 (the phase's later positions read nothing)
};

// The phase r of one dimension (stride s, padding p, dilation d, kernel k, dx size H, dy size O),
// or nothing where the dilation does not divide the stride.
std::optional<Phase> phase_of(int64_t r, int64_t s, int64_t p, int64_t d, int64_t k, int64_t H, int64_t O) {
  const int64_t common = std::gcd(s, d);
  if (d / common != 1) return std::nullopt;
  Phase ph;
  ph.spacing = s / common;
  auto reaches = [&](int64_t tap) { return ((r + p - tap * d) % s + s) % s == 0; };
  while (ph.first_tap < k && !reaches(ph.first_tap)) ++ph.first_tap;
  if (ph.first_tap >= k) return ph;
  ph.taps = (k - 1 - ph.first_tap) / ph.spacing + 1;
  const int64_t m0 = (r + p - ph.first_tap * d) / s;  // exact
  // reversed: out[q] = sum over j' of dy[q - pad + j'] w[first_tap + (taps - 1 - j') spacing]
  ph.pad = ph.taps - 1 - m0;
  ph.zeros = std::max<int64_t>(0, -ph.pad);
  ph.pad += ph.zeros;
  const int64_t total = r < H ? (H - r + s - 1) / s : 0;         // positions q * s + r inside dx
  ph.count = std::max<int64_t>(0, std::min(total, O + ph.pad));  // from O + pad on, past dy's last row
  return ph;
}

// Which strided input gradients run by phases. Through dcol, each value of dcol costs a write, a
// read and a scattered add into dx for OCG multiply-adds (the GEMM's inner dimension); by phases,
// the same multiply-adds run as stride^2 forward convolutions of dy with sub-kernels of about
// KH / stride x KW / stride taps, whose kernels need taps and channels to be efficient. Measured on
// 56 random strided layers (seeds 515, 616; phases against dcol with the faster col2im): depthwise
// layers ran 1.4-2.9x faster by phases; dense layers with fewer than 32 outputs and 2+ taps per
// phase and side (5x5 and 7x7 windows at stride 2) 1.1-2.0x; 3x3 stride-2 and every stride-3 layer
// with 1-tap phases lost up to 2x, and grouped layers of 4-8 channels per group up to 1.8x.
bool by_phases(const Conv2dGeometry& g) {
  const bool depthwise = g.groups == g.C && g.groups == g.OC && g.groups > 1;
  const bool wide_phases = g.KH >= 2 * g.stride_h && g.KW >= 2 * g.stride_w;
  return depthwise || (g.groups == 1 && g.OC < 32 && wide_phases);
}

// dx by phases (see Phase): per phase, the taps that reach it, flipped and transposed per group as
// for stride 1, one forward convolution of dy, its outputs scattered into their rows and columns.
// Kept out of line: inlined into conv2d_backward_input, its locals pushed the stride-1 weight
// flip's onto the stack (a 120 -> 480 1x1 layer's input gradient at one pixel 1.7x slower).
[[gnu::noinline]] bool backward_input_by_phases(float* dx, const float* dy, const float* weight,
                                                const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  std::vector<Phase> rows, cols;
  for (int64_t r = 0; r < g.stride_h; ++r) {
    const std::optional<Phase> ph = phase_of(r, g.stride_h, g.pad_top, g.dilation_h, g.KH, g.H, g.OH);
    if (!ph) return false;
    rows.push_back(*ph);
  }
  for (int64_t r = 0; r < g.stride_w; ++r) {
    const std::optional<Phase> ph = phase_of(r, g.stride_w, g.pad_left, g.dilation_w, g.KW, g.W, g.OW);
    if (!ph) return false;
    cols.push_back(*ph);
  }
  const int64_t planes = g.N * g.C;
  parallel_for(
      planes, [&](int64_t plane, int) { std::fill_n(dx + plane * g.H * g.W, g.H * g.W, 0.0f); },
      kStreamedFloatWork * planes * g.H * g.W);
  const ChangingWeights temporary;  // the phases' weights live for this call only
  for (int64_t rh = 0; rh < g.stride_h; ++rh) {
    for (int64_t rw = 0; rw < g.stride_w; ++rw) {
      const Phase& ph = rows[static_cast<size_t>(rh)];
      const Phase& pw = cols[static_cast<size_t>(rw)];
      if (ph.taps == 0 || pw.taps == 0 || ph.count == 0 || pw.count == 0) continue;  // dx stays 0
      const int64_t KH = ph.zeros + ph.taps, KW = pw.zeros + pw.taps;
      // weight [OC, CG, KH, KW] -> this phase's [C, OCG, KH', KW']: per group channels swapped,
      // the reaching taps reversed, zero taps first.
      Tensor sub = Tensor::zeros({g.C, OCG, KH, KW});
      float* f = sub.data_to_write();
      for (int64_t oc = 0; oc < g.OC; ++oc) {
        const int64_t group = oc / OCG, ocg = oc % OCG;
        for (int64_t icg = 0; icg < CG; ++icg) {
          const float* src = weight + (oc * CG + icg) * g.KH * g.KW;
          float* dst = f + ((group * CG + icg) * OCG + ocg) * KH * KW;
          for (int64_t j = 0; j < ph.taps; ++j) {
            for (int64_t i = 0; i < pw.taps; ++i) {
              const int64_t kh = ph.first_tap + (ph.taps - 1 - j) * ph.spacing;
              const int64_t kw = pw.first_tap + (pw.taps - 1 - i) * pw.spacing;
              dst[(ph.zeros + j) * KW + pw.zeros + i] = src[kh * g.KW + kw];
            }
          }
        }
      }
      Conv2dGeometry t = g;  // dy [N, OC, OH, OW] -> this phase's dx [N, C, count_h, count_w]
      t.C = g.OC, t.H = g.OH, t.W = g.OW;
      t.OC = g.C, t.OH = ph.count, t.OW = pw.count;
      t.KH = KH, t.KW = KW;
      t.stride_h = t.stride_w = t.dilation_h = t.dilation_w = 1;
      t.pad_top = ph.pad, t.pad_left = pw.pad;
      Tensor out = Tensor::empty({g.N, g.C, ph.count, pw.count});
      conv2d_forward(out.data_to_write(), dy, f, nullptr, t);
      const float* o = std::as_const(out).data();
      parallel_for(
          planes,
          [&](int64_t plane, int) {
            for (int64_t a = 0; a < ph.count; ++a) {
              const float* src = o + (plane * ph.count + a) * pw.count;
              float* dst = dx + (plane * g.H + a * g.stride_h + rh) * g.W + rw;
              for (int64_t b = 0; b < pw.count; ++b) dst[b * g.stride_w] = src[b];
            }
          },
          2 * kStreamedFloatWork * planes * ph.count * pw.count);
    }
  }
  return true;
}

// Input gradient by channel lanes (kernels::lanes_input_grad_block; the rule: lanes_input_rule):
// items (image, block of input channels, band of dx rows), each band's scratch within
// kLaneBandBytes, at least kLaneItems items where the image has the rows. Each dx value is
// written by one item: the same bits on any thread count.
constexpr int64_t kLaneBandBytes = 256 * 1024;
constexpr int64_t kLaneItems = 8;
void backward_input_by_lanes(float* dx, const float* dy, const float* weight, const Conv2dGeometry& g) {
  const int64_t L = kernels::depthwise_block_lanes(), blocks = (g.C + L - 1) / L;
  int64_t band = g.H;
  while (band > 1 && kernels::lanes_input_grad_scratch_floats(g, band) * 4 > kLaneBandBytes) band = (band + 1) / 2;
  if (g.N * blocks < kLaneItems) {
    const int64_t want = (kLaneItems + g.N * blocks - 1) / (g.N * blocks);  // bands per image
    band = std::min(band, (g.H + want - 1) / want);
  }
  const int64_t bands = (g.H + band - 1) / band;
  const size_t scratch = static_cast<size_t>(kernels::lanes_input_grad_scratch_floats(g, band)) * sizeof(float);
  const int64_t P = g.OH * g.OW;
  parallel_for(
      g.N * blocks * bands,
      [&](int64_t item, int) {
        const int64_t n = item / (blocks * bands), block = item / bands % blocks, ih0 = item % bands * band;
        kernels::lanes_input_grad_block(dx + n * g.C * g.H * g.W, dy + n * g.OC * P, weight, block * L, ih0,
                                        std::min(g.H, ih0 + band), workspace(scratch), g);
      },
      2 * g.N * g.C * g.out_channels_per_group() * P * g.KH * g.KW +
          2 * kStreamedFloatWork * g.N * (g.C * g.H * g.W + g.out_channels_per_group() * g.C * P));
}

// Whether a strided layer's input gradient runs by channel lanes rather than dcol + col2im: up to 8
// outputs per group (dcol's GEMM then has an inner dimension of 8), more taps than phases (each dx
// pixel gets more than one tap on average), half a vector of input channels. On 70 random grouped
// layers (seeds 1212, 1313) the lanes lost at stride 1 (0.3-0.9x: the forward algorithms run it
// better) and with 12+ outputs per group (0.55-0.9x, but 7x7 windows); strided with up to 8,
// 1.1-2.5x. Held out (22 strided layers, seed 1616): taken, 0.92-2.65x; 2x2 windows at stride 2-3,
// which the taps rule leaves out, 0.71-0.91x. With AVX2 kernels (TINYTORCH_ISA=avx2, a Zen 4, 2
// threads; 40 random strided grouped layers the rule takes, seed 1717, the rule on and off in
// alternating processes): 2.0x the fallback's geomean, 1.04-12x but one (0.68x: 8 x 672 -> 32 at
// 11x11, groups 16, 3x3 stride 2). Dense layers (one group, every block of lanes inside it) went to
// phases and dcol (0.69-1.29x by lanes then) until the lanes broadcast dy where a block lies in one
// group: then, the rule on and off in one process (AVX2 Zen 3, 2 threads, 2026-12-07), 40 random
// dense strided layers of 1-8 outputs, 4-800 channels, windows 3x3-7x7 (seed 3701) ran 1.84x faster
// by lanes in geomean (35 faster by 5%, 2 slower, to 0.74x); held out (seed 3702) 1.82x (34, 4, to
// 0.68x: 6x6 and 7x7 windows on images 7-8 pixels wide). Windows up to 5x5 2.1-2.4x, 6x6 and 7x7
// 1.3-1.4x.
bool lanes_input_rule(const Conv2dGeometry& g) {
  return !conv2d_depthwise_supports(g) && (g.stride_h > 1 || g.stride_w > 1) && g.out_channels_per_group() <= 8 &&
         g.KH * g.KW > g.stride_h * g.stride_w && 2 * g.C >= kernels::depthwise_block_lanes() && g.KH <= 32 &&
         g.KW <= 32;
}

}  // namespace

void conv2d_backward_input(float* dx, const float* dy, const float* weight, const Conv2dGeometry& g) {
  if (g.N == 0) return;  // an empty batch: dx has no element (the kernels below divide by sizes)
  if (lanes_input_rule(g)) {
    backward_input_by_lanes(dx, dy, weight, g);
    return;
  }
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const int64_t span_h = g.dilation_h * (g.KH - 1), span_w = g.dilation_w * (g.KW - 1);
  const int64_t pad_bottom = (g.OH - 1) + span_h + 1 - g.H - g.pad_top;  // may be < 0: unused rows
  const int64_t pad_right = (g.OW - 1) + span_w + 1 - g.W - g.pad_left;
  const bool as_convolution = g.stride_h == 1 && g.stride_w == 1 && g.pad_top <= span_h && g.pad_left <= span_w &&
                              pad_bottom >= 0 && pad_bottom <= span_h && pad_right >= 0 && pad_right <= span_w;
  if (as_convolution) {
    // weight [OC, CG, KH, KW] -> flipped [C, OCG, KH, KW]: per group, channels swapped, taps reversed.
    // An item is a block of kFlipChannels input channels: it reads each output channel's run of
    // them (contiguous) and appends it to the block's flipped rows, kFlipChannels streams of writes.
    // Written column by column with a loop over taps per value, a 120 -> 480 1x1 layer's input
    // gradient at 1x1 pixels spent 60 of its 70 us on the flip; read down the weight's columns
    // (rows 4 KiB apart, each load a miss), a 1024 -> 1000 one's took 2.8 ms.
    Tensor flipped = Tensor::empty({g.C, OCG, g.KH, g.KW});
    float* f = flipped.data_to_write();
    const int64_t T = g.KH * g.KW, blocks = (CG + kFlipChannels - 1) / kFlipChannels;
    parallel_for(
        g.groups * blocks,
        [&](int64_t item, int) {
          const int64_t group = item / blocks, i0 = item % blocks * kFlipChannels;
          const int64_t count = std::min(kFlipChannels, CG - i0);
          float* dst = f + (group * CG + i0) * OCG * T;  // [count][OCG][T]
          for (int64_t ocg = 0; ocg < OCG; ++ocg) {
            const float* src = weight + ((group * OCG + ocg) * CG + i0) * T;  // [count][T]
            if (T == 1) {
              for (int64_t j = 0; j < count; ++j) dst[j * OCG + ocg] = src[j];
            } else {
              for (int64_t j = 0; j < count; ++j)
                for (int64_t t = 0; t < T; ++t) dst[(j * OCG + ocg) * T + t] = src[j * T + T - 1 - t];
            }
          }
        },
        2 * kStreamedFloatWork * g.OC * K);
    Conv2dGeometry t = g;  // dy [N, OC, OH, OW] -> dx [N, C, H, W]
    t.C = g.OC, t.H = g.OH, t.W = g.OW;
    t.OC = g.C, t.OH = g.H, t.OW = g.W;
    t.pad_top = span_h - g.pad_top, t.pad_left = span_w - g.pad_left;
    const ChangingWeights temporary;  // the flipped weight lives for this call only
    conv2d_forward(dx, dy, f, nullptr, t);
    return;
  }
  if (by_phases(g) && backward_input_by_phases(dx, dy, weight, g)) return;
  // dcol = weight_g^T x dy [OCG, P], then col2im into dx, in blocks of whole input channels whose
  // rows of dcol (cb * KH * KW rows of P floats, within kColumnBlockFloats where that leaves 128
  // rows for the GEMM) stay in cache between the GEMM that writes them and the col2im that reads
  // them: one (image, group, channel block) per item, each item the only writer of its channels of
  // dx. Through the whole dcol [K, P] at once, a 5x5 stride-2 layer of 285 -> 5 channels at 71x71
  // wrote and read back a 37 MB matrix; blocks of 75 rows slowed a 512-output layer's GEMM by 20%.
  const int64_t taps = g.KH * g.KW;
  const int64_t cb = std::min(CG, std::max(kColumnBlockFloats / std::max<int64_t>(taps * P, 1), (127 + taps) / taps));
  const int64_t blocks = (CG + cb - 1) / cb;
  parallel_for(
      g.N * g.groups * blocks,
      [&](int64_t item, int) {
        const int64_t n = item / (g.groups * blocks), grp = item / blocks % g.groups, c0 = item % blocks * cb;
        const int64_t channels = std::min(cb, CG - c0), rows = channels * g.KH * g.KW;
        float* col = workspace(static_cast<size_t>(rows * P) * sizeof(float));
        kernels::sgemm(true, false, rows, P, OCG, 1.0f, weight + grp * OCG * K + c0 * g.KH * g.KW, K,
                       dy + (n * g.OC + grp * OCG) * P, P, 0.0f, col, P);
        float* dst = dx + (n * g.C + grp * CG + c0) * g.H * g.W;
        std::fill_n(dst, channels * g.H * g.W, 0.0f);
        Conv2dGeometry block = g;  // the block's channels as one group
        block.C = channels, block.groups = 1;
        kernels::col2im_add(dst, col, block);
      },
      2 * g.N * g.OC * P * K);
}

namespace {

// Images per chunk: as many as the chunk's whole col and dy would fit in this many floats (16 MiB),
// enough to give a late layer's GEMM a long inner dimension, few enough that an early layer's chunk
// is one image. (A block's rows of col, at most 128 of them, are what is built at once.)
constexpr int64_t kWeightGradChunkFloats = int64_t{4} << 20;

// A 1x1 layer's image of at least this many pixels is a chunk of its own: its GEMM's inner
// dimension is long enough, and it then reads the image and dy in place instead of copying them
// side by side (32 -> 128 at 54x54, batch 8: the copies took a third of the weight gradient's
// time). On 20 random 1x1 layers of 5x5 to 28x28 pixels, in place ran 0.98-1.66x the copies'
// speed from 12x12 up on both ISAs; below, 0.89-1.31x with AVX2. Layers with a window copy their
// columns either way, and fewer, larger chunks ran faster.
constexpr int64_t kLongImagePixels = 128;

// Blocks of dw_g [OCG, K] that run as items: columns in blocks of about 128 (at least 16, a
// multiple of 16), rows in blocks of at most 256, and at least two blocks where rows of 32 or more
// allow it (one 128 x 32 block, a 32 -> 128 1x1 layer's, ran its whole GEMM on one thread; more,
// smaller row blocks slowed OpenBLAS's GEMM more than the threads gained); a function of the shape
// alone, never of the thread count.
constexpr int64_t kMinGradBlocks = 2;

// An item is a block of columns with all its row blocks, building its rows of col itself, where
// that gives at least this many items; otherwise an item is one row block, and the chunk's col is
// built once for all of them beforehand. Each 512 -> 512 3x3 layer's block of 128 columns built
// twice cost 9% (batch 8 at 7x7); five items of two row blocks each (64 -> 320, 3x3) left a thread
// idle for a sixth of the time; ResNet's 1x1 stride-2 layers (2-4 blocks of columns) lost 8-12%
// building them per row block.
constexpr int64_t kSharedColumnItems = 8;
struct GradBlocks {
  int64_t ob, kb, obs, kbs;  // rows and columns per block, block counts
};
GradBlocks grad_blocks(int64_t OCG, int64_t K) {
  GradBlocks b{};
  b.obs = (OCG + 255) / 256;
  const int64_t want = (K + 127) / 128;
  b.kb = std::max<int64_t>(16, ((K + want - 1) / want + 15) / 16 * 16);
  b.kbs = (K + b.kb - 1) / b.kb;
  if (b.obs * b.kbs < kMinGradBlocks) {
    b.obs = std::max(b.obs, std::min((kMinGradBlocks + b.kbs - 1) / b.kbs, OCG / 32));
  }
  b.ob = (OCG + b.obs - 1) / b.obs;
  b.obs = (OCG + b.ob - 1) / b.ob;
  return b;
}

// The dense weight gradient on our micro-kernels (tiles_backward_weight): per group, dw^T [K, OCG]
// = sum over the pixels of col [K, pixels] x dy^T [pixels, OCG], with the taps as the tile's rows.
// col's rows are built by im2col in slabs of kGradPixels pixels of a block of taps (across the
// images of a chunk where they are small) into the thread's buffer just before use: in L2, the
// whole column matrix never goes to memory. dy is turned once per chunk of images into panels
// [OCG / NR][pixels][NR], the tiles' B. Work items are blocks of taps (and, where those are few,
// parts of the pixels): each owns its rows of dw^T, so no slab is built twice; dw^T is transposed
// into dw at the end.
constexpr int64_t kGradPixels = 256;
// Taps per work item: at most this many, fewer where that makes at least kGradItems items.
constexpr int64_t kGradTaps = 128;
constexpr int64_t kGradItems = 8;
// dy's panels per chunk of images: at most this many floats (16 MiB), at least one image.
constexpr int64_t kGradPanelFloats = int64_t{4} << 20;

// Which of the two runs a dense weight gradient: the tiles for a layer with a window (a 1x1
// layer's column matrix is its input, which OpenBLAS's form reads in place or copies once), whose
// output channels fill the tile's width (NR: with fewer, most of each multiply-add is padding),
// and where the data the tiles move besides the GEMM's own reads, dy turned into panels (OCG x
// pixels) and dw^T turned into dw (K x OCG), is less than the column matrix that OpenBLAS's form
// writes out and reads back (K x pixels, all images'): OCG (N P + K) < K N P. Early layers
// (many pixels) take the tiles: 8 x 64 -> 64 3x3 at 56x56 15.5 -> 10.6 ms, 8 x 32 -> 64 at
// 112x112 43.6 -> 27.0, 1 x 128 -> 128 at 28x28 1.49 -> 1.39, the 7x7 stride-2 stem at batch 8
// 16.2 -> 14.5; late ones (few pixels, many channels: the output transposed costs more than the
// columns) keep OpenBLAS, where the tiles measured 0.65x (512 -> 512 at 7x7, batch 1) and 0.92x
// (the same at batch 8); so do 1x1 layers (0.60-0.84x on four of the sweep's, 1.10x on one) and
// layers of few outputs (5 outputs, 5x5 stride 2: 0.42x) (AVX-512, 2 threads, alternating
// processes, 3 rounds).
bool tiles_rule(const Conv2dGeometry& g) {
  const double OCG = static_cast<double>(g.out_channels_per_group()),
               K = static_cast<double>(g.channels_per_group()) * g.KH * g.KW;
  const double pixels = static_cast<double>(g.N) * g.OH * g.OW;
  return g.KH * g.KW > 1 && OCG >= kernels::packed_gemm_tile().nr && OCG * (pixels + K) < K * pixels;
}

// Work items of the weight gradient by channel lanes: at least this many where the shape has them,
// each a block of output channels over a run of the batch's (image, band of rows) pieces; the
// runs' sums are added in order at the end. Seven blocks of 16 channels (104 -> 104 in groups of
// 13) left a thread idle for an eighth of the time at 4; 8 ran 1.0-1.15x 4 on 12 layers.
constexpr int64_t kLaneGradItems = 8;

// Whether a weight gradient that is not depthwise runs by channel lanes (lanes_backward_weight)
// rather than im2col + GEMM. Each input value the lanes copy (interleaved, once per input channel
// of a group) serves KH * KW / (stride_h * stride_w) multiply-adds per lane; each value of the GEMM's
// column matrix serves OCG (its rows). The lanes run where their copies serve at least a quarter
// as many: OCG * stride_h * stride_w <= 4 * KH * KW, with at least two taps (a 1x1 layer's GEMM
// reads the input in place: no copy to save) and at least half a vector of output channels (the
// lanes are output channels; 2 -> 2 layers ran 0.3-0.5x). On 90 random layers (seeds 1212, 1313,
// 1414): where the rule takes the lanes 1.0-2.4x the GEMM on both ISAs (AVX2 geomean 1.56x, 39
// layers); where it does not, the lanes ran 0.17-1.0x (1x1 layers, 3x3 stride-2 layers of 12+
// outputs per group, 3x3 stride-1 layers of 64), with a few exceptions up to 1.4x. Held out (28
// random layers, seed 1515) one loss, 0.87x (AVX2 0.93x): a dense 48 -> 192 7x7 layer, whose GEMM
// of 192 rows fills its tiles; hence at most 64 outputs per group (5x5 layers of 64: 1.3-1.4x).
// Dense layers of fewer outputs than half a vector take the lanes too, since a block inside one
// group reads the input once and broadcasts it (depthwise_weight_grad_block): the rule on and off
// in one process (AVX2 Zen 3, 2 threads, 2026-12-07), 30 random dense layers of 1-3 outputs
// (seed 3801: 3-600 channels, windows 2x2-7x7, strides 1-3) 2.42x faster in geomean, 29 faster by
// 5%, none slower; held out (seed 3802, with 1-4 channels too) 2.43x, all 30 faster.
bool lanes_rule(const Conv2dGeometry& g) {
  const int64_t T = g.KH * g.KW, OCG = g.out_channels_per_group();
  return T >= 2 && (2 * g.OC >= kernels::depthwise_block_lanes() || g.groups == 1) && OCG <= 64 &&
         OCG * g.stride_h * g.stride_w <= 4 * T;
}

// A depthwise layer's weight gradient (groups == C, OC a multiple of C), and a grouped layer's of few
// output channels per group: the depthwise forward kernel's layout (kernels/depthwise/): dy's rows
// and the padded input rows they read interleaved by channel, each tap of each pixel one
// multiply-add of whole vectors into the tap's sums; a grouped layer as CG depthwise ones (lane j
// reads input channel c of its group). Through im2col and a GEMM per channel, MobileNetV2's
// training step spent 8% of its time writing each input 9 times over; plane by plane, a row
// shorter than a vector (14 pixels) ran one lane at a time.
void lanes_backward_weight(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  const int64_t T = g.KH * g.KW, P = g.OH * g.OW, L = kernels::depthwise_block_lanes(), CG = g.channels_per_group();
  const int64_t blocks = (g.OC + L - 1) / L;
  const int64_t band = conv2d_depthwise_band_rows(g), bands = (g.OH + band - 1) / band, pieces = g.N * bands;
  const int64_t runs = std::min(pieces, (kLaneGradItems + blocks - 1) / blocks);
  const size_t scratch = static_cast<size_t>(conv2d_depthwise_workspace_bytes(g));
  const int64_t S = CG * T * L;  // an item's sums [CG][T][L]
  // sums [blocks][runs][CG][T][L]
  float* sums = workspace(static_cast<size_t>(blocks * runs * S) * sizeof(float), WorkspaceSlot::Shared);
  parallel_for(
      blocks * runs,
      [&](int64_t item, int) {
        const int64_t block = item / runs, run = item % runs;
        float* s = sums + item * S;
        std::fill_n(s, S, 0.0f);
        float* buffer = workspace(scratch);
        for (int64_t piece = run * pieces / runs; piece < (run + 1) * pieces / runs; ++piece) {
          const int64_t n = piece / bands, oh0 = piece % bands * band, oh1 = std::min(g.OH, oh0 + band);
          kernels::depthwise_weight_grad_block(s, dy + n * g.OC * P, in + n * g.C * g.H * g.W, block * L, oh0, oh1,
                                               buffer, g);
        }
      },
      2 * g.N * g.OC * CG * P * T + 2 * kStreamedFloatWork * g.N * (CG * g.OC * g.H * g.W + g.OC * P));
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    const float* s = sums + oc / L * runs * S + oc % L;
    for (int64_t k = 0; k < CG * T; ++k) {
      float sum = s[k * L];
      for (int64_t run = 1; run < runs; ++run) sum += s[run * S + k * L];
      dw[oc * CG * T + k] = sum;
    }
  }
}

// The dense weight gradient through OpenBLAS: per group, sum over images of dy [OCG, P] x col^T
// [P, K], images in chunks whose columns lie side by side (the chunk's pixels the GEMM's inner
// dimension), blocks of dw over the threads, each adding the chunks in order.
void blas_backward_weight(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const bool one_by_one = g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
                          g.pad_left == 0 && g.OH == g.H && g.OW == g.W;
  // Images per chunk, their columns side by side: col_g [K, n * P] per group, dy [OC, n * P].
  const int64_t per_image = (g.groups * K + g.OC) * P;
  const int64_t per_chunk = one_by_one && P >= kLongImagePixels
                                ? 1
                                : std::clamp<int64_t>(kWeightGradChunkFloats / std::max<int64_t>(per_image, 1), 1, g.N);
  const bool in_place = per_chunk == 1 && one_by_one;  // the image is its own col, dy its own rows
  const GradBlocks b = grad_blocks(OCG, K);
  const int64_t parts = g.groups * b.kbs >= kSharedColumnItems ? 1 : b.obs;
  const int64_t items = g.groups * b.kbs * parts;
  // With few blocks of columns, each read by several row blocks, the chunk's col is built once
  // for all of them before the GEMMs; otherwise each block builds its own rows of col.
  const bool shared_col = !in_place && parts > 1;
  // Rows k0 .. k0 + cols of the chunk's col_g, the images side by side (L floats apart).
  auto build_col = [&](float* col, int64_t n0, int64_t images, int64_t grp, int64_t k0, int64_t cols, int64_t L) {
    for (int64_t i = 0; i < images; ++i) {
      const float* image = in + ((n0 + i) * g.C + grp * CG) * g.H * g.W;
      if (one_by_one) {
        for (int64_t k = 0; k < cols; ++k)
          std::memcpy(col + k * L + i * P, image + (k0 + k) * P, static_cast<size_t>(P) * sizeof(float));
      } else {
        kernels::im2col_block(col + i * P, image, g, 0, P, L, k0, cols);
      }
    }
  };
  if (in_place) {
    // Each image read in place, one region for all: an item is a block of dw over a run of images.
    // Where the blocks are few, the images are cut in two halves whose sums add at the end, so
    // that threads share them evenly (three blocks of a 384 -> 128 1x1 layer left one of two
    // threads idle for a third of the time).
    const int64_t halves = items < kSharedColumnItems && g.N >= 2 ? 2 : 1, split = (g.N + 1) / 2;
    float* later =
        halves == 2 ? workspace(static_cast<size_t>(g.OC * K) * sizeof(float), WorkspaceSlot::Shared) : nullptr;
    parallel_for(
        items * halves,
        [&](int64_t item, int) {
          const int64_t half = item % halves, block = item / halves;
          const int64_t grp = block / (b.kbs * parts), kbi = block / parts % b.kbs, part = block % parts;
          const int64_t k0 = kbi * b.kb, cols = std::min(b.kb, K - k0);
          const int64_t first = half == 0 ? 0 : split, last = halves == 2 && half == 0 ? split : g.N;
          float* sum = half == 0 ? dw : later;
          for (int64_t n = first; n < last; ++n) {
            for (int64_t ob = parts == 1 ? 0 : part; ob < (parts == 1 ? b.obs : part + 1); ++ob) {
              const int64_t o0 = ob * b.ob, rows = std::min(b.ob, OCG - o0);
              kernels::sgemm(false, true, rows, cols, P, 1.0f, dy + (n * g.OC + grp * OCG + o0) * P, P,
                             in + (n * g.C + grp * CG + k0) * P, P, n == first ? 0.0f : 1.0f,
                             sum + (grp * OCG + o0) * K + k0, K);
            }
          }
        },
        2 * g.N * g.groups * OCG * K * P);
    if (halves == 2) {
      parallel_for(
          g.OC,
          [&](int64_t o, int) {
            for (int64_t k = 0; k < K; ++k) dw[o * K + k] += later[o * K + k];
          },
          3 * kStreamedFloatWork * g.OC * K);
    }
    return;
  }
  float* dyc = workspace(static_cast<size_t>(per_chunk * (g.OC + (shared_col ? g.groups * K : 0)) * P) * sizeof(float),
                         WorkspaceSlot::Shared);
  for (int64_t n0 = 0; n0 < g.N; n0 += per_chunk) {
    const int64_t images = std::min(per_chunk, g.N - n0), L = images * P;  // L: the chunk's pixels
    float* shared = shared_col ? dyc + g.OC * L : nullptr;
    // dy [OC, L]: the chunk's output gradients side by side (and the shared col)
    parallel_for(
        images * g.groups,
        [&](int64_t item, int) {
          const int64_t i = item / g.groups, grp = item % g.groups;
          for (int64_t o = grp * OCG; o < (grp + 1) * OCG; ++o)
            std::memcpy(dyc + o * L + i * P, dy + ((n0 + i) * g.OC + o) * P, static_cast<size_t>(P) * sizeof(float));
          if (shared_col) build_col(shared + grp * K * L + i * P, n0 + i, 1, grp, 0, K, L);
        },
        images * (g.OC + (shared_col ? g.groups * K : 0)) * P * 2 * kStreamedFloatWork);
    // dw_g[block] (+)= dy_g [rows, L] x col_g^T [L, columns]: one GEMM per block, the chunks added
    // in order. A block that builds its own rows of col reads them back from cache: through one
    // col of every row, a 5x5 layer of 285 -> 5 channels wrote and read back 37 MB for 5
    // multiply-adds per value.
    parallel_for(
        items,
        [&](int64_t item, int) {
          const int64_t grp = item / (b.kbs * parts), kbi = item / parts % b.kbs, part = item % parts;
          const int64_t k0 = kbi * b.kb, cols = std::min(b.kb, K - k0);
          const float* B = nullptr;
          if (shared_col) {
            B = shared + (grp * K + k0) * L;
          } else {
            float* col = workspace(static_cast<size_t>(cols * L) * sizeof(float));
            build_col(col, n0, images, grp, k0, cols, L);
            B = col;
          }
          for (int64_t ob = parts == 1 ? 0 : part; ob < (parts == 1 ? b.obs : part + 1); ++ob) {
            const int64_t o0 = ob * b.ob, rows = std::min(b.ob, OCG - o0);
            kernels::sgemm(false, true, rows, cols, L, 1.0f, dyc + (grp * OCG + o0) * L, L, B, L, n0 == 0 ? 0.0f : 1.0f,
                           dw + (grp * OCG + o0) * K + k0, K);
          }
        },
        2 * g.groups * OCG * K * L + (shared_col ? 0 : 2 * kStreamedFloatWork * g.groups * K * L));
  }
}

// The dense weight gradient on our micro-kernels (the comment at kGradPixels).
void tiles_backward_weight(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const int64_t MR = t.mr, NR = t.nr;
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const int64_t panels = (OCG + NR - 1) / NR, width = panels * NR;  // dw^T's rows: OCG padded to NR
  // Items: blocks of about kGradTaps taps (a multiple of MR), and where those are fewer than
  // kGradItems, parts of each chunk's pixel blocks too, each part summing into a dw^T of its own;
  // the parts' sums are added in order at the end.
  const int64_t tap_blocks = (K + kGradTaps - 1) / kGradTaps;
  const int64_t kb = ((K + tap_blocks - 1) / tap_blocks + MR - 1) / MR * MR, blocks = (K + kb - 1) / kb;
  const int64_t parts = std::clamp<int64_t>((kGradItems + g.groups * blocks - 1) / (g.groups * blocks), 1,
                                            (g.N * P + kGradPixels - 1) / kGradPixels);
  const int64_t items = g.groups * blocks * parts, sums = g.groups * K * width;  // floats of one dw^T
  const int64_t per_chunk = std::clamp<int64_t>(kGradPanelFloats / std::max<int64_t>(g.groups * width * P, 1), 1, g.N);
  // Shared: the parts' dw^T [parts][groups][K][width], then the chunk's dy panels
  // [groups][panels][images * P][NR]
  float* dwt = workspace(static_cast<size_t>(parts * sums + g.groups * width * per_chunk * P) * sizeof(float),
                         WorkspaceSlot::Shared);
  float* dyp = dwt + parts * sums;
  // One part sums every pixel block of every chunk, its first block writing; parts start from
  // zero (a part may meet no block of a chunk).
  if (parts > 1) std::fill_n(dwt, parts * sums, 0.0f);
  // dw [OC, K]'s channels [o0, o1) of group grp, taps [k0, k1), from the parts' dw^T (summed in
  // order), in 16 x 16 tiles (a row of dw^T at a time, 2 KiB apart for 512 channels, missed on
  // every float: a third of a 512-channel layer's time).
  const auto write_dw = [&](int64_t grp, int64_t o0, int64_t o1, int64_t k0, int64_t k1) {
    const float* src = dwt + grp * K * width;
    float* dst = dw + grp * OCG * K;
    for (int64_t kt = k0; kt < k1; kt += 16) {
      for (int64_t ot = o0; ot < o1; ot += 16) {
        for (int64_t o = ot; o < std::min(o1, ot + 16); ++o) {
          for (int64_t k = kt; k < std::min(k1, kt + 16); ++k) {
            float sum = src[k * width + o];
            for (int64_t q = 1; q < parts; ++q) sum += src[q * sums + k * width + o];
            dst[o * K + k] = sum;
          }
        }
      }
    }
  };
  // With one part and one chunk, an item writes its taps' dw as it finishes them, its block of
  // dw^T still in cache (512 -> 512 3x3 at 7x7, batch 1: dw^T is 9 MiB for 49 multiply-adds per
  // float, and its pass through memory cost a third more); otherwise a pass at the end.
  const bool items_write = parts == 1 && per_chunk >= g.N;
  for (int64_t n0 = 0; n0 < g.N; n0 += per_chunk) {
    const int64_t images = std::min(per_chunk, g.N - n0), L = images * P;
    parallel_for(
        g.groups * panels * images,
        [&](int64_t item, int) {  // panel j of group grp, image i: dyp[l][o] = dy[o][l]
          const int64_t grp = item / (panels * images), j = item / images % panels, i = item % images;
          float* dst = dyp + (grp * panels + j) * L * NR + i * P * NR;
          const int64_t o0 = grp * OCG + j * NR, lanes = std::min(NR, OCG - j * NR);
          const float* src = dy + ((n0 + i) * g.OC + o0) * P;
          for (int64_t p0 = 0; p0 < P; p0 += 16) {  // 16 pixels of every channel at a time
            const int64_t p1 = std::min(P, p0 + 16);
            for (int64_t o = 0; o < lanes; ++o)
              for (int64_t q = p0; q < p1; ++q) dst[q * NR + o] = src[o * P + q];
            for (int64_t q = p0; q < p1; ++q) std::fill(dst + q * NR + lanes, dst + (q + 1) * NR, 0.0f);
          }
        },
        images * g.OC * P * 2 * kStreamedFloatWork);
    parallel_for(
        items,
        [&](int64_t item, int) {
          const int64_t grp = item / (blocks * parts), k0 = item / parts % blocks * kb, part = item % parts;
          const int64_t rows = std::min(kb, K - k0);
          float* c = dwt + part * sums + (grp * K + k0) * width;
          bool first = n0 == 0 && parts == 1;  // the first block overwrites the sums
          // The chunk's pixel blocks [l0, l0 + lb), the block's rows of col built for each (the
          // images side by side: small images give a long inner dimension all the same).
          const int64_t count = (L + kGradPixels - 1) / kGradPixels;
          float* slab = workspace(static_cast<size_t>(rows * kGradPixels) * sizeof(float));
          for (int64_t b = part * count / parts; b < (part + 1) * count / parts; ++b) {
            const int64_t l0 = b * kGradPixels, lb = std::min(kGradPixels, L - l0);
            for (int64_t l = l0; l < l0 + lb;) {  // the part of image l / P in the slab
              const int64_t i = l / P, p0 = l % P, pb = std::min(P - p0, l0 + lb - l);
              kernels::im2col_block(slab + (l - l0), in + ((n0 + i) * g.C + grp * CG) * g.H * g.W, g, p0, pb, lb, k0,
                                    rows);
              l += pb;
            }
            const kernels::Store store = first ? kernels::Store::Write : kernels::Store::Accumulate;
            first = false;
            for (int64_t j = 0; j < panels; ++j) {
              kernels::gemm_micro_panels(lb, slab, MR * lb, rows, dyp + ((grp * panels + j) * L + l0) * NR, c + j * NR,
                                         width, static_cast<int>(NR), store, nullptr, lb);
            }
          }
          if (items_write) write_dw(grp, 0, OCG, k0, k0 + rows);
        },
        2 * g.groups * OCG * K * L + 2 * kStreamedFloatWork * g.groups * K * L);
  }
  if (items_write) return;
  const int64_t o_blocks = (OCG + 15) / 16;
  parallel_for(
      g.groups * o_blocks,
      [&](int64_t item, int) {
        const int64_t grp = item / o_blocks, o0 = item % o_blocks * 16;
        write_dw(grp, o0, std::min(OCG, o0 + 16), 0, K);
      },
      g.OC * K * 2 * kStreamedFloatWork);
}

}  // namespace

bool conv2d_backward_weight_on_tiles(const Conv2dGeometry& g) {
  return g.N > 0 && !conv2d_depthwise_supports(g) && !lanes_rule(g) && tiles_rule(g);
}

void conv2d_backward_weight(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  if (g.N == 0) {  // an empty batch: a sum of nothing
    std::fill_n(dw, g.OC * g.channels_per_group() * g.KH * g.KW, 0.0f);
    return;
  }
  if (conv2d_depthwise_supports(g) || lanes_rule(g)) {
    lanes_backward_weight(dw, dy, in, g);
    return;
  }
  if (tiles_rule(g)) return tiles_backward_weight(dw, dy, in, g);
  blas_backward_weight(dw, dy, in, g);
}

void conv2d_backward_bias(float* db, const float* dy, const Conv2dGeometry& g) {
  const int64_t P = g.OH * g.OW;
  // Per image sum_run's eight running sums: one sum waited on each addition's latency, 4 cycles a
  // float, and a 32 -> 128 1x1 layer at 54x54 (batch 8) ran its forward and backward 1.45x slower.
  parallel_for(
      g.OC,
      [&](int64_t oc, int) {
        double sum = 0.0;
        for (int64_t n = 0; n < g.N; ++n) sum += kernels::sum_run(dy + (n * g.OC + oc) * P, P);
        db[oc] = static_cast<float>(sum);
      },
      g.N * g.OC * P);
}

}  // namespace tinytorch::ops

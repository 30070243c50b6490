// Direct convolution (any kernel, stride, padding, dilation, groups): the micro-kernel reads
// shifted copies of the input in place instead of an im2col copy, and writes the output in place.
//
// The trick: for each channel c, row phase a < s_h and kernel column kw, a "column plane"
// [PH, OW] holds at (r, j) the input pixel (r * s_h + a - pad_top, j * s_w + kw * dw - pad_left),
// 0 in the padding. Tap (c, kh, kw) of output pixel (oh, ow) reads input row oh * s_h + kh * dh
// - pad_top, which is row oh + (kh * dh) / s_h of phase (kh * dh) % s_h, and column j = ow of
// plane kw. The planes are exactly OW wide, so with q = oh * OW + ow every tap reads
// flat[q + offset(c, kh, kw)]: over the output pixels q = 0 .. OH*OW - 1 of an image, each tap's
// inputs are one contiguous run, NR consecutive q are one vector load, and the micro-kernel's
// [MR channels][NR pixels] tile is NR consecutive pixels of MR output planes: it is stored straight
// into the output. The copies cost up to KW / s_w input sizes per call (only the row phases some
// tap reads are copied: a 1x1 stride-2 layer copies a quarter of its input): small next to the
// C * KH * KW multiply-adds per output that read them.
// A 1x1 stride-1 layer without padding needs no planes: the input's channels are its planes, read
// in place (no copy at all).
// Groups: the column planes are per channel whatever the groups, and a group's weight panels
// read its own channels' taps (offsets group * K ..), so a grouped layer is groups dense layers
// sharing the copies and the tiles; a group's last panel may be short of MR rows.
// Large images, and batches whose images' planes together outgrow L2, are done in bands of output
// rows: a work item copies the rows of the column planes its band needs into its own buffer (up
// to 512 KiB, so it stays in L2) and runs the band's tiles on them, instead of all images' planes
// being copied out to L3 first and read back (the 7x7 stride-2 stem's planes are 17 MB). The
// bands' planes overlap by the kernel's row shift, which costs a little more copying; a tile
// computes the same operations either way (bit-identical).
// Best where im2col costs most relative to the GEMM: few channels, small images, batch 1, strides,
// and 1x1 layers read in place.
#include <algorithm>
#include <array>
#include <numeric>
#include <utility>

#include "core/contract.hpp"
#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blocked/blocked.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {
namespace {

constexpr int64_t kPixelBlock = 256;  // output pixels per work item (a multiple of the 2-vector tile's NR)
// Taps per K block: a pixel tile's input rows for the block (KC x NR floats, at most 32 KiB) stay
// in L1 while every weight panel of the item meets them, the panels' slices of the block
// (OC x KC floats) stream from L2. Without the blocking a 128-channel 3x3 layer streams 1.2 MiB of
// weights from L3 for every 32 pixels.
constexpr int64_t kTapBlock = 256;

// 1x1, stride 1, no padding: the column plane of a channel would be a copy of the channel, so the
// input is read in place (offset k * P for channel k). Its tiles are packed per work item
// (Direct::run_packed), so a tile cut short or straddling two images reads only its own pixels.
bool reads_in_place(const Conv2dGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}

// A pointwise layer read in place packs its tiles per item (Direct::run_packed): a tile's K block
// is one contiguous run that streams in order from L2, and each K block costs a pass that adds
// into the output, packs the tiles again and gathers the dot products' taps again. Blocks of up to
// 1024 taps there: on the sweep's 1x1 layers the heuristic sends to the direct kernel 1.03x and
// 1.02x in geomean (seeds 21, 22; up to 1.15x where K >= 512, none slower by 5% but one whose K
// was one block either way), AVX2 1.00-1.06x (docs/PERFORMANCE.md, "K blocks of pointwise
// layers"). The packed tiles of an item are then up to 9 x 32 x 1024 floats (1.2 MB).
constexpr int64_t kPointwiseTapBlock = 1024;

// Taps per K block for g (K = C / groups x KH x KW of them): the fewest equal blocks of at most
// kTapBlock, or kPointwiseTapBlock for a layer read in place.
int64_t tap_block(const Conv2dGeometry& g) {
  const int64_t K = g.channels_per_group() * g.KH * g.KW;
  const int64_t most = reads_in_place(g) ? kPointwiseTapBlock : kTapBlock;
  const int64_t k_blocks = (K + most - 1) / most;
  return (K + k_blocks - 1) / k_blocks;
}

// A band's column planes should stay in L2 (1 MiB here, shared with the weights and the tiles);
// the size measured best on the stem (docs/PERFORMANCE.md, "Band buffer").
constexpr int64_t kBandBytes = 512 << 10;

struct Layout {
  int64_t band;              // output rows per band; 0: no bands (all images' planes at once)
  int64_t PH, plane, image;  // column-plane rows; floats per plane (PH * OW rounded up to 16); per image
                             // (with bands: per band, and `image` is one band's buffer)
  int64_t planes;            // column planes per channel: KW per row phase a tap reads (phase_slot)
  int64_t K, panels;         // taps and MR-row weight panels per group
  int64_t a_floats;          // packed weight floats
};

// Which of the s_h row phases a tap reads (tap row kh reads phase (kh * dh) % s_h), numbered in
// order: the slot of phase a among those read, or -1. A stride past the window's rows skips input
// rows no tap reads (a 1x1 stride-2 layer's odd rows: half its copying), whose planes are left out.
// (The blocked kernels' band split by phase counts the same way: blocked.hpp.)
int64_t phase_slot(const Conv2dGeometry& g, int64_t a) {
  return kernels::blocked_phase_read(g.KH, g.dilation_h, g.stride_h, a)
             ? kernels::blocked_phase_slot(g.KH, g.dilation_h, g.stride_h, a)
             : -1;
}

Layout layout(const Conv2dGeometry& g, const kernels::GemmTile& t) {
  Layout l{};
  const int64_t shift = (g.KH - 1) * g.dilation_h / g.stride_h;  // the largest tap's row shift
  l.planes = kernels::blocked_phase_slot(g.KH, g.dilation_h, g.stride_h, g.stride_h) * g.KW;  // phases read x KW
  l.K = g.channels_per_group() * g.KH * g.KW;
  l.panels = (g.out_channels_per_group() + t.mr - 1) / t.mr;
  l.a_floats = (g.groups * l.panels * t.mr * l.K + 15) / 16 * 16;
  auto plane_floats = [&](int64_t rows) { return ((rows + shift) * g.OW + 15) / 16 * 16; };
  // Bands when the planes of all images outgrow kBandBytes (a band may be a whole image): copied
  // all at once, they were written to L3 and read back from there, a band's stay in L2 between
  // its copy and its tiles. Forced side by side on 40 random layers the heuristic sends here
  // whose one image's planes fit (batch 2-64; AVX-512, 2 threads): bands 1.52x the speed in
  // geomean, faster on 37, the slowest 0.94x; on 40 more, 1.28x (docs/PERFORMANCE.md, "Bands for
  // batches"). Bands are of equal heights up to the most rows that
  // fit, and at least 8 bands in all (work items for up to 8 threads); a multiple of `unit` rows,
  // so that each band's pixels fill whole tiles (64-byte aligned stores, no tile cut short but the
  // image's last).
  const int64_t unit = t.nr / std::gcd(g.OW, t.nr);
  auto band_bytes = [&](int64_t rows) { return g.C * l.planes * plane_floats(rows) * 4; };
  if (!reads_in_place(g) && g.N * band_bytes(g.OH) > kBandBytes && unit < g.OH) {
    int64_t most = unit;
    while (most + unit < g.OH && band_bytes(most + unit) <= kBandBytes) most += unit;
    const int64_t bands = std::max((g.OH + most - 1) / most, (8 + g.N - 1) / g.N);
    l.band = std::min(most, ((g.OH + bands - 1) / bands + unit - 1) / unit * unit);
    l.PH = l.band + shift;
    l.plane = plane_floats(l.band);
    l.image = (g.C * l.planes * l.plane + t.nr + 15) / 16 * 16;  // slack: a tile reads NR floats
    return l;
  }
  l.PH = g.OH + shift;
  // Planes rounded to 16 floats, and images spaced so that image n starts n * OH*OW floats past a
  // multiple of 16: a pixel tile starts at a multiple of NR in the sequence of all images' pixels,
  // so then every tap without a row shift reads 64-byte aligned vectors (a misaligned one spans
  // two cache lines).
  l.plane = plane_floats(g.OH);
  // Slack: the last pixel tile reads up to NR past OH*OW from the largest tap offset, i.e. NR past
  // the last plane.
  const int64_t P = g.OH * g.OW;
  l.image = (g.C * l.planes * l.plane + t.nr + 15) / 16 * 16 + P % 16;
  return l;
}

// Rows [r0, r0 + PH) of column plane (a, kw) of one channel: dst (r, j) = channel((r0 + r) * s_h +
// a - pad_top, first + j * s_w) with first = kw * dw - pad_left, for r < PH, j < OW. Writes only
// the pixels inside the image: the caller zeroes the plane first (one memset per channel, not two
// small ones per row).
void copy_plane(float* dst, const float* channel, const Conv2dGeometry& g, int64_t r0, int64_t PH, int64_t a,
                int64_t first) {
  // Columns [lo, hi) map to iw = first + j * sw inside [0, W); the rest are padding.
  const int64_t sw = g.stride_w, OW = g.OW;
  const int64_t lo = std::min(OW, first >= 0 ? int64_t{0} : (-first + sw - 1) / sw);
  const int64_t hi = std::clamp<int64_t>(first >= g.W ? 0 : (g.W - first + sw - 1) / sw, lo, OW);
  for (int64_t r = 0; r < PH; ++r, dst += OW) {
    const int64_t ih = (r0 + r) * g.stride_h + a - g.pad_top;
    if (ih < 0 || ih >= g.H) continue;
    const float* line = channel + ih * g.W + first;  // iw = first + j * sw
    if (sw == 1 && hi - lo >= 8) {
      // Runs of 8 floats, the last one ending at hi (overlapping the one before: the same values
      // written twice). Rows are short (11-56 floats in the benchmark layers): an element loop or a
      // memcpy call cost more than the copying.
      const int64_t n = hi - lo;
      int64_t j = 0;
      for (; j + 8 <= n; j += 8) __builtin_memcpy(dst + lo + j, line + lo + j, 32);
      if (j < n) __builtin_memcpy(dst + hi - 8, line + hi - 8, 32);
    } else if (sw == 1) {
      for (int64_t j = lo; j < hi; ++j) dst[j] = line[j];
    } else if (sw == 2) {
      for (int64_t j = lo; j < hi; ++j) dst[j] = line[2 * j];
    } else {
      for (int64_t j = lo; j < hi; ++j) dst[j] = line[j * sw];
    }
  }
}

// The column planes of all images, rounded up to 16 floats (the tap offsets follow, aligned); with
// bands each thread has its own band's planes in its workspace instead.
int64_t planes_floats(const Conv2dGeometry& g, const Layout& l) { return l.band ? 0 : (g.N * l.image + 15) / 16 * 16; }

// Output rows [oh0, oh0 + PH - shift) of one channel's column planes, rows [oh0, oh0 + PH) of each
// plane, to dst [read phases, KW][plane] (zeroed first: padding and each plane's rounding).
void copy_channel(float* dst, const float* channel, const Conv2dGeometry& g, const Layout& l, int64_t oh0) {
  std::fill_n(dst, l.planes * l.plane, 0.0f);
  for (int64_t a = 0; a < g.stride_h; ++a) {
    if (phase_slot(g, a) < 0) continue;
    for (int64_t kw = 0; kw < g.KW; ++kw, dst += l.plane) {
      copy_plane(dst, channel, g, oh0, l.PH, a, kw * g.dilation_w - g.pad_left);
    }
  }
}

// The floats after an image's (or a band's) planes, up to l.image: the last tile's reads past the
// last plane land there (in lanes whose results are not stored): zeroed, so that no lane reads
// uninitialised memory or slow denormals.
void zero_slack(float* image, const Conv2dGeometry& g, const Layout& l) {
  const int64_t used = g.C * l.planes * l.plane;
  std::fill_n(image + used, l.image - used, 0.0f);
}

// Whether the tiles read the weight's rows where the caller holds it instead of packed panels: in
// eager calls (weights compared, not frozen) whose pixels, all images', fit one block of
// kPixelBlock, so that the kernel reads each weight once. A kept packed copy then costs more than
// it saves: every call compares the weight with its copy (two reads of it) before the kernel reads
// the panels (a third), where the rows are read once, strided over MR rows. Batch 1, 2 threads,
// AVX-512, packed -> rows: 1024 -> 2048 1x1 at 7x7 1.28 -> 1.00 ms, 512 -> 512 3x3 at 7x7 1.59 ->
// 1.25, 32 -> 64 3x3 at 14x14 0.067 -> 0.061; with more pixels the packed panels' contiguous reads
// win back what they cost (8 x 1024 -> 2048 1x1 at 7x7: 6.6 -> 6.9 ms; 256 -> 512 1x1 at 28x28:
// 0.81 -> 0.85). A frozen owner's weights may have been given back (prepared_weights.hpp): never.
bool reads_weight_rows(const Conv2dGeometry& g) { return !frozen_scope_active() && g.N * g.OH * g.OW <= kPixelBlock; }

// The last pixels of a run of `length` tiled from its start that dot products compute instead of a
// tile (Direct::dot_tail), for K taps per output channel. A tile computes NR / 2 lanes (a half
// tile) or NR whatever it holds, and each tile reads the panels' weight rows once more; dot
// products (kernels::dot_rows, up to 4 pixels a pass over the rows) run along the taps instead,
// every lane busy. So a last tile of at most a quarter of a half tile's lanes (NR / 8: 4 pixels
// with AVX-512, 2 with AVX2; 14x14 is 196 = 6 x 32 + 4), and at most the 4 of one pass (the wide
// tile's NR / 8 is 6: two passes lost there too), goes to one pass of dot products, where K
// holds at least 8 vectors of taps (4 NR), so that the sums' lane reductions cost little next to
// their multiply-adds. Only where the kernel reads the weight's rows (reads_weight_rows), the form
// dot_rows takes. Splitting a tile (a 7x7 image's 49 = 32 + 16 + 1) or two passes (5-8 pixels)
// lost: docs/PERFORMANCE.md, "Dot products for the direct kernel's last pixels".
int64_t dot_tail_pixels(int64_t length, int64_t nr, int64_t K) {
  const int64_t rest = length % nr;
  return rest <= std::min<int64_t>(nr / 8, 4) && K >= 4 * nr ? rest : 0;
}

// The register tile the direct kernel runs: the ISA's (12 x 32 with AVX-512), or its wide tile
// (8 x 48: kernels::wide_gemm_tile) where that covers the pixels with fewer vectors of
// multiply-adds per row, a last tile of dot products (dot_tail_pixels) counting as none: a 7x7
// image is a tile of 32 pixels and one of 17 (4 vectors, 64 lanes for 49 pixels) or a wide tile
// and one pixel of dot products (3 vectors). Only where the kernel reads the weight's rows (the
// wide tile has no packed panels), at batch 1 (no tile straddles two images) and without bands
// (which tile every pixel). (docs/PERFORMANCE.md, "A wide tile for 7x7 images".)
kernels::GemmTile direct_tile(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const kernels::GemmTile& w = kernels::wide_gemm_tile();
  if (w.nr == 0 || g.N != 1 || !reads_weight_rows(g) || g.out_channels_per_group() < 8 * w.mr) return t;
  const int64_t P = g.OH * g.OW, K = g.channels_per_group() * g.KH * g.KW, lanes = t.nr / 2;
  auto quarters = [&](int64_t nr) {  // a tile's vectors count 4, a pixel of dot products 1
    const int64_t dots = dot_tail_pixels(P, nr, K);
    return 4 * (P / nr * (nr / lanes) + (dots > 0 ? 0 : (P % nr + lanes - 1) / lanes)) + dots;
  };
  return quarters(w.nr) < quarters(t.nr) && layout(g, w).band == 0 ? w : t;
}

}  // namespace

bool conv2d_direct_reads_weight_rows(const Conv2dGeometry& g) { return reads_weight_rows(g); }

int64_t conv2d_direct_tile_width(const Conv2dGeometry& g) { return direct_tile(g).nr; }

int64_t conv2d_direct_dot_pixels(const Conv2dGeometry& g) {
  const kernels::GemmTile t = direct_tile(g);
  if (!reads_weight_rows(g) || layout(g, t).band) return 0;  // (bands tile every pixel)
  const int64_t P = g.OH * g.OW;  // tiled as Direct::cut does: all images' pixels in one run, or each image's
  const int64_t K = g.channels_per_group() * g.KH * g.KW;
  return P >= t.nr ? dot_tail_pixels(g.N * P, t.nr, K) : g.N * dot_tail_pixels(P, t.nr, K);
}

int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile t = direct_tile(g);
  const Layout l = layout(g, t);
  const int64_t kc = tap_block(g);
  // dot_pixels' taps and sums
  const int64_t dots = reads_weight_rows(g) ? t.nr / 8 * (kc + g.out_channels_per_group()) : 0;
  if (reads_in_place(g)) return ((kPixelBlock / t.nr + 1) * t.nr * kc + dots) * 4;  // + packed tiles
  return l.band ? l.image * 4 : dots * 4;
}

bool conv2d_direct_supports(const Conv2dGeometry&) { return true; }

bool conv2d_direct_reads_in_place(const Conv2dGeometry& g) { return reads_in_place(g); }

int64_t conv2d_direct_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile t = direct_tile(g);
  const Layout l = layout(g, t);
  const int64_t planes = reads_in_place(g) ? 0 : planes_floats(g, l);
  // packed weights (kept between calls), column planes, tap offsets
  return (l.a_floats + planes) * 4 + g.groups * l.K * 8;
}

namespace {

// One call: the layout, the packed weights, the tap offsets and where the tiles read, then the
// work (bands of large images, or blocks of pixel tiles times groups of weight panels).
class Direct {
 public:
  Direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
         const OutputStage& stage)
      : out_(out),
        in_(in),
        bias_(bias),
        g_(g),
        stage_(stage),
        tile_(direct_tile(g)),
        wide_(tile_.nr != kernels::packed_gemm_tile().nr),
        MR_(tile_.mr),
        NR_(tile_.nr),
        l_(layout(g, tile_)),
        in_place_(reads_in_place(g)),
        P_(g.OH * g.OW),
        OCG_(g.out_channels_per_group()),
        panels_(g.groups * l_.panels) {
    const int64_t planes_size = in_place_ ? 0 : planes_floats(g, l_), taps = g.groups * l_.K;     // all groups' taps
    planes_ = workspace(static_cast<size_t>(planes_size + taps * 2) * 4, WorkspaceSlot::Shared);  // [N][image]
    offset_ = reinterpret_cast<int64_t*>(planes_ + planes_size);  // [groups * K], 64-byte aligned
    base_ = in_place_ ? in : planes_;                             // what the tiles read
    image_ = in_place_ ? g.C * g.H * g.W : l_.image;              // floats per image there
    pack_weights(weight);
    KC_ = tap_block(g);
    const int64_t k_blocks = (l_.K + KC_ - 1) / KC_;
    // Stream the output when it is large, written in one K block (later blocks read it back) and
    // has no stage to apply (stream_output).
    first_ = k_blocks == 1 && stream_output(g, stage) ? kernels::Store::Stream : kernels::Store::Write;
    // Weight panels are visited in blocks of at most kPanelBlockRows output channels
    // (conv2d_algorithms.hpp): every pixel tile of an item meets a block before the next block is
    // read, so the weights stream from L3 once per item instead of once per tile (a 2048-channel
    // layer has 2 MiB of them per K block), and a block's slice of a K block (at most 48 x 256
    // floats, 48 KiB; 192 KiB for a pointwise layer's 1024 taps) stays in L2.
    panel_block_ = std::max<int64_t>(1, kPanelBlockRows / MR_);
  }

  void run() {
    fill_offsets();
    if (l_.band) {
      run_bands();
    } else {
      if (!in_place_) copy_planes();
      run_blocks();
    }
  }

 private:
  // Weight panels of every group, numbered group by group: panel gp holds output channels
  // oc0(gp) .. of group gp / l.panels (the last panel of a group may be short).
  int64_t oc0(int64_t gp) const { return gp / l_.panels * OCG_ + gp % l_.panels * MR_; }
  int rows(int64_t gp) const { return static_cast<int>(std::min(MR_, OCG_ - gp % l_.panels * MR_)); }

  // The work parallel_for weighs, counted as conv2d_work counts a convolution's, but of what this
  // kernel does: the multiply-adds of whole MR-row panels (a layer of 1 output channel runs 6 rows)
  // and the column planes' copy (kStreamedFloatWork per float, as every float the layer streams).
  // Counted as the layer's multiply-adds, 8 x 260 -> 2 2x2 stride 3 at 12x17 copied its planes on
  // one thread and 8 x 21 -> 1 5x5 at 15x15 ran all on one: 1.8x and 1.2-1.8x slower than now.
  int64_t planes_work() const {
    const int64_t planes = in_place_ ? 0
                           : l_.band ? g_.N * ((g_.OH + l_.band - 1) / l_.band) * l_.image
                                     : g_.N * l_.image;
    return kStreamedFloatWork * (g_.N * g_.C * g_.H * g_.W + planes);
  }
  int64_t work() const {
    const int64_t pixels = g_.N * g_.OH * g_.OW;
    return 2 * panels_ * MR_ * l_.K * pixels + planes_work() +
           kStreamedFloatWork * (g_.OC * l_.K + g_.N * g_.OC * g_.OH * g_.OW);
  }
  kernels::Store store(int64_t k0) const { return k0 > 0 ? kernels::Store::Accumulate : first_; }
  const float* panel(int64_t gp, int64_t k0) const {
    return lda_ ? a_packed_ + oc0(gp) * l_.K + k0 : a_packed_ + gp * MR_ * l_.K + k0 * MR_;
  }
  const int64_t* taps(int64_t gp, int64_t k0) const { return offset_ + gp / l_.panels * l_.K + k0; }
  const float* bias(int64_t gp) const { return bias_ ? bias_ + oc0(gp) : nullptr; }

  // The weight [OC, K] packed into [OC/MR][K][MR], a panel per item; kept between calls while the
  // weight stays the same (prepared_weights.hpp; docs/PERFORMANCE.md, "Packed weights kept").
  void pack_weights(const float* weight) {
    const int64_t MR = MR_, K = l_.K;
    if (reads_weight_rows(g_)) {  // the tiles read the caller's rows: nothing packed, kept or compared
      a_packed_ = weight, lda_ = K;
      return;
    }
    packed_ = prepared_weight(
        PreparedTag{kDirectPacked, MR, g_.OC, K, g_.groups}, weight, g_.OC * K, l_.a_floats, [&](float* a) {
          parallel_for(
              panels_,
              [&](int64_t gp, int) {
                kernels::pack_a(a + gp * MR * K, weight + oc0(gp) * K, rows(gp), K, K, static_cast<int>(MR));
              },
              g_.OC * K * 4);
        });
    a_packed_ = packed_->prepared.data();
  }

  // Tap k = (c, kh, kw) of a group reads its input at base + offset[k] (+ the pixel).
  void fill_offsets() {
    if (in_place_) {  // a pointwise layer reads its input's channels
      for (int64_t c = 0; c < g_.C; ++c) offset_[c] = c * g_.H * g_.W;
      return;
    }
    // Channel 0's taps: tap (kh, kw) reads its row phase's plane kw, shifted by its row shift;
    // channel c's are those plus c channels' planes.
    const int64_t taps = g_.KH * g_.KW, channel = l_.planes * l_.plane;
    for (int64_t kh = 0; kh < g_.KH; ++kh) {
      const int64_t dh = kh * g_.dilation_h;
      const int64_t row = phase_slot(g_, dh % g_.stride_h) * g_.KW * l_.plane + dh / g_.stride_h * g_.OW;
      for (int64_t kw = 0; kw < g_.KW; ++kw) offset_[kh * g_.KW + kw] = row + kw * l_.plane;
    }
    for (int64_t c = 1; c < g_.C; ++c) {
      for (int64_t t = 0; t < taps; ++t) offset_[c * taps + t] = offset_[t] + c * channel;
    }
  }

  // All images' column planes [N][C, read phases, KW, PH, OW], before the tiles: an item per
  // channel of an image (the last channel also zeroes the image's slack).
  void copy_planes() {
    parallel_for(
        g_.N * g_.C,
        [&](int64_t item, int) {
          const int64_t n = item / g_.C, c = item % g_.C;
          copy_channel(planes_ + n * l_.image + c * l_.planes * l_.plane, in_ + (n * g_.C + c) * g_.H * g_.W, g_, l_,
                       0);
          if (c == g_.C - 1) zero_slack(planes_ + n * l_.image, g_, l_);
        },
        planes_work());
  }

  // Taps [k0, k0 + kc) of panels [ap0, ap1) for the pixel tile whose tap-0 inputs start at src and
  // whose output (cols pixels) starts at dst, in output channel 0. A group's taps read its channels.
  void tile_panels(int64_t k0, int64_t kc, int64_t ap0, int64_t ap1, const float* src, float* dst, int cols) const {
    for (int64_t gp0 = ap0; gp0 < ap1;) {  // a group's panels in one call (its taps read its channels)
      const int64_t gp1 = std::min(ap1, (gp0 / l_.panels + 1) * l_.panels), m = oc0(gp1 - 1) + rows(gp1 - 1) - oc0(gp0);
      if (wide_) {
        kernels::direct_wide_panels(kc, panel(gp0, k0), lda_, m, src, taps(gp0, k0), dst + oc0(gp0) * P_, P_, cols,
                                    store(k0), bias(gp0));
      } else {
        kernels::direct_micro_panels(kc, panel(gp0, k0), MR_ * l_.K, m, src, taps(gp0, k0), dst + oc0(gp0) * P_, P_,
                                     cols, store(k0), bias(gp0), lda_);
      }
      gp0 = gp1;
    }
  }

  // Work items are bands of an image: copy the band's planes into this thread's buffer, then all
  // its tiles and panels.
  void run_bands() {
    const int64_t bands = (g_.OH + l_.band - 1) / l_.band;
    parallel_for(
        g_.N * bands,
        [&](int64_t item, int) {
          const int64_t n = item / bands, oh0 = item % bands * l_.band;
          const int64_t pixels = std::min(l_.band, g_.OH - oh0) * g_.OW;
          float* buffer = workspace(static_cast<size_t>(l_.image) * 4);
          for (int64_t c = 0; c < g_.C; ++c) {
            copy_channel(buffer + c * l_.planes * l_.plane, in_ + (n * g_.C + c) * g_.H * g_.W, g_, l_, oh0);
          }
          zero_slack(buffer, g_, l_);
          float* dst = out_ + n * g_.OC * P_ + oh0 * g_.OW;
          for (int64_t k0 = 0; k0 < l_.K; k0 += KC_) {
            for (int64_t pb = 0; pb < panels_; pb += panel_block_) {
              for (int64_t f = 0; f < pixels; f += NR_) {
                tile_panels(k0, std::min(KC_, l_.K - k0), pb, std::min(panels_, pb + panel_block_), buffer + f, dst + f,
                            static_cast<int>(std::min(NR_, pixels - f)));
              }
            }
          }
          if (first_ == kernels::Store::Stream) return kernels::stream_fence();
          apply_stage(out_, stage_, g_, 0, g_.OC, n * P_ + oh0 * g_.OW, n * P_ + oh0 * g_.OW + pixels);
        },
        work());
  }

  // How the (pixel tiles x weight panels) grid is cut into work items.
  struct Cut {
    int64_t sequences, length;  // runs of pixels tiled on their own, and pixels in each
    int64_t tiles, blocks;      // pixel tiles per sequence, blocks of them per sequence
    int64_t groups;             // groups of weight panels
    bool panels_outer;          // items numbered panel group by panel group (else pixel block by block)

    // Block b's pixels [f0, f1) and group q's panels [ap0, ap1) of `panels`: as equal as whole
    // tiles and panels make them (13 tiles in 4 blocks: 3, 3, 3, 4; not 4, 4, 4, 1, which left a
    // thread idle for a quarter of the time on 2 threads).
    std::pair<int64_t, int64_t> pixels(int64_t b, int64_t nr) const {
      return {b * tiles / blocks * nr, std::min(length, (b + 1) * tiles / blocks * nr)};
    }
    std::pair<int64_t, int64_t> panels(int64_t q, int64_t panels) const {
      return {q * panels / groups, (q + 1) * panels / groups};
    }
  };

  // Work items are blocks of up to kPixelBlock pixels times groups of output-channel panels. With
  // at least NR pixels per image, the pixels of all images form one sequence and a tile may
  // straddle two images (direct_micro_split), so no tile is cut short at an image's end (a 14x14
  // output is 6 1/8 tiles of 32); smaller images are tiled one
  // by one. Blocks hold equal numbers of tiles, give or take one; small layers have blocks down to
  // one tile, and layers with few blocks are also split by output channels (into groups of equal
  // numbers of panels, give or take one), so that every thread gets a share. (Tiles sit at the
  // same places and run the same operations however the items fall: the split does not change a
  // bit. Whether the items run on one thread or more is parallel_for's choice, by the layer's
  // FLOPs.)
  //
  // Every pixel block reads all the weights of its panel group and every panel group all the
  // planes of its pixel blocks (a layer read in place packs its pixel block's tiles again per
  // group), so the weights are streamed once per pixel block and the planes once per panel group.
  // Of the cuts into `blocks` pixel blocks (at most kPixelBlock pixels each) and `groups` panel
  // groups with at least an item per thread, take the one that streams the fewest bytes times its
  // imbalance (items of nearly equal work: the longest thread runs ceil(items / threads) of them):
  // a layer with many more weights than input (the last stages of a network) is cut by output
  // channels, an early layer by pixels. Until 2026-12-07 every layer was cut for 8 threads, whatever
  // the threads: on 2 threads an item then streamed and packed the input 2-4 times over. Old and new
  // cut alternated per call (Xeon of model 207, AVX-512, 2 threads): 832 -> 128 1x1 at 7x7 1.16-1.22x
  // faster, 512 -> 64 at 13x13 1.22x, 480 -> 96 and 1024 -> 256 at 14x14 1.08x, 2048 -> 512 at 7x7
  // batch 8 1.07x; on 40 random direct layers (1x1, 3x3, 5x5, stride 1 and 2, batch 1-8, 7x7 to
  // 56x56) 1.05x in geomean on 2 threads and on 1, 13 faster by 3% or more, 2 slower (0.90x: 2 x
  // 64 -> 16 1x1 at 14x14, whose two items' packed tiles outgrow L1; 0.93x: 96 -> 512 5x5 at
  // 17x17, whose weights each thread now streams whole from L3; docs/PERFORMANCE.md).
  Cut cut(int threads) const {
    Cut c{};
    const bool flat = P_ >= NR_;
    c.sequences = flat ? 1 : g_.N;
    c.length = flat ? g_.N * P_ : P_;
    const int64_t tiles = c.tiles = (c.length + NR_ - 1) / NR_;
    const int64_t fewest = (tiles * NR_ + kPixelBlock - 1) / kPixelBlock;
    const double weights = static_cast<double>(panels_) * MR_ * l_.K, inputs = static_cast<double>(g_.N) * P_ * l_.K;
    // parallel_for's static schedule gives each thread a run of consecutive items. Numbered pixel
    // block by block, a thread meets a share of the pixels and all the weights; panel group by
    // group, a share of the weights and all the pixels: the latter where the weights are the
    // larger. Both orders forced side by side on 40 random direct layers (batch 1-8, 16-2048
    // channels, 1x1 and 3x3, stride 1 and 2; Sapphire Rapids, AVX-512, 2 threads, eager): where
    // the weights are the larger (15 layers), panel groups first ran 1.03x faster in geomean, none
    // slower by 5% (1 x 832 -> 128 1x1 at 7x7 73 -> 62 us, 1 x 1024 -> 256 at 14x14 466 -> 396);
    // where the pixels are, 1.00x with 5 of 25 slower by 5-11%. Checked on 40 more: 1.04x over 17
    // (none slower by 5%, up to 1.19x faster) and 0.995x over 23. (docs/PERFORMANCE.md)
    c.panels_outer = weights >= inputs;
    const int64_t T = std::max(1, threads), seq = c.sequences;
    double best = -1;
    int64_t best_b = 1, best_q = 1;
    const int64_t most_groups = std::min<int64_t>(panels_, std::max<int64_t>(T, 8));
    for (int64_t q = 1; q <= most_groups; ++q) {
      const int64_t least = std::max(fewest, std::min(tiles, (T + seq * q - 1) / (seq * q)));
      for (int64_t b = least; b <= std::min(tiles, least + T - 1); ++b) {
        const int64_t items = seq * b * q;
        if (items < T && (b < tiles || q < most_groups)) continue;  // more items to be had
        // Items of nearly equal work (blocks of tiles and groups of panels give or take one): the
        // longest thread runs ceil(items / T) of them.
        const int64_t longest = (items + T - 1) / T;
        const double balance = static_cast<double>(longest * T) / static_cast<double>(items);
        const double cost = (static_cast<double>(b) * weights + static_cast<double>(q) * inputs) * balance;
        if (best < 0 || cost < best * 0.999) best = cost, best_b = b, best_q = q;
      }
    }
    c.blocks = best_b, c.groups = best_q;
    return c;
  }

  void run_blocks() {
    const Cut c = cut(work() < serial_work() ? 1 : get_num_threads());  // as parallel_for decides
    parallel_for(
        c.sequences * c.blocks * c.groups,
        [&](int64_t item, int) {
          const int64_t seq = item / (c.blocks * c.groups);
          const int64_t within = item % (c.blocks * c.groups);
          const auto [f0, f1] = c.pixels(c.panels_outer ? within % c.blocks : within / c.groups, NR_);
          const auto [ap0, ap1] = c.panels(c.panels_outer ? within / c.blocks : within % c.groups, panels_);
          const int64_t tiled = f1 - dot_tail(f0, f1);  // pixels [tiled, f1) by dot products
          if (in_place_) {
            run_packed(seq, f0, tiled, f1, ap0, ap1);
          } else {
            float* taps_of_dots = workspace(static_cast<size_t>(dots_floats(f1 - tiled)) * 4);
            for (int64_t k0 = 0; k0 < l_.K; k0 += KC_) {
              const int64_t kc = std::min(KC_, l_.K - k0);
              for (int64_t pb0 = ap0; pb0 < ap1; pb0 += panel_block_) {
                const int64_t pb1 = std::min(ap1, pb0 + panel_block_);
                for (int64_t f = f0; f < tiled; f += NR_)
                  run_tile(seq + f / P_, f % P_, std::min(NR_, tiled - f), k0, kc, pb0, pb1);
                dot_pixels(taps_of_dots, seq, tiled, f1, k0, kc, pb0, pb1);
              }
            }
          }
          if (first_ == kernels::Store::Stream) return kernels::stream_fence();
          const int64_t last = ap1 - 1;  // panels [ap0, ap1) hold channels [oc0(ap0), oc0(last) + rows(last))
          apply_stage(out_, stage_, g_, oc0(ap0), oc0(last) + rows(last), seq * P_ + f0, seq * P_ + f1);
        },
        work());
  }

  // The last pixels of an item's range [f0, f1) (its first at a whole tile) that dot_pixels computes.
  int64_t dot_tail(int64_t f0, int64_t f1) const { return lda_ > 0 ? dot_tail_pixels(f1 - f0, NR_, l_.K) : 0; }

  // Scratch floats of dot_pixels for m pixels: their taps of a K block, and their sums.
  int64_t dots_floats(int64_t m) const { return m * (KC_ + OCG_); }

  // Taps [k0, k0 + kc) of panels [pb0, pb1) for pixels [f0, f1) of sequence seq (dot_tail's), while
  // the panels' rows are in cache from the tiles: each pixel's taps gathered into a row (scratch:
  // dots_floats), their products with the group's weight rows stored as a tile stores its sums (the
  // first K block's plus the bias, a later block's added to what is there).
  void dot_pixels(float* scratch, int64_t seq, int64_t f0, int64_t f1, int64_t k0, int64_t kc, int64_t pb0,
                  int64_t pb1) const {
    const int64_t m = f1 - f0;
    float* y = scratch + m * kc;
    for (int64_t gp0 = pb0; gp0 < pb1 && m > 0;) {  // a group's panels at a time (its taps read its channels)
      const int64_t gp1 = std::min(pb1, (gp0 / l_.panels + 1) * l_.panels);
      const int64_t oc = oc0(gp0), count = oc0(gp1 - 1) + rows(gp1 - 1) - oc;
      const int64_t* off = taps(gp0, k0);
      for (int64_t j = 0; j < m; ++j) {
        const float* src = base_ + (seq + (f0 + j) / P_) * image_ + (f0 + j) % P_;
        for (int64_t k = 0; k < kc; ++k) scratch[j * kc + k] = src[off[k]];
      }
      kernels::dot_rows(count, kc, a_packed_ + oc * l_.K + k0, l_.K, scratch, kc, m, y, count);
      for (int64_t j = 0; j < m; ++j) {
        float* dst = out_ + ((seq + (f0 + j) / P_) * g_.OC + oc) * P_ + (f0 + j) % P_;
        for (int64_t o = 0; o < count; ++o) {
          const float sum = y[j * count + o];
          dst[o * P_] = k0 > 0 ? dst[o * P_] + sum : bias_ ? sum + bias_[oc + o] : sum;
        }
      }
      gp0 = gp1;
    }
  }

  // A pointwise layer's item: pixels [f0, f1) of sequence seq, panels [ap0, ap1). Per K block and
  // group, the item's pixels of each tap row are packed into [tile][kc][NR] (pack_tiles), then every
  // panel of the group meets every tile from the packed copy. Read in place instead, a tile's rows
  // were KC runs of NR floats scattered over the channels, one or two cache lines each (where P is
  // not a multiple of 16): a tile's rows filled L1, the A panels streaming past evicted them, and
  // each panel missed them again (8 x 512 -> 1024 at 14x14 on AVX2: 1.2x faster packed; 8 x 256
  // -> 64 at 56x56: 1.5x). Packing also takes tiles cut short or straddling two images, so a layer
  // of any pixel count is read in place, without the column planes' copy.
  // Pixels [f1, dots_end) are dot_tail's (dot_pixels, as each panel block's tiles end).
  void run_packed(int64_t seq, int64_t f0, int64_t f1, int64_t dots_end, int64_t ap0, int64_t ap1) const {
    const int64_t tiles = (f1 - f0 + NR_ - 1) / NR_;
    float* packed = workspace(static_cast<size_t>(tiles * KC_ * NR_ + dots_floats(dots_end - f1)) * 4);
    float* taps_of_dots = packed + tiles * KC_ * NR_;
    for (int64_t k0 = 0; k0 < l_.K; k0 += KC_) {
      const int64_t kc = std::min(KC_, l_.K - k0);
      for (int64_t gp0 = ap0; gp0 < ap1;) {  // the panels of one group at a time: its taps read its channels
        const int64_t gp1 = std::min(ap1, (gp0 / l_.panels + 1) * l_.panels);
        pack_tiles(packed, taps(gp0, k0), kc, seq, f0, f1);
        for (int64_t pb0 = gp0; pb0 < gp1; pb0 += panel_block_) {
          const int64_t pb1 = std::min(gp1, pb0 + panel_block_);
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t f = f0 + t * NR_;
            packed_tile(packed + t * kc * NR_, kc, k0, pb0, pb1, seq + f / P_, f % P_, std::min(NR_, f1 - f));
          }
          dot_pixels(taps_of_dots, seq, f1, dots_end, k0, kc, pb0, pb1);
        }
        gp0 = gp1;
      }
    }
  }

  // Taps off[0 .. kc) of the tiles of pixels [f0, f1) into dst [tile][kc][NR]. Tap by tap, tile by
  // tile: each tap's reads run along its input channel. Lanes past the item's last pixel are zero;
  // a tile straddling images n and n + 1 takes its last lanes from the first pixels of n + 1.
  void pack_tiles(float* dst, const int64_t* off, int64_t kc, int64_t seq, int64_t f0, int64_t f1) const {
    struct Source {
      const float *first, *second;  // tap 0's first pixel in image n, and in image n + 1 (straddling)
      int64_t cols, split;          // pixels in the tile, of them in image n
    };
    constexpr int64_t kMostTiles = 64;
    const int64_t NR = NR_, tiles = (f1 - f0 + NR - 1) / NR;
    TT_EXPECTS(tiles <= kMostTiles);
    std::array<Source, kMostTiles> source;
    bool whole = true;  // every tile NR pixels of one image
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t f = f0 + t * NR, n = seq + f / P_, q = f % P_, cols = std::min(NR, f1 - f);
      source[t] = {base_ + n * image_ + q, base_ + (n + 1) * image_, cols, std::min(cols, P_ - q)};
      whole = whole && source[t].split == NR;
    }
    for (int64_t k = 0; k < kc; ++k) {
      float* row = dst + k * NR;
      if (whole && NR == 16) {
        for (int64_t t = 0; t < tiles; ++t) __builtin_memcpy(row + t * kc * NR, source[t].first + off[k], 64);
        continue;
      }
      for (int64_t t = 0; t < tiles; ++t, row += kc * NR) {
        const Source& s = source[t];
        if (s.split == NR) {
          std::copy_n(s.first + off[k], NR, row);
          continue;
        }
        std::copy_n(s.first + off[k], s.split, row);
        if (s.cols > s.split) std::copy_n(s.second + off[k], s.cols - s.split, row + s.split);
        std::fill(row + s.cols, row + NR, 0.0f);
      }
    }
  }

  // Panels [pb0, pb1) against the packed tile b (taps [k0, k0 + kc)) of `cols` pixels from pixel q
  // of image n, all panels in one call (a call per panel cost up to 1.5x with few taps: 8 x 16 -> 64
  // at 54x54, AVX2). A tile straddling images n and n + 1 goes through a buffer: lanes [0, P - q)
  // to image n, the rest to the first pixels of n + 1.
  void packed_tile(const float* b, int64_t kc, int64_t k0, int64_t pb0, int64_t pb1, int64_t n, int64_t q,
                   int64_t cols) const {
    if (q + cols <= P_) {  // panels [pb0, pb1) lie in one group: rows oc0(pb0) .. of the output, in one call
      const int64_t last = pb1 - 1, m = oc0(last) + rows(last) - oc0(pb0);
      float* c = out_ + (n * g_.OC + oc0(pb0)) * P_ + q;
      if (wide_) {
        return kernels::gemm_wide_panels(kc, panel(pb0, k0), lda_, m, b, c, P_, static_cast<int>(cols), store(k0),
                                         bias(pb0));
      }
      kernels::gemm_micro_panels(kc, panel(pb0, k0), MR_ * l_.K, m, b, c, P_, static_cast<int>(cols), store(k0),
                                 bias(pb0), lda_);
      return;
    }
    TT_EXPECTS(!wide_);
    const int64_t split = P_ - q;
    alignas(64) float tile[12 * 32];  // MR x NR, at most
    TT_EXPECTS(MR_ * NR_ <= 12 * 32);
    for (int64_t gp = pb0; gp < pb1; ++gp) {
      kernels::gemm_micro(kc, panel(gp, k0), b, tile, NR_, rows(gp), static_cast<int>(cols), kernels::Store::Write,
                          k0 == 0 ? bias(gp) : nullptr, lda_);
      for (int r = 0; r < rows(gp); ++r) {
        const float* src = tile + r * NR_;
        float* first = out_ + (n * g_.OC + oc0(gp) + r) * P_ + q;
        float* second = out_ + ((n + 1) * g_.OC + oc0(gp) + r) * P_;
        for (int64_t j = 0; j < cols; ++j) {
          float& dst = j < split ? first[j] : second[j - split];
          dst = k0 == 0 ? src[j] : dst + src[j];
        }
      }
    }
  }

  // The tile of `cols` pixels from pixel q of image n (reaching into image n + 1 when it straddles
  // the two), taps [k0, k0 + kc) of panels [pb0, pb1).
  void run_tile(int64_t n, int64_t q, int64_t cols, int64_t k0, int64_t kc, int64_t pb0, int64_t pb1) const {
    if (q + cols <= P_) {
      return tile_panels(k0, kc, pb0, pb1, base_ + n * image_ + q, out_ + n * g_.OC * P_ + q, static_cast<int>(cols));
    }
    TT_EXPECTS(!wide_);
    for (int64_t gp = pb0; gp < pb1; ++gp) {
      kernels::direct_micro_split(kc, panel(gp, k0), base_ + n * image_ + q, base_ + (n + 1) * image_,
                                  static_cast<int>(P_ - q), taps(gp, k0), out_ + (n * g_.OC + oc0(gp)) * P_ + q,
                                  out_ + ((n + 1) * g_.OC + oc0(gp)) * P_, P_, rows(gp), static_cast<int>(cols),
                                  store(k0), bias(gp), lda_);
    }
  }

  float* out_;
  const float* in_;
  const float* bias_;
  const Conv2dGeometry& g_;
  const OutputStage& stage_;
  const kernels::GemmTile tile_;
  const bool wide_;  // the wide tile (direct_tile): its kernels, never a tile straddling two images
  const int64_t MR_, NR_;
  const Layout l_;
  const bool in_place_;
  const int64_t P_, OCG_, panels_;
  float* planes_ = nullptr;
  int64_t* offset_ = nullptr;
  const float* base_ = nullptr;
  int64_t image_ = 0;
  std::shared_ptr<const PreparedWeight> packed_;
  const float* a_packed_ = nullptr;  // the packed panels, or the weight's rows (lda_ > 0)
  int64_t lda_ = 0;
  int64_t KC_ = 0, panel_block_ = 0;
  kernels::Store first_ = kernels::Store::Write;
};

}  // namespace

void conv2d_direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                   const OutputStage& stage) {
  Direct(out, in, weight, bias, g, stage).run();
}

}  // namespace tinytorch::ops

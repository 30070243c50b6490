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
// into the output. The copies cost KW * s_h / s_w input sizes per call: small next to the
// C * KH * KW multiply-adds per output that read them.
// A 1x1 stride-1 layer without padding needs no planes: the input's channels are its planes, read
// in place (no copy at all).
// Groups: the column planes are per channel whatever the groups, and a group's weight panels
// read its own channels' taps (offsets group * K ..), so a grouped layer is groups dense layers
// sharing the copies and the tiles; a group's last panel may be short of MR rows.
// Large images are done in bands of output rows: a work item copies the rows of the column planes
// its band needs into its own buffer (up to 512 KiB, so it stays in L2) and runs the band's tiles
// on them, instead of all images' planes being copied out to L3 first and read back (the 7x7
// stride-2 stem's planes are 17 MB). The bands' planes overlap by the kernel's row shift, which
// costs a little more copying; a tile computes the same operations either way (bit-identical).
// Best where im2col costs most relative to the GEMM: few channels, small images, batch 1, strides,
// and 1x1 layers read in place.
#include <algorithm>
#include <numeric>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"

namespace tinytorch::ops {
namespace {

constexpr int64_t kPixelBlock = 256;  // output pixels per work item (a multiple of NR)
// Taps per K block: a pixel tile's input rows for the block (KC x NR floats, at most 32 KiB) stay
// in L1 while every weight panel of the item meets them, the panels' slices of the block
// (OC x KC floats) stream from L2. Without the blocking a 128-channel 3x3 layer streams 1.2 MiB of
// weights from L3 for every 32 pixels.
constexpr int64_t kTapBlock = 256;
constexpr int64_t kPanelBlockBytes = 256 << 10;  // weight panels (one K block of them) per block: half of L2

// 1x1, stride 1, no padding: the column plane of a channel would be a copy of the channel, so the
// input is read in place (offset k * P for channel k) - when every pixel tile is whole, since a
// tile reads NR floats from its start whatever its width (the last one would run past the input).
bool reads_in_place(const Conv2dGeometry& g, int64_t NR) {  // (NR: the micro-kernel's tile width)
  const int64_t P = g.OH * g.OW;
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W && P >= NR && g.N * P % NR == 0;
}

// A band's column planes should stay in L2 (1 MiB here, shared with the weights and the tiles).
// Measured on the stem, 2 threads: 128 KiB 4.03 ms, 256 KiB 3.80-3.89, 512 KiB 3.73-3.74,
// 1 MiB 3.84; all images' planes at once 3.98-4.01.
constexpr int64_t kBandBytes = 512 << 10;

struct Layout {
  int64_t band;              // output rows per band; 0: no bands (all images' planes at once)
  int64_t PH, plane, image;  // column-plane rows; floats per plane (PH * OW rounded up to 16); per image
                             // (with bands: per band, and `image` is one band's buffer)
  int64_t planes;            // s_h * KW column planes per channel
  int64_t K, panels;         // taps and MR-row weight panels per group
  int64_t a_floats;          // packed weight floats
};

Layout layout(const Conv2dGeometry& g, const kernels::GemmTile& t) {
  Layout l{};
  const int64_t shift = (g.KH - 1) * g.dilation_h / g.stride_h;  // the largest tap's row shift
  l.planes = g.stride_h * g.KW;
  l.K = g.channels_per_group() * g.KH * g.KW;
  l.panels = (g.out_channels_per_group() + t.mr - 1) / t.mr;
  l.a_floats = (g.groups * l.panels * t.mr * l.K + 15) / 16 * 16;
  auto plane_floats = [&](int64_t rows) { return ((rows + shift) * g.OW + 15) / 16 * 16; };
  // Bands when one image's planes outgrow kBandBytes: of equal heights up to the most rows that
  // fit, and at least 8 bands in all (work items for up to 8 threads); a multiple of `unit` rows,
  // so that each band's pixels fill whole tiles (64-byte aligned stores, no tile cut short but the
  // image's last).
  const int64_t unit = t.nr / std::gcd(g.OW, t.nr);
  auto band_bytes = [&](int64_t rows) { return g.C * l.planes * plane_floats(rows) * 4; };
  if (!reads_in_place(g, t.nr) && band_bytes(g.OH) > kBandBytes && unit < g.OH) {
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
// plane, to dst [s_h, KW][plane] (zeroed first: padding and each plane's rounding).
void copy_channel(float* dst, const float* channel, const Conv2dGeometry& g, const Layout& l, int64_t oh0) {
  std::fill_n(dst, l.planes * l.plane, 0.0f);
  for (int64_t a = 0; a < g.stride_h; ++a) {
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

}  // namespace

int64_t conv2d_direct_workspace_bytes(const Conv2dGeometry& g) {
  const Layout l = layout(g, kernels::packed_gemm_tile());
  return l.band ? l.image * 4 : 0;
}

bool conv2d_direct_supports(const Conv2dGeometry&) { return true; }

bool conv2d_direct_reads_in_place(const Conv2dGeometry& g) { return reads_in_place(g, kernels::packed_gemm_tile().nr); }

int64_t conv2d_direct_shared_bytes(const Conv2dGeometry& g) {
  const kernels::GemmTile& t = kernels::packed_gemm_tile();
  const Layout l = layout(g, t);
  const int64_t planes = reads_in_place(g, t.nr) ? 0 : planes_floats(g, l);
  // packed weights (kept between calls), column planes, tap offsets
  return (l.a_floats + planes) * 4 + g.groups * l.K * 8;
}

void conv2d_direct(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const int64_t MR = tile.mr, NR = tile.nr;
  const Layout l = layout(g, tile);
  const bool in_place = reads_in_place(g, NR);
  const int64_t planes_size = in_place ? 0 : planes_floats(g, l);
  const int64_t OCG = g.out_channels_per_group(), taps = g.groups * l.K;  // taps of all groups
  float* planes = workspace(static_cast<size_t>(planes_size + taps * 2) * 4, WorkspaceSlot::Shared);  // [N][image]
  auto* offset = reinterpret_cast<int64_t*>(planes + planes_size);  // [groups * K], 64-byte aligned
  // Weight panels of every group, numbered group by group: panel gp holds output channels
  // oc0(gp) .. of group gp / l.panels (the last panel of a group may be short).
  const int64_t panels = g.groups * l.panels;
  auto oc0 = [&](int64_t gp) { return gp / l.panels * OCG + gp % l.panels * MR; };
  auto rows = [&](int64_t gp) { return static_cast<int>(std::min(MR, OCG - gp % l.panels * MR)); };
  // The weight [OC, K] packed into [OC/MR][K][MR], a panel per item; kept between calls while the
  // weight stays the same (prepared_weights.hpp): at batch 1 packing was 6% of a small layer.
  const auto packed = prepared_weight(
      PreparedTag{kDirectPacked, MR, g.OC, l.K, g.groups}, weight, g.OC * l.K, l.a_floats, [&](float* a) {
        parallel_for(
            panels,
            [&](int64_t gp, int) {
              kernels::pack_a(a + gp * MR * l.K, weight + oc0(gp) * l.K, rows(gp), l.K, l.K, static_cast<int>(MR));
            },
            g.OC * l.K * 4);
      });
  const float* a_packed = packed->prepared.data();
  const float* base = in_place ? in : planes;                  // what the tiles read
  const int64_t image = in_place ? g.C * g.H * g.W : l.image;  // floats per image there
  int64_t k = 0;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t kh = 0, dh = 0; kh < g.KH; ++kh, dh += g.dilation_h) {
      const int64_t row = ((c * g.stride_h + dh % g.stride_h) * g.KW) * l.plane + dh / g.stride_h * g.OW;
      for (int64_t kw = 0; kw < g.KW; ++kw) offset[k++] = in_place ? c * g.H * g.W : row + kw * l.plane;
    }
  }
  const bool copies = !in_place && !l.band;  // all images' planes, before the tiles
  // Each item copies a channel of an image into its column planes [N][C, s_h, KW, PH, OW] (the
  // last channel also zeroes the image's slack).
  if (copies) {
    parallel_for(
        g.N * g.C,
        [&](int64_t item, int) {
          const int64_t n = item / g.C, c = item % g.C;
          copy_channel(planes + n * l.image + c * l.planes * l.plane, in + (n * g.C + c) * g.H * g.W, g, l, 0);
          if (c == g.C - 1) zero_slack(planes + n * l.image, g, l);
        },
        g.N * g.C * l.planes * l.plane);
  }

  const int64_t P = g.OH * g.OW;
  const int64_t k_blocks = (l.K + kTapBlock - 1) / kTapBlock, KC = (l.K + k_blocks - 1) / k_blocks;
  // Stream the output when it is large and written in one K block (later blocks read it back).
  const kernels::Store first = k_blocks == 1 && stream_output(g) ? kernels::Store::Stream : kernels::Store::Write;
  auto store = [&](int64_t k0) { return k0 > 0 ? kernels::Store::Accumulate : first; };
  // Weight panels are visited in blocks whose K-block slices fit kPanelBlockBytes (L2): every pixel
  // tile of an item meets a block before the next block is read, so the weights stream from L3 once
  // per item instead of once per tile (a 2048-channel layer has 2 MiB of them per K block).
  const int64_t panel_block = std::max<int64_t>(1, kPanelBlockBytes / (MR * KC * 4));
  // Taps [k0, k0 + kc) of panels [ap0, ap1) for the pixel tile whose tap-0 inputs start at src and
  // whose output (cols pixels) starts at dst, in output channel 0. A group's taps read its channels.
  auto tile_panels = [&](int64_t k0, int64_t kc, int64_t ap0, int64_t ap1, const float* src, float* dst, int cols) {
    for (int64_t gp = ap0; gp < ap1; ++gp) {
      kernels::direct_micro(kc, a_packed + gp * MR * l.K + k0 * MR, src, offset + gp / l.panels * l.K + k0,
                            dst + oc0(gp) * P, P, rows(gp), cols, store(k0), bias ? bias + oc0(gp) : nullptr);
    }
  };

  if (l.band) {
    // Work items are bands of an image: copy the band's planes into this thread's buffer, then all
    // its tiles and panels.
    const int64_t bands = (g.OH + l.band - 1) / l.band;
    parallel_for(
        g.N * bands,
        [&](int64_t item, int) {
          const int64_t n = item / bands, oh0 = item % bands * l.band;
          const int64_t pixels = std::min(l.band, g.OH - oh0) * g.OW;
          float* buffer = workspace(static_cast<size_t>(l.image) * 4);
          for (int64_t c = 0; c < g.C; ++c) {
            copy_channel(buffer + c * l.planes * l.plane, in + (n * g.C + c) * g.H * g.W, g, l, oh0);
          }
          zero_slack(buffer, g, l);
          float* dst = out + n * g.OC * P + oh0 * g.OW;
          for (int64_t k0 = 0; k0 < l.K; k0 += KC) {
            for (int64_t pb = 0; pb < panels; pb += panel_block) {
              for (int64_t f = 0; f < pixels; f += NR) {
                tile_panels(k0, std::min(KC, l.K - k0), pb, std::min(panels, pb + panel_block), buffer + f, dst + f,
                            static_cast<int>(std::min(NR, pixels - f)));
              }
            }
          }
          if (first == kernels::Store::Stream) kernels::stream_fence();
        },
        g.flops());
    return;
  }

  // Work items are blocks of up to kPixelBlock pixels times groups of output-channel panels. With
  // at least NR pixels per image, the pixels of all images form one sequence and a tile may
  // straddle two images (direct_micro_split), so no tile is cut short at an image's end (a 14x14
  // output is 6 1/8 tiles of 32: 12% of the work would be padding); smaller images are tiled one
  // by one. Blocks hold equal numbers of tiles; small layers have blocks down to one tile, and
  // layers with few blocks are also split by output channels, so that up to 8 threads get equal
  // shares. (Tiles sit at the same places and run the same operations however the items fall: the
  // split does not change a bit. Whether the items run on one thread or more is parallel_for's
  // choice, by the layer's FLOPs.)
  const bool flat = P >= NR;
  const int64_t sequences = flat ? 1 : g.N, length = flat ? g.N * P : P;
  const int64_t tiles = (length + NR - 1) / NR;
  // How to cut the (pixel tiles x weight panels) grid into at least 8 items: every pixel block
  // reads all the weights of its panel group and every panel group all the planes of its pixel
  // blocks, so the weights are streamed once per pixel block and the planes once per panel group.
  // Of the cuts into `most` pixel blocks (at most kPixelBlock pixels each) and `groups` panel
  // groups, take the one that streams the fewest bytes: a layer with many more weights than input
  // (the last stages of a network) is cut by output channels, an early layer by pixels.
  const int64_t fewest = (tiles * NR + kPixelBlock - 1) / kPixelBlock;
  const double weights = static_cast<double>(panels) * MR * l.K, inputs = static_cast<double>(g.N) * P * l.K;
  int64_t most = std::max(fewest, std::min(tiles, (8 + sequences - 1) / sequences)), groups = 1;
  double best = static_cast<double>(most) * weights + inputs;
  for (int64_t q = 2; q <= std::min<int64_t>(panels, 8); ++q) {
    const int64_t b = std::max(fewest, std::min(tiles, (8 + sequences * q - 1) / (sequences * q)));
    const double bytes = static_cast<double>(b) * weights + static_cast<double>(q) * inputs;
    if (bytes < best) best = bytes, most = b, groups = q;
  }
  const int64_t block = (tiles + most - 1) / most * NR;  // pixels per block, a multiple of NR
  const int64_t blocks = (length + block - 1) / block;
  groups = std::max(groups, std::min(panels, (8 + sequences * blocks - 1) / (sequences * blocks)));
  const int64_t group = (panels + groups - 1) / groups;  // panels per group
  parallel_for(
      sequences * blocks * groups,
      [&](int64_t item, int) {
        const int64_t seq = item / (blocks * groups), f0 = item / groups % blocks * block;
        const int64_t f1 = std::min(length, f0 + block);
        const int64_t ap0 = item % groups * group, ap1 = std::min(panels, ap0 + group);
        for (int64_t k0 = 0; k0 < l.K; k0 += KC) {
          const int64_t kc = std::min(KC, l.K - k0);
          for (int64_t pb0 = ap0; pb0 < ap1; pb0 += panel_block) {
            const int64_t pb1 = std::min(ap1, pb0 + panel_block);
            for (int64_t f = f0; f < f1; f += NR) {
              const int64_t n = seq + f / P, q = f % P, cols = std::min(NR, f1 - f);
              if (q + cols <= P) {
                tile_panels(k0, kc, pb0, pb1, base + n * image + q, out + n * g.OC * P + q, static_cast<int>(cols));
                continue;
              }
              for (int64_t gp = pb0; gp < pb1; ++gp) {
                kernels::direct_micro_split(kc, a_packed + gp * MR * l.K + k0 * MR, base + n * image + q,
                                            base + (n + 1) * image, static_cast<int>(P - q),
                                            offset + gp / l.panels * l.K + k0, out + (n * g.OC + oc0(gp)) * P + q,
                                            out + ((n + 1) * g.OC + oc0(gp)) * P, P, rows(gp), static_cast<int>(cols),
                                            store(k0), bias ? bias + oc0(gp) : nullptr);
              }
            }
          }
        }
        if (first == kernels::Store::Stream) kernels::stream_fence();
      },
      g.flops());
}

}  // namespace tinytorch::ops

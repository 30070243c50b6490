// Convolution in the channel-blocked layout: a tensor [N, C, H, W] held as [N, ceil(C/B), H, W, B],
// B consecutive channels of a pixel in one vector (B = 8 with AVX2, 16 with AVX-512), the last
// block's lanes past C padded. The graph runtime keeps the activations of a network in it from one
// convolution to the next (src/onnx/optimize.cpp, "blocked layout"): a pointwise or dense layer
// then multiplies a broadcast input value by a vector of B output channels' weights, a depthwise
// layer multiplies whole vectors, at any image width and stride, with no transposes in between.
//
// The lanes of a block past C ("padding lanes") hold finite values the consumers ignore: a
// convolution's weights for them are zero, and leaving the layout drops them. A convolution writes
// activation(bias + residual) there from zero weights and bias, so they stay finite.
//
// Pure functions on raw pointers (as conv2d.hpp): they never allocate, throw or start threads. The
// reference is the plain convolution (conv2d_forward_reference) on the layout's plain form.
#pragma once

#include <cstdint>

#include "kernels/activation.hpp"

namespace tinytorch::kernels {

// One blocked convolution: groups 1 (a dense or pointwise layer, input blocked or plain), or
// depthwise (groups == C == OC, input blocked).
struct BlockedConv {
  int64_t N, C, H, W;  // the input: [N, ceil(C/B), H, W, B] when in_blocked, else [N, C, H, W]
  int64_t OC, KH, KW;  // the weight [OC, C, KH, KW] (depthwise: [C, 1, KH, KW])
  int64_t OH, OW;      // the output [N, ceil(OC/B), OH, OW, B]
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t pad_top, pad_left;  // bottom/right padding is whatever OH/OW imply
  bool in_blocked = true;
  bool depthwise = false;
  // Floats from one channel block's plane to the next, of a blocked input and of the output (0:
  // the whole image's, H * W * B and OH * OW * B). A band of rows of a larger tensor then reads or
  // writes in place: an item of a pointwise layer and the depthwise one after it, fused
  // (ops/conv2d_blocked.cpp), runs both on a few rows at a time.
  int64_t in_plane = 0, out_plane = 0;

  int64_t flops() const { return 2 * N * OC * OH * OW * (depthwise ? 1 : C) * KH * KW; }
};

// The lanes per block of the kernels this process runs (cpu_isa()).
int64_t blocked_lanes();

// The planes' strides (BlockedConv::in_plane, out_plane) in floats at `lanes`.
static constexpr int64_t blocked_in_plane(const BlockedConv& g, int64_t lanes) {
  return g.in_plane > 0 ? g.in_plane : g.H * g.W * lanes;
}
static constexpr int64_t blocked_out_plane(const BlockedConv& g, int64_t lanes) {
  return g.out_plane > 0 ? g.out_plane : g.OH * g.OW * lanes;
}

// Shared by the kernels and the op layer (internal linkage: the ISA files include them too).
// Blocks of `channels` at `lanes`; the input blocks an item reads (a plain input is one);
// the input rows a band of `rows` output rows reads and the columns a row's window spans, padding
// included; the scratch floats holding an item's KH * KW tap offsets (int64, rounded to 64 bytes).
static constexpr int64_t blocked_blocks(int64_t channels, int64_t lanes) { return (channels + lanes - 1) / lanes; }
static constexpr int64_t blocked_input_blocks(const BlockedConv& g, int64_t lanes) {
  return g.in_blocked ? blocked_blocks(g.C, lanes) : 1;
}
static constexpr int64_t blocked_band_rows(const BlockedConv& g, int64_t rows) {
  return (rows - 1) * g.stride_h + (g.KH - 1) * g.dilation_h + 1;
}
static constexpr int64_t blocked_band_cols(const BlockedConv& g) {
  return (g.OW - 1) * g.stride_w + (g.KW - 1) * g.dilation_w + 1;
}
static constexpr int64_t blocked_taps_floats(const BlockedConv& g) { return (g.KH * g.KW * 2 + 15) / 16 * 16; }
// A band split by phase (a strided dense layer on a blocked input, kernel.hpp's make_band): each
// phase's rows and columns; whether a window of k taps dilated by d at stride s reads phase p, and
// the phase's slot among those it reads (only those are stored; slot(s) is their count).
static constexpr int64_t blocked_split_rows(const BlockedConv& g, int64_t rows) {
  return (blocked_band_rows(g, rows) + g.stride_h - 1) / g.stride_h;
}
static constexpr int64_t blocked_split_cols(const BlockedConv& g) {
  return (blocked_band_cols(g) + g.stride_w - 1) / g.stride_w;
}
static constexpr bool blocked_phase_read(int64_t k, int64_t d, int64_t s, int64_t p) {
  for (int64_t i = 0; i < k; ++i) {
    if (i * d % s == p) return true;
  }
  return false;
}
static constexpr int64_t blocked_phase_slot(int64_t k, int64_t d, int64_t s, int64_t p) {
  int64_t slot = 0;
  for (int64_t q = 0; q < p; ++q) slot += blocked_phase_read(k, d, s, q) ? 1 : 0;
  return slot;
}
static constexpr int64_t blocked_split_phases(const BlockedConv& g) {
  return blocked_phase_slot(g.KH, g.dilation_h, g.stride_h, g.stride_h) *
         blocked_phase_slot(g.KW, g.dilation_w, g.stride_w, g.stride_w);
}
// The share of a dense layer's input pixels its band holds: the phases stored of a strided one's.
static constexpr double blocked_input_share(const BlockedConv& g) {
  return g.in_blocked && !g.depthwise
             ? static_cast<double>(blocked_split_phases(g)) / static_cast<double>(g.stride_h * g.stride_w)
             : 1.0;
}

// A dense convolution's output blocks go in weight panels, each computed by one register tile of
// its blocks times some pixels (12 accumulators of AVX2's 16 registers, 24 of AVX-512's 32).
// AVX2 (8 lanes): pairs of blocks (2 x 6 pixels), the last three together when the count is odd
// (3 x 4: a 24-channel layer reads its input once, not twice); AVX-512 (16 lanes): fours. Panel
// i of OB blocks is [blocked_panel_start(i), the next one's start or OB).
static constexpr int64_t blocked_panels(int64_t OB, int64_t lanes) {
  return lanes == 8 ? (OB < 2 ? 1 : OB / 2) : (OB + 3) / 4;
}
static constexpr int64_t blocked_panel_start(int64_t i, int64_t lanes) { return i * (lanes == 8 ? 2 : 4); }
static constexpr int64_t blocked_panel_end(int64_t i, int64_t OB, int64_t lanes) {
  return i + 1 < blocked_panels(OB, lanes) ? blocked_panel_start(i + 1, lanes) : OB;
}

// The packed weight's floats for `lanes`, and the packing: dense [panel][cb][tap][ci][block][lane]
// (ci < B for a blocked input, < C for a plain one), depthwise [cb][tap][lane]; zero past C and OC.
// Packed in units (a dense layer's panels, a depthwise layer's blocks) [first, last), each unit's
// part of dst independent of the others' (so that threads can share the work).
int64_t blocked_weight_floats(const BlockedConv& g, int64_t lanes);
int64_t blocked_weight_units(const BlockedConv& g, int64_t lanes);
void pack_blocked_weight(float* dst, const float* weight, const BlockedConv& g, int64_t lanes, int64_t first,
                         int64_t last);
// The bias [OC] padded to whole blocks (zeros when bias is nullptr): ceil(OC/B) * B floats.
void pack_blocked_bias(float* dst, const float* bias, const BlockedConv& g, int64_t lanes);

// Whether a depthwise item copies its band zero-padded (as a dense one does) rather than reading
// in place, where the columns whose window reaches the padding go pixel by pixel: when they are
// more than a quarter of a row (small images, large kernels) and the padded plane is small
// (32K floats, 128 KiB).
static inline bool depthwise_copies(const BlockedConv& g, int64_t lanes) {
  const int64_t rows = blocked_band_rows(g, g.OH), cols = blocked_band_cols(g);
  const int64_t lo = (g.pad_left + g.stride_w - 1) / g.stride_w;  // the first column inside, as kernel.hpp's
  const int64_t last = g.W - 1 + g.pad_left - (g.KW - 1) * g.dilation_w;
  const int64_t inside = last < 0 ? 0 : (last / g.stride_w + 1 < g.OW ? last / g.stride_w + 1 : g.OW) - lo;
  return g.depthwise && (g.OW - (inside > 0 ? inside : 0)) * 4 > g.OW && rows * cols * lanes <= 32 * 1024;
}

// The scratch one work item of output rows [oh0, oh1) needs, in floats (a dense layer's band copy,
// the tap offsets).
int64_t blocked_scratch_floats(const BlockedConv& g, int64_t rows, int64_t lanes);

// One work item: output rows [oh0, oh1) of image n, output blocks [ob0, ob1) (any range: a dense
// layer's tiles then cover the panels' blocks in it), from the packed weight and bias. Applies
// `stage` (residual laid out as the output) to what it wrote. scratch: blocked_scratch_floats(g,
// oh1 - oh0) floats.
void blocked_conv(float* out, const float* in, const float* packed_weight, const float* packed_bias,
                  const BlockedConv& g, int64_t n, int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1, float* scratch,
                  const OutputStage& stage);

// The same with the kernels of width 16 compiled for AVX2 (GCC vectors of two registers): lets an
// AVX2 machine's tests run the layout and indexing AVX-512 runs. Takes lanes 16 throughout.
void blocked_conv_wide_on_avx2(float* out, const float* in, const float* packed_weight, const float* packed_bias,
                               const BlockedConv& g, int64_t n, int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1,
                               float* scratch, const OutputStage& stage);

// Plain [C, P] (one image, P pixels) -> blocked [ceil(C/B), P, B], padding lanes zero; and back.
void to_blocked(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes);
void from_blocked(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes);
// The same for block cb of one image only (dst, src: the image's), so that threads share an image.
void to_blocked_block(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes, int64_t cb);
void from_blocked_block(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes, int64_t cb);

}  // namespace tinytorch::kernels

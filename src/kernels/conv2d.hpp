// Convolution kernels: pure functions on raw pointers and a geometry. They never allocate, throw or
// start threads; the op layer (src/ops/conv2d.cpp) validates the geometry before calling them.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tinytorch::kernels {

// Everything a conv kernel needs to know about one call, NCHW throughout.
struct Conv2dGeometry {
  int64_t N, C, H, W;  // input  [N, C, H, W]
  int64_t OC, KH, KW;  // weight [OC, C / groups, KH, KW]
  int64_t OH, OW;      // output [N, OC, OH, OW]
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;  // bottom/right padding is whatever OH/OW imply
  int64_t dilation_h, dilation_w;
  int64_t groups;

  int64_t channels_per_group() const { return C / groups; }
  int64_t out_channels_per_group() const { return OC / groups; }
  // Multiply-adds times two: the FLOP count every benchmark and analysis uses.
  int64_t flops() const { return 2 * N * OC * OH * OW * channels_per_group() * KH * KW; }
};

// The reference: a direct loop nest with double accumulation. Slow, obviously right, and the
// oracle every fast conv kernel is tested against.
// out [N, OC, OH, OW]; in [N, C, H, W]; weight [OC, C/groups, KH, KW]; bias [OC] or nullptr.
void conv2d_forward_reference(float* out, const float* in, const float* weight, const float* bias,
                              const Conv2dGeometry& g);

// The reference gradients, double accumulation. dy [N, OC, OH, OW] is the output's gradient.
// dx [N, C, H, W] = sum over the outputs each input pixel fed, of dy * weight.
void conv2d_backward_input_reference(float* dx, const float* dy, const float* weight, const Conv2dGeometry& g);
// dw [OC, C/groups, KH, KW] = sum over images and output pixels of dy * the input under the tap.
void conv2d_backward_weight_reference(float* dw, const float* dy, const float* in, const Conv2dGeometry& g);
// db [OC] = sum of dy over images and output pixels.
void conv2d_backward_bias_reference(float* db, const float* dy, const Conv2dGeometry& g);

// col2im, the adjoint of im2col_block over a whole image: adds col [CG*KH*KW, OH*OW] into
// dx [CG, H, W] (which the caller zeroes first).
void col2im_add(float* dx, const float* col, const Conv2dGeometry& g);

// Of n output positions j = 0 .. n - 1 whose input position is off + j * stride, those inside an
// input of size `size`: [first, last) (empty where none is). im2col, col2im and the depthwise
// weight gradient walk a row's valid columns with it instead of testing each.
struct Inside {
  int64_t first, last;
};
inline Inside inside(int64_t off, int64_t stride, int64_t size, int64_t n) {
  const int64_t first = off >= 0 ? 0 : std::min(n, (-off + stride - 1) / stride);
  const int64_t last = off > size - 1 ? first : std::clamp((size - 1 - off) / stride + 1, first, n);
  return {first, last};
}

// im2col for one image and group, for output pixels [p0, p0 + pb) of the OH*OW grid:
// in [CG, H, W] (the group's channels of one image) -> col [CG*KH*KW, pb], row (c, kh, kw),
// zeros where the window reads padding. The reference counterpart is the loop nest above: GEMM of
// the weight [OCG, CG*KH*KW] with col computes the same sums. Rows ld floats apart (0: pb), so that
// several images' columns can sit side by side. Rows k0 .. k0 + kc only (kc < 0: every row).
void im2col_block(float* col, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t pb, int64_t ld = 0,
                  int64_t k0 = 0, int64_t kc = -1);

// im2col straight into the packed-B panels of gemm_packed.hpp: rows k0 .. k0 + kc of the column
// matrix (row k = (c, kh, kw)) for output pixels [p0, p0 + np), as ceil(np / nr) panels of
// [kc][nr], zero past np. nr is a power of two.
void im2col_packed(float* dst, const float* in, const Conv2dGeometry& g, int64_t p0, int64_t np, int64_t k0, int64_t kc,
                   int nr);

// Depthwise, channel-blocked: vectors run across output channels, so every kernel size, stride,
// dilation and image width takes whole vectors. One call computes output
// rows [oh0, oh1) of depthwise_block_lanes() consecutive output channels from oc0 (fewer at the
// end of OC) of one image: out [OC, OH, OW] and in [C, H, W] are that image's, weight [OC, KH, KW].
// The input rows the band reads are copied zero-padded and interleaved by channel into `scratch`
// (depthwise_block_scratch_floats(g, oh1 - oh0) floats), and each output row is computed
// interleaved and then scattered to its planes.
int64_t depthwise_block_lanes();  // 16 with AVX-512, 8 with AVX2
int64_t depthwise_block_scratch_floats(const Conv2dGeometry& g, int64_t band_rows);
void conv2d_depthwise_block(float* out, const float* in, const float* weight, const float* bias, int64_t oc0,
                            int64_t oh0, int64_t oh1, float* scratch, const Conv2dGeometry& g);
// The weight gradient's part from output rows [oh0, oh1) of one image (dy [OC, OH, OW] and in
// [C, H, W] are that image's), for the same block of output channels, added to sums
// [C / groups][KH * KW][lanes] (lane j: output channel oc0 + j; lanes past OC get values never to
// be read). Any groups: lane j reads its own group's input channels. Same scratch.
void depthwise_weight_grad_block(float* sums, const float* dy, const float* in, int64_t oc0, int64_t oh0, int64_t oh1,
                                 float* scratch, const Conv2dGeometry& g);
// The input gradient by channel lanes: dx rows [ih0, ih1) of depthwise_block_lanes() consecutive
// input channels from ic0 (fewer at the end of C) of one image (dx [C, H, W], dy [OC, OH, OW]),
// weight [OC, C / groups, KH, KW], any groups, KH and KW at most 32: dy's rows interleaved by lane
// once per output channel of a group, each tap of each dx pixel a multiply-add of whole vectors.
// scratch: lanes_input_grad_scratch_floats(g, ih1 - ih0) floats.
int64_t lanes_input_grad_scratch_floats(const Conv2dGeometry& g, int64_t band_rows);
void lanes_input_grad_block(float* dx, const float* dy, const float* weight, int64_t ic0, int64_t ih0, int64_t ih1,
                            float* scratch, const Conv2dGeometry& g);

}  // namespace tinytorch::kernels

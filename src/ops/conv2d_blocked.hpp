// Convolution and the layout changes in the channel-blocked layout (kernels/blocked/blocked.hpp):
// tensors [N, ceil(C/B), H, W, B], B = blocked_lanes(). Inference only (no autograd node); the
// graph runtime's blocked nodes call these (src/onnx/optimize.cpp, "blocked layout").
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "kernels/activation.hpp"
#include "tinytorch/functional.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch::ops {

struct BlockedConvOptions {
  std::array<int64_t, 2> stride{1, 1}, dilation{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
  bool depthwise = false;                   // groups == C == OC (the weight [C, 1, KH, KW])
};

// out = epilogue(conv(input, weight) + bias + residual), blocked [N, ceil(OC/B), OH, OW, B].
// input: blocked (5-D, its channel count `channels`) or plain [N, C, H, W] (4-D; a dense layer
// only). weight [OC, C, KH, KW] (depthwise [C, 1, KH, KW]); bias [OC] or undefined; residual
// undefined or of the output's shape. Throws ShapeError on shapes that do not fit.
Tensor conv2d_blocked(const Tensor& input, int64_t channels, const Tensor& weight, const Tensor& bias,
                      const BlockedConvOptions& options, const kernels::Epilogue& epilogue, const Tensor& residual);

// A pointwise layer (weight [M, C, 1, 1], stride 1, no padding) on a blocked input, then a
// depthwise layer (weight [M, 1, KH, KW], dw_options) reading its output alone, as one call:
// epilogue(depthwise(pw_epilogue(pointwise(input) + pw_bias)) + dw_bias + residual). Where the
// middle tensor is large (fuses_pointwise_depthwise), each work item computes the pointwise rows
// its band of depthwise rows reads into a scratch that stays in L2, and the depthwise rows from
// there; the middle tensor (MobileNetV2's 6x expansion) is never written out. Elsewhere the two
// layers run one after the other. The same values either way, bit for bit.
Tensor conv2d_blocked_pointwise_depthwise(const Tensor& input, int64_t channels, const Tensor& pw_weight,
                                          const Tensor& pw_bias, const kernels::Epilogue& pw_epilogue,
                                          const Tensor& dw_weight, const Tensor& dw_bias,
                                          const BlockedConvOptions& dw_options, const kernels::Epilogue& epilogue,
                                          const Tensor& residual);
// Whether that call fuses for a middle tensor of this blocked shape.
bool fuses_pointwise_depthwise(const Shape& middle);

// The output shape conv2d_blocked gives (the same checks).
Shape conv2d_blocked_shape(const Tensor& input, int64_t channels, const Tensor& weight,
                           const BlockedConvOptions& options);

// The work items conv2d_blocked cuts this call into on `threads` threads: images x bands of output
// rows x ranges of output panels, at least one per thread where the layer has that many rows and
// panels (fewer would leave threads idle). (A call whose work parallel_for runs serially is cut
// for one thread.)
int64_t conv2d_blocked_work_items(const Tensor& input, int64_t channels, const Tensor& weight,
                                  const BlockedConvOptions& options, int threads);

// Plain [N, C, spatial...] -> blocked [N, ceil(C/B), spatial..., B] (padding lanes zero); and the
// blocked form of C channels back to plain.
Tensor to_blocked(const Tensor& x);
Tensor from_blocked(const Tensor& x, int64_t channels);
// to_blocked of x [n, C, spatial...] into images [first, first + n) of `out`, a contiguous blocked
// tensor of those channels and spatial shape.
void to_blocked_into(Tensor& out, int64_t first, const Tensor& x);

// The mean over each block's pixels: blocked [N, CB, H, W, B] -> [N, CB, 1, 1, B].
Tensor global_average_pool_blocked(const Tensor& x);

// x [N, CB, H, W, B] times scale [N, CB, 1, 1, B] (a squeeze-excitation gate), both blocked float32;
// undefined when the shapes are not these (the caller then multiplies with broadcasting).
Tensor scale_blocked(const Tensor& x, const Tensor& scale);

// Max and average pooling of a blocked tensor of `channels` channels (max_pool2d's and
// avg_pool2d's options, output sizes and rules), blocked in and out. Any B of 8 or 16 (the last
// dimension), so the tests run both widths on any machine (blocked_ops.cpp).
Tensor max_pool_blocked(const Tensor& x, int64_t channels, const MaxPool2dOptions& options);
Tensor avg_pool_blocked(const Tensor& x, int64_t channels, const AvgPool2dOptions& options);

// Blocked tensors of channels[i] channels joined along the channels: every input but the last must
// fill its blocks (channels a multiple of B), the last's padding lanes become the output's.
Tensor concat_blocked(const std::vector<Tensor>& xs, const std::vector<int64_t>& channels);

// x * scale[c] + shift[c] per channel c (an inference BatchNormalization), then max(0, .) when
// `relu`; blocked in and out.
Tensor channel_affine_blocked(const Tensor& x, int64_t channels, const std::vector<float>& scale,
                              const std::vector<float>& shift, bool relu);
// The same of concat_blocked(xs, channels), in one pass that never writes the concatenation
// (DenseNet's Concat -> BatchNormalization -> Relu before each layer).
Tensor concat_affine_blocked(const std::vector<Tensor>& xs, const std::vector<int64_t>& channels,
                             const std::vector<float>& scale, const std::vector<float>& shift, bool relu);

int64_t blocked_lanes();

}  // namespace tinytorch::ops

// Pooling kernels: pure functions on raw pointers and a geometry (see conv2d.hpp for the rules).
#pragma once

#include <algorithm>
#include <cstdint>

namespace tinytorch::kernels {

struct Pool2dGeometry {
  int64_t N, C, H, W;  // input  [N, C, H, W]
  int64_t OH, OW;      // output [N, C, OH, OW]
  int64_t KH, KW;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;  // max pooling only; 1 for average pooling
};

// One average-pooling window: the input rows [h0, h1) and columns [w0, w1) it sums, and the
// divisor: the window clipped to the padded input (count_include_pad) or to the input itself.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

inline AvgWindow avg_window(const Pool2dGeometry& g, int64_t oh, int64_t ow, bool count_include_pad) {
  int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  int64_t h1 = std::min(h0 + g.KH, g.H + g.pad_h), w1 = std::min(w0 + g.KW, g.W + g.pad_w);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H), w1 = std::min(w1, g.W);
  return {h0, h1, w0, w1, count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

// Max over each window, padding counts as -inf; NaN wins, as in PyTorch.
// out [N, C, OH, OW]; indices [N, C, OH, OW] (flat ih * W + iw, as PyTorch) or nullptr.
void maxpool2d_forward_reference(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g);

// Mean over each window clipped to the padded input; the divisor counts the padding or not.
void avgpool2d_forward_reference(float* out, const float* in, const Pool2dGeometry& g, bool count_include_pad);

}  // namespace tinytorch::kernels

namespace tinytorch::kernels {

// The fast pooling kernels: one [H, W] plane -> one [OH, OW] plane (the op layer threads over
// planes). maxpool2d_plane gives exactly the reference's values (same scan order, same NaN rule);
// avgpool2d_planes sums in float, within (KH*KW + 1) u of the reference's double sum.
// maxpool2d_plane writes the indices too (flat ih * W + iw of each maximum, as PyTorch), for
// backward; inference calls maxpool2d_planes.
void maxpool2d_plane(float* out, int64_t* indices, const float* in, const Pool2dGeometry& g);
// The same without indices for `planes` consecutive planes (small ones are folded together).
void maxpool2d_planes(float* out, const float* in, const Pool2dGeometry& g, int64_t planes);
void avgpool2d_planes(float* out, const float* in, const Pool2dGeometry& g, int64_t planes, bool count_include_pad);

// The mean of in[0 .. n) (n > 0), a global average pool's one plane: float sums over blocks of 256
// values in 8 lanes, the blocks added in double; within 40 u of the mean of |in| from the exact one.
float plane_mean(const float* in, int64_t n);

// Gradients of one plane; dx [H, W] is written whole. Max pooling routes each dy to the input
// that won (its saved index); average pooling spreads dy / divisor over the window.
void maxpool2d_backward_plane(float* dx, const float* dy, const int64_t* indices, const Pool2dGeometry& g);
void avgpool2d_backward_plane(float* dx, const float* dy, const Pool2dGeometry& g, bool count_include_pad);

}  // namespace tinytorch::kernels

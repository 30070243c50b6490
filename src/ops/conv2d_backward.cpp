// The convolution's gradients, fast paths (the references: kernels/reference/conv2d_reference.cpp).
//
// dx: for stride 1 the input gradient is itself a convolution (of dy with the weight flipped in
//     space and transposed in channels, padded by dilation*(k-1) - padding), so it runs on the
//     forward algorithms, Winograd included. Other strides: GEMM (weight^T x dy) then col2im.
// dw: per group, sum over images of dy [OCG, P] x col^T [P, K], as GEMMs. Images are cut into a
//     fixed number of chunks (never the thread count), each summed into its own partial, and the
//     partials are added in chunk order: the same bits on any number of threads.
// db: per channel, a double sum in a fixed order.
#include <algorithm>
#include <cstring>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blas.hpp"
#include "ops/conv2d.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {

void conv2d_backward_input(float* dx, const float* dy, const float* weight, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const int64_t span_h = g.dilation_h * (g.KH - 1), span_w = g.dilation_w * (g.KW - 1);
  const int64_t pad_bottom = (g.OH - 1) + span_h + 1 - g.H - g.pad_top;  // may be < 0: unused rows
  const int64_t pad_right = (g.OW - 1) + span_w + 1 - g.W - g.pad_left;
  const bool as_convolution = g.stride_h == 1 && g.stride_w == 1 && g.pad_top <= span_h && g.pad_left <= span_w &&
                              pad_bottom >= 0 && pad_bottom <= span_h && pad_right >= 0 && pad_right <= span_w;
  if (as_convolution) {
    // weight [OC, CG, KH, KW] -> flipped [C, OCG, KH, KW]: per group, channels swapped, taps reversed.
    Tensor flipped = Tensor::empty({g.C, OCG, g.KH, g.KW});
    float* f = flipped.data();
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t group = oc / OCG, ocg = oc % OCG;
      for (int64_t icg = 0; icg < CG; ++icg) {
        const float* src = weight + (oc * CG + icg) * g.KH * g.KW;
        float* dst = f + ((group * CG + icg) * OCG + ocg) * g.KH * g.KW;
        for (int64_t t = 0; t < g.KH * g.KW; ++t) dst[t] = src[g.KH * g.KW - 1 - t];
      }
    }
    Conv2dGeometry t = g;  // dy [N, OC, OH, OW] -> dx [N, C, H, W]
    t.C = g.OC, t.H = g.OH, t.W = g.OW;
    t.OC = g.C, t.OH = g.H, t.OW = g.W;
    t.pad_top = span_h - g.pad_top, t.pad_left = span_w - g.pad_left;
    conv2d_forward(dx, dy, f, nullptr, t);
    return;
  }
  // dcol [K, P] = weight_g^T [K, OCG] x dy [OCG, P], then col2im into dx, one (image, group) per item.
  parallel_for(
      g.N * g.groups,
      [&](int64_t item, int) {
        const int64_t n = item / g.groups, grp = item % g.groups;
        float* col = workspace(static_cast<size_t>(K * P) * sizeof(float));
        kernels::sgemm(true, false, K, P, OCG, 1.0f, weight + grp * OCG * K, K, dy + (n * g.OC + grp * OCG) * P, P,
                       0.0f, col, P);
        float* dst = dx + (n * g.C + grp * CG) * g.H * g.W;
        std::fill_n(dst, CG * g.H * g.W, 0.0f);
        kernels::col2im_add(dst, col, g);
      },
      2 * g.N * g.OC * P * K);
}

void conv2d_backward_weight(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group(), OCG = g.out_channels_per_group();
  const int64_t K = CG * g.KH * g.KW, P = g.OH * g.OW;
  const bool one_by_one = g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
                          g.pad_left == 0 && g.OH == g.H && g.OW == g.W;
  const int64_t chunks = std::min<int64_t>(g.N, 8), per_chunk = (g.N + chunks - 1) / chunks;
  const int64_t slab = g.OC * K;  // one chunk's partial dw [OC, K]
  float* partial = workspace(static_cast<size_t>(chunks * slab) * sizeof(float), WorkspaceSlot::Shared);
  parallel_for(
      chunks * g.groups,
      [&](int64_t item, int) {
        const int64_t chunk = item / g.groups, grp = item % g.groups;
        float* out = partial + chunk * slab + grp * OCG * K;  // [OCG, K]
        std::fill_n(out, OCG * K, 0.0f);
        float* col = one_by_one ? nullptr : workspace(static_cast<size_t>(K * P) * sizeof(float));
        for (int64_t n = chunk * per_chunk; n < std::min(g.N, (chunk + 1) * per_chunk); ++n) {
          const float* image = in + (n * g.C + grp * CG) * g.H * g.W;
          if (!one_by_one) kernels::im2col_block(col, image, g, 0, P);
          // [OCG, P] x [P, K] (col^T) += into [OCG, K]
          kernels::sgemm(false, true, OCG, K, P, 1.0f, dy + (n * g.OC + grp * OCG) * P, P, one_by_one ? image : col, P,
                         1.0f, out, K);
        }
      },
      g.flops());
  parallel_for(
      g.OC,
      [&](int64_t oc, int) {
        for (int64_t k = 0; k < K; ++k) {
          float sum = 0.0f;
          for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * slab + oc * K + k];
          dw[oc * K + k] = sum;
        }
      },
      g.OC * K * chunks);
}

void conv2d_backward_bias(float* db, const float* dy, const Conv2dGeometry& g) {
  const int64_t P = g.OH * g.OW;
  parallel_for(
      g.OC,
      [&](int64_t oc, int) {
        double sum = 0.0;
        for (int64_t n = 0; n < g.N; ++n) {
          const float* row = dy + (n * g.OC + oc) * P;
          for (int64_t p = 0; p < P; ++p) sum += row[p];
        }
        db[oc] = static_cast<float>(sum);
      },
      g.N * g.OC * P);
}

}  // namespace tinytorch::ops

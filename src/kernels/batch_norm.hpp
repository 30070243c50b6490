// Batch normalization's per-channel kernels, each with a plain reference beside it (double
// accumulation, one loop). x and dy are [N, C, HW]; a call works on channel c only, so the op
// (src/ops/normalization.cpp) runs channels in parallel. Pure functions: no allocation, no threads.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

struct BatchNormGeometry {
  int64_t N, C, HW;  // x: [N, C, HW]
};

struct ChannelMoments {
  double mean, var;  // var: biased (divided by N * HW), as the normalization uses it
};

// Mean and variance of channel c: 16 float partial sums per row, added in double (a fixed order,
// so the same bits every time); the variance from the deviations about the mean.
ChannelMoments batch_norm_moments(const float* x, int64_t c, const BatchNormGeometry& g);
ChannelMoments batch_norm_moments_reference(const float* x, int64_t c, const BatchNormGeometry& g);

// x_hat = (x - mean) * inv_std and y = gamma * x_hat + beta over channel c; x_hat may be nullptr
// (inference: y only, the same bits).
void batch_norm_normalize(float* y, float* x_hat, const float* x, int64_t c, const BatchNormGeometry& g, float mean,
                          float inv_std, float gamma, float beta);
void batch_norm_normalize_reference(float* y, float* x_hat, const float* x, int64_t c, const BatchNormGeometry& g,
                                    float mean, float inv_std, float gamma, float beta);

struct ChannelGradientSums {
  double dy, dy_xhat;  // sum(dy) and sum(dy * x_hat) over channel c: d beta and d gamma
};
ChannelGradientSums batch_norm_gradient_sums(const float* dy, const float* x_hat, int64_t c,
                                             const BatchNormGeometry& g);
ChannelGradientSums batch_norm_gradient_sums_reference(const float* dy, const float* x_hat, int64_t c,
                                                       const BatchNormGeometry& g);

// dx = k * (dy - mean_dy - x_hat * mean_dy_xhat) over channel c, k = gamma * inv_std (training;
// in evaluation mean_dy = mean_dy_xhat = 0).
void batch_norm_input_gradient(float* dx, const float* dy, const float* x_hat, int64_t c, const BatchNormGeometry& g,
                               float k, float mean_dy, float mean_dy_xhat);
void batch_norm_input_gradient_reference(float* dx, const float* dy, const float* x_hat, int64_t c,
                                         const BatchNormGeometry& g, float k, float mean_dy, float mean_dy_xhat);

}  // namespace tinytorch::kernels

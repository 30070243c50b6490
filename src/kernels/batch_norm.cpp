// Batch normalization's per-channel kernels and their references (kernels/batch_norm.hpp).
#include "kernels/batch_norm.hpp"

#include "core/contract.hpp"

namespace tinytorch::kernels {
namespace {

// Sums of a row in 16 float lanes (the compiler vectorizes the inner loop), added up in double.
template <class Term>
double lane_sum(int64_t n, Term term) {
  float part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) part[k] += term(i + k);
  double total = 0.0;
  for (int k = 0; k < 16; ++k) total += part[k];
  for (; i < n; ++i) total += term(i);
  return total;
}

const float* row(const float* t, int64_t n, int64_t c, const BatchNormGeometry& g) { return t + (n * g.C + c) * g.HW; }

}  // namespace

ChannelMoments batch_norm_moments(const float* x, int64_t c, const BatchNormGeometry& g) {
  TT_EXPECTS(c >= 0 && c < g.C && g.N * g.HW >= 1);
  const double M = static_cast<double>(g.N * g.HW);
  double sum = 0.0, sq = 0.0;
  for (int64_t n = 0; n < g.N; ++n) {
    const float* r = row(x, n, c, g);
    sum += lane_sum(g.HW, [r](int64_t i) { return r[i]; });
  }
  const float mu = static_cast<float>(sum / M);
  for (int64_t n = 0; n < g.N; ++n) {
    const float* r = row(x, n, c, g);
    sq += lane_sum(g.HW, [r, mu](int64_t i) { return (r[i] - mu) * (r[i] - mu); });
  }
  return {sum / M, sq / M};
}

ChannelMoments batch_norm_moments_reference(const float* x, int64_t c, const BatchNormGeometry& g) {
  const double M = static_cast<double>(g.N * g.HW);
  double sum = 0.0, sq = 0.0;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t i = 0; i < g.HW; ++i) sum += row(x, n, c, g)[i];
  const double mean = sum / M;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t i = 0; i < g.HW; ++i) sq += (row(x, n, c, g)[i] - mean) * (row(x, n, c, g)[i] - mean);
  return {mean, sq / M};
}

void batch_norm_normalize(float* y, float* x_hat, const float* x, int64_t c, const BatchNormGeometry& g, float mean,
                          float inv_std, float gamma, float beta) {
  TT_EXPECTS(c >= 0 && c < g.C);
  for (int64_t n = 0; n < g.N; ++n) {
    const int64_t at = (n * g.C + c) * g.HW;
    if (x_hat == nullptr) {  // inference: the same two steps, x_hat kept in a register
      for (int64_t i = 0; i < g.HW; ++i) {
        const float xh = (x[at + i] - mean) * inv_std;
        y[at + i] = gamma * xh + beta;
      }
      continue;
    }
    for (int64_t i = 0; i < g.HW; ++i) {
      x_hat[at + i] = (x[at + i] - mean) * inv_std;
      y[at + i] = gamma * x_hat[at + i] + beta;
    }
  }
}

void batch_norm_normalize_reference(float* y, float* x_hat, const float* x, int64_t c, const BatchNormGeometry& g,
                                    float mean, float inv_std, float gamma, float beta) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t i = 0; i < g.HW; ++i) {
      const int64_t at = (n * g.C + c) * g.HW + i;
      const double xh = (static_cast<double>(x[at]) - mean) * inv_std;
      x_hat[at] = static_cast<float>(xh);
      y[at] = static_cast<float>(gamma * xh + beta);
    }
}

ChannelGradientSums batch_norm_gradient_sums(const float* dy, const float* x_hat, int64_t c,
                                             const BatchNormGeometry& g) {
  TT_EXPECTS(c >= 0 && c < g.C);
  ChannelGradientSums s{0.0, 0.0};
  for (int64_t n = 0; n < g.N; ++n) {
    const float *d = row(dy, n, c, g), *xh = row(x_hat, n, c, g);
    s.dy += lane_sum(g.HW, [d](int64_t i) { return d[i]; });
    s.dy_xhat += lane_sum(g.HW, [d, xh](int64_t i) { return d[i] * xh[i]; });
  }
  return s;
}

ChannelGradientSums batch_norm_gradient_sums_reference(const float* dy, const float* x_hat, int64_t c,
                                                       const BatchNormGeometry& g) {
  ChannelGradientSums s{0.0, 0.0};
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t i = 0; i < g.HW; ++i) {
      s.dy += row(dy, n, c, g)[i];
      s.dy_xhat += static_cast<double>(row(dy, n, c, g)[i]) * row(x_hat, n, c, g)[i];
    }
  return s;
}

void batch_norm_input_gradient(float* dx, const float* dy, const float* x_hat, int64_t c, const BatchNormGeometry& g,
                               float k, float mean_dy, float mean_dy_xhat) {
  TT_EXPECTS(c >= 0 && c < g.C);
  for (int64_t n = 0; n < g.N; ++n) {
    const int64_t at = (n * g.C + c) * g.HW;
    for (int64_t i = 0; i < g.HW; ++i) dx[at + i] = k * (dy[at + i] - mean_dy - x_hat[at + i] * mean_dy_xhat);
  }
}

void batch_norm_input_gradient_reference(float* dx, const float* dy, const float* x_hat, int64_t c,
                                         const BatchNormGeometry& g, float k, float mean_dy, float mean_dy_xhat) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t i = 0; i < g.HW; ++i) {
      const int64_t at = (n * g.C + c) * g.HW + i;
      dx[at] = static_cast<float>(static_cast<double>(k) * (static_cast<double>(dy[at]) - mean_dy -
                                                            static_cast<double>(x_hat[at]) * mean_dy_xhat));
    }
}

}  // namespace tinytorch::kernels

// The row kernels of log_softmax and cross-entropy, and their references (kernels/loss.hpp).
#include "kernels/loss.hpp"

#include <algorithm>
#include <cmath>

#include "core/contract.hpp"

namespace tinytorch::kernels {

double log_sum_exp(const float* row, int64_t K) {
  TT_EXPECTS(K >= 1);
  float m = row[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, row[k]);
  if (std::isinf(m)) return m;  // all -inf, or a +inf: the sum is dominated by it
  double s = 0.0;
  for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<double>(row[k]) - m);
  return m + std::log(s);
}

long double log_sum_exp_reference(const float* row, int64_t K) {
  long double m = row[0];
  for (int64_t k = 1; k < K; ++k) m = std::max<long double>(m, row[k]);
  if (std::isinf(m)) return m;
  long double s = 0.0L;
  for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<long double>(row[k]) - m);
  return m + std::log(s);
}

void log_softmax_row(float* out, const float* row, int64_t K) {
  const double lse = log_sum_exp(row, K);
  for (int64_t k = 0; k < K; ++k) out[k] = static_cast<float>(row[k] - lse);
}

void log_softmax_row_reference(float* out, const float* row, int64_t K) {
  const long double lse = log_sum_exp_reference(row, K);
  for (int64_t k = 0; k < K; ++k) out[k] = static_cast<float>(row[k] - lse);
}

double softmax_cross_entropy_row(float* probabilities, const float* row, int64_t K, int64_t target) {
  TT_EXPECTS(target >= 0 && target < K);
  const double lse = log_sum_exp(row, K);
  for (int64_t k = 0; k < K; ++k) probabilities[k] = static_cast<float>(std::exp(row[k] - lse));
  return lse - row[target];
}

double softmax_cross_entropy_row_reference(float* probabilities, const float* row, int64_t K, int64_t target) {
  const long double lse = log_sum_exp_reference(row, K);
  for (int64_t k = 0; k < K; ++k) probabilities[k] = static_cast<float>(std::exp(row[k] - lse));
  return static_cast<double>(lse - row[target]);
}

}  // namespace tinytorch::kernels

// log-softmax and softmax cross-entropy of one row of K logits, each beside a reference that
// computes in long double (src/ops/loss.cpp runs the rows and records the gradients).
// Pure functions: no allocation, no threads.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

// log(sum exp(row)), shifted by the row's maximum so that no exp overflows; an infinite maximum
// (all -inf, or a +inf) is returned as it is.
double log_sum_exp(const float* row, int64_t K);
long double log_sum_exp_reference(const float* row, int64_t K);

// out[k] = row[k] - log_sum_exp(row).
void log_softmax_row(float* out, const float* row, int64_t K);
void log_softmax_row_reference(float* out, const float* row, int64_t K);

// probabilities[k] = softmax(row)[k]; returns the row's loss, -log softmax(row)[target].
double softmax_cross_entropy_row(float* probabilities, const float* row, int64_t K, int64_t target);
double softmax_cross_entropy_row_reference(float* probabilities, const float* row, int64_t K, int64_t target);

}  // namespace tinytorch::kernels

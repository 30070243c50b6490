// Choosing a convolution algorithm for a call (conv2d_select.cpp): a forced one where it applies,
// else the autotuned one (timing every candidate on the call's own tensors the first time a shape
// is seen), else the heuristic.
#pragma once

#include <atomic>
#include <cstdint>

#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {

// A call's tensors, for autotuning on them.
struct Conv2dCall {
  float* out;
  const float *in, *w, *b;
};

// Without `call`, a new shape is not tuned: the heuristic answers. With TINYTORCH_VERBOSE=1 a call's
// choice (not a query's) is logged once per layer shape, with its reason.
Conv2dAlgorithm choose_conv2d_algorithm(const Conv2dGeometry& g, const Conv2dCall* call = nullptr);
// The heuristic alone; `reason`, when given, receives a short why.
Conv2dAlgorithm conv2d_heuristic(const Conv2dGeometry& g, const char** reason = nullptr);

// The process-wide settings the public API (conv2d_settings.cpp) writes.
std::atomic<Conv2dAlgorithm>& forced_conv2d_algorithm();  // Auto: none; TINYTORCH_CONV_ALGO at start-up
std::atomic<bool>& conv2d_autotune_enabled();             // TINYTORCH_CONV_AUTOTUNE=1 at start-up
void clear_conv2d_tuning();

// Inside a scope, on this thread, a shape met for the first time is autotuned even while
// autotuning is off: the graph runtime (src/onnx/model.cpp) opens one around a model's nodes, as a
// model runs its shapes many times. TINYTORCH_CONV_AUTOTUNE=0 turns this off too. Nests.
class Conv2dTuningScope {
 public:
  Conv2dTuningScope();
  ~Conv2dTuningScope();
  Conv2dTuningScope(const Conv2dTuningScope&) = delete;
  Conv2dTuningScope& operator=(const Conv2dTuningScope&) = delete;
};
int64_t conv2d_tuned_shapes();
// Counts clear_conv2d_tuning's calls: a shape tuned before a change of it may be timed again.
int64_t conv2d_tuning_generation();

}  // namespace tinytorch::ops

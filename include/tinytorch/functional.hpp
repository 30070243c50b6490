// The functional ops, like torch.nn.functional: stateless, validated, NCHW.
//
// Layers (Conv2D, MaxPool2D, Linear, ...) hold parameters and call these. Each op checks its
// inputs once, computes the output shape and hands raw pointers to a kernel (src/kernels/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tinytorch/math.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch {

// A (height, width) pair; an int means the same value for both, as in PyTorch.
struct Size2 {
  int64_t h = 1;
  int64_t w = 1;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): 3 means (3, 3)
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  bool operator==(const Size2&) const = default;
};

// Convolution padding: explicit (h, w) zeros on each side, or "valid" (none) or "same" (output
// as large as the input; stride 1 only; odd total padding puts the extra row/column at the
// bottom/right, as PyTorch does).
struct Padding2d {
  enum class Mode { Explicit, Valid, Same };
  Mode mode = Mode::Explicit;
  int64_t h = 0;
  int64_t w = 0;
  Padding2d(int64_t v) : h(v), w(v) {}         // NOLINT(google-explicit-constructor)
  Padding2d(int v) : Padding2d(int64_t{v}) {}  // NOLINT: makes 0 an int, not a null const char*
  Padding2d(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  Padding2d(Size2 s) : h(s.h), w(s.w) {}                         // NOLINT(google-explicit-constructor)
  Padding2d(const std::string& mode);                            // NOLINT: "valid" or "same"
  Padding2d(const char* mode) : Padding2d(std::string(mode)) {}  // NOLINT
  std::string to_string() const;                                 // "1", "(1, 2)", "'same'"
};

struct Conv2dOptions {
  Size2 stride = 1;
  Padding2d padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
};

// input [N, C, H, W] or [C, H, W]; weight [OC, C / groups, KH, KW]; bias [OC] or undefined.
// result [N, OC, OH, OW] (or [OC, OH, OW] for a 3D input).
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& options = {});

struct MaxPool2dOptions {
  Size2 kernel_size = 1;
  std::optional<Size2> stride;  // default: kernel_size
  Size2 padding = 0;            // implicit -inf, at most half the kernel
  Size2 dilation = 1;
  bool ceil_mode = false;
};

struct AvgPool2dOptions {
  Size2 kernel_size = 1;
  std::optional<Size2> stride;  // default: kernel_size
  Size2 padding = 0;            // implicit zeros, at most half the kernel
  bool ceil_mode = false;
  bool count_include_pad = true;
};

// input [N, C, H, W] or [C, H, W] -> [N, C, OH, OW] or [C, OH, OW], PyTorch's output-size rules.
Tensor max_pool2d(const Tensor& input, const MaxPool2dOptions& options);
Tensor avg_pool2d(const Tensor& input, const AvgPool2dOptions& options);

// input [..., IN]; weight [OUT, IN]; bias [OUT] or undefined -> [..., OUT]. 1D or 2D input.
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = {});

Tensor relu(const Tensor& input);
// PyTorch's activations of the same names, elementwise, differentiable (float32 results):
// x * min(max(x + 3, 0), 6) / 6, min(max(x + 3, 0), 6) / 6, and x * sigmoid(x).
Tensor hardswish(const Tensor& input);
Tensor hardsigmoid(const Tensor& input);
Tensor silu(const Tensor& input);

// Arithmetic, reductions and the rest of the tensor math: math.hpp.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(const Tensor& a, float factor) { return scale(a, factor); }
inline Tensor operator*(float factor, const Tensor& a) { return scale(a, factor); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// log_softmax over the last dimension of [N, K] (or [K]).
Tensor log_softmax(const Tensor& logits);
// Mean cross-entropy of logits [N, K] against class indices targets[N] in [0, K): fused
// log-softmax and negative log-likelihood, stable for any logit size. Shape ().
Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& targets);

// Batch normalization over (N, H, W) per channel of [N, C, H, W] (or [N, C]), as
// torch.nn.functional.batch_norm: in training, normalizes with the batch's statistics and moves
// the running ones by `momentum` (the variance unbiased); in eval, uses the running ones.
// weight/bias [C] may be undefined (no affine).
Tensor batch_norm(const Tensor& input, Tensor& running_mean, Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// Zeroes each element with probability p and scales the rest by 1 / (1 - p), from `gen`.
Tensor dropout(const Tensor& input, double p, bool training, Generator& gen = default_generator());

// Merges dims start_dim..end_dim into one (negative dims count from the end). The result is a
// view sharing storage. flatten(x) is 1-D, as in the seed.
Tensor flatten(const Tensor& input, int64_t start_dim = 0, int64_t end_dim = -1);

}  // namespace tinytorch

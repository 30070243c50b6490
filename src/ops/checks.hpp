// Shared argument checks for the ops: each throws ShapeError with a message that names the op,
// what it expected and what it was given.
#pragma once

#include <string>

#include "tinytorch/errors.hpp"
#include "tinytorch/functional.hpp"

namespace tinytorch::ops {

// The input as the float ops compute it: contiguous float32. int64 and bool inputs are converted
// (as NumPy would compute them), so integer images and masks go through conv and pooling.
inline Tensor dense_float(const Tensor& t) { return t.to(DType::Float32).contiguous(); }

// dense_float, or an undefined tensor for an absent one (a bias).
inline Tensor optional_dense_float(const Tensor& t) { return t.defined() ? dense_float(t) : Tensor(); }

inline std::string pair_to_string(Size2 s) {
  // Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "(" + std::to_string(...).
  std::string out = "(";
  out += std::to_string(s.h);
  out += ", ";
  out += std::to_string(s.w);
  out += ")";
  return out;
}

// Throws unless both halves of `value` are >= minimum.
inline void check_at_least(const char* op, const char* what, Size2 value, int64_t minimum) {
  if (value.h < minimum || value.w < minimum) {
    throw ShapeError(std::string(op) + ": " + what + " must be " +
                     (minimum == 1 ? "positive" : ">= " + std::to_string(minimum)) + ", got " + pair_to_string(value));
  }
}

// The largest kernel size, stride, padding, dilation or image side tinytorch accepts: with every
// one at most 2^30, all index arithmetic stays far inside int64.
constexpr int64_t kMaxExtent = int64_t{1} << 30;

inline void check_at_most(const char* op, const char* what, Size2 value, int64_t maximum = kMaxExtent) {
  if (value.h > maximum || value.w > maximum) {
    throw ShapeError(std::string(op) + ": " + what + " " + pair_to_string(value) + " exceeds the supported maximum " +
                     std::to_string(maximum));
  }
}

// Pooling hyper-parameters, as PyTorch checks them: positive kernel, stride and dilation, and
// padding between 0 and half the kernel.
inline void check_pool_options(const char* op, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation) {
  check_at_least(op, "kernel_size", kernel, 1);
  check_at_least(op, "stride", stride, 1);
  check_at_least(op, "padding", padding, 0);
  check_at_least(op, "dilation", dilation, 1);
  for (auto [what, v] : {std::pair{"kernel_size", kernel}, {"stride", stride}, {"dilation", dilation}}) {
    check_at_most(op, what, v);
  }
  if (padding.h > kernel.h / 2 || padding.w > kernel.w / 2) {
    throw ShapeError(std::string(op) + ": padding " + pair_to_string(padding) +
                     " must be at most half the kernel size " + pair_to_string(kernel));
  }
}

// The seed's check on an image input: (C, H, W), or (N, C, H, W) for a batch.
inline void check_image_input(const Tensor& input) {
  if (input.dim() != 3 && input.dim() != 4) {
    throw ShapeError("Expected 3D input (channels, height, width), got " + std::to_string(input.dim()) +
                     "D (a batch is 4D: (batch, channels, height, width))");
  }
}

// Views a (C, H, W) input as a batch of one: [C, H, W] -> [1, C, H, W]. The view is cut from the
// autograd graph: the op records its own node against the caller's tensor.
inline Tensor as_batch(const Tensor& input) {
  Tensor x = input.detach();
  if (input.dim() == 4) return x;
  Shape s = input.shape();
  s.insert(s.begin(), 1);
  return x.reshape(s);
}

// Drops the batch of one again when the input was (C, H, W): [1, C, H, W] -> [C, H, W].
inline Tensor match_batch(const Tensor& output, const Tensor& input) {
  if (input.dim() == 4) return output;
  Shape s = output.shape();
  s.erase(s.begin());
  return output.reshape(s);
}

}  // namespace tinytorch::ops

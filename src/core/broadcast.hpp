// NumPy's broadcasting rules, shared by copy_, expand and the elementwise ops: shapes are
// aligned at their last dims; a dim of size 1 (or a missing one) stretches to the other's size
// with stride 0.
#pragma once

#include <string>

#include "tinytorch/errors.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch {

// The shape a and b broadcast to; ShapeError naming `op` when they do not.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (x != y && x != 1 && y != 1) {
      throw ShapeError(std::string(op) + ": shapes " + shape_to_string(a) + " and " + shape_to_string(b) +
                       " cannot be broadcast together (dimension " + std::to_string(i) + ": " + std::to_string(x) +
                       " against " + std::to_string(y) + ")");
    }
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// t's strides for reading it as `shape` (which t must broadcast to): 0 on stretched dims.
inline Shape broadcast_strides(const Tensor& t, const Shape& shape, const char* op) {
  const Shape& from = t.shape();
  if (from.size() > shape.size()) {
    throw ShapeError(std::string(op) + ": shape " + shape_to_string(from) + " cannot be broadcast to " +
                     shape_to_string(shape));
  }
  const size_t lead = shape.size() - from.size();
  Shape strides(shape.size(), 0);
  for (size_t d = 0; d < from.size(); ++d) {
    if (from[d] == shape[lead + d]) {
      strides[lead + d] = t.strides()[d];
    } else if (from[d] != 1) {
      throw ShapeError(std::string(op) + ": shape " + shape_to_string(from) + " cannot be broadcast to " +
                       shape_to_string(shape));
    }
  }
  return strides;
}

}  // namespace tinytorch

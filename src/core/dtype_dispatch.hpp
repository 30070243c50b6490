// Runs a generic lambda with the C++ type of a DType: visit_dtype(t.dtype(), [&](auto tag) {
// using T = decltype(tag); ... }). One switch for every dtype-generic loop.
#pragma once

#include <cstdint>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Bool:
      return f(bool{});
    case DType::Int64:
      return f(int64_t{});
    case DType::Float32:
      break;
  }
  return f(float{});
}

}  // namespace tinytorch

// What the tensor-math ops share: dim normalisation, the float-input check, and the elementwise
// loops every arithmetic op runs (kernels/elementwise.hpp's runs, split over threads).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "core/broadcast.hpp"
#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/strided.hpp"
#include "ops/checks.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/math.hpp"

namespace tinytorch::ops {

// dim in [-ndim, ndim) -> [0, ndim); IndexError naming the op otherwise.
inline int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor takes dim 0 and -1, as in PyTorch
  if (dim < -n || dim >= n) {
    throw IndexError(std::string(op) + ": dimension " + std::to_string(dim) + " is out of range for a " +
                     std::to_string(ndim) + "-D tensor (expected it in [" + std::to_string(-n) + ", " +
                     std::to_string(n - 1) + "])");
  }
  return dim < 0 ? dim + n : dim;
}

// Below this many elements an elementwise loop runs on the calling thread.
constexpr int64_t kElementwiseGrain = int64_t{1} << 15;

// out = f(a, b) elementwise, a and b broadcast to out's shape; out is contiguous.
template <class TO, class TA, class TB, class F>
void binary_loop(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  const Shape& shape = out.shape();
  const Shape sa = broadcast_strides(a, shape, "elementwise"), sb = broadcast_strides(b, shape, "elementwise");
  TO* o = out.ptr_to_write<TO>();
  const TA* x = a.read_ptr<TA>();
  const TB* y = b.read_ptr<TB>();
  const auto loop = kernels::plan_strided_loop<3>(shape, {&out.strides(), &sa, &sb});
  parallel_chunks(
      out.numel(), [&](int64_t begin, int64_t end) { kernels::binary_runs(o, x, y, loop, begin, end, f); },
      kElementwiseGrain);
}

// out = f(a) elementwise over a of out's shape (any strides); out is contiguous.
template <class TO, class TA, class F>
void unary_loop(Tensor& out, const Tensor& a, F f) {
  TO* o = out.ptr_to_write<TO>();
  const TA* x = a.read_ptr<TA>();
  const auto loop = kernels::plan_strided_loop<2>(out.shape(), {&out.strides(), &a.strides()});
  parallel_chunks(
      out.numel(), [&](int64_t begin, int64_t end) { kernels::unary_runs(o, x, loop, begin, end, f); },
      kElementwiseGrain);
}

}  // namespace tinytorch::ops

namespace tinytorch {
// A view of t's storage with any geometry, no autograd record (tensor_views.cpp): for ops that
// build views their own way (the diagonal walk of index, say).
Tensor make_strided_view(const Tensor& t, Shape shape, Shape strides, int64_t offset);
}  // namespace tinytorch

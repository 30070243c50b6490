// The elementwise kernels' reference (elementwise.hpp): every multi-index of the shape in
// row-major order by an odometer over all dims, each operand's element found from its own strides;
// no dim merged, no run formed. Templates, like the kernels they check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tinytorch::kernels {

// Calls visit(offsets) for every index of shape, row-major; offsets[k] = sum_d index[d] * strides[k][d].
template <size_t N, class Visit>
void for_each_index_reference(const std::vector<int64_t>& shape, const std::vector<int64_t> (&strides)[N],
                              Visit visit) {
  for (int64_t s : shape) {
    if (s == 0) return;
  }
  std::vector<int64_t> index(shape.size(), 0);
  while (true) {
    int64_t offsets[N] = {};
    for (size_t k = 0; k < N; ++k) {
      for (size_t d = 0; d < shape.size(); ++d) offsets[k] += index[d] * strides[k][d];
    }
    visit(offsets);
    size_t d = shape.size();
    while (d > 0 && ++index[d - 1] == shape[d - 1]) index[--d] = 0;
    if (d == 0) return;
  }
}

template <class TO, class TA, class TB, class F>
void binary_reference(TO* o, const TA* x, const TB* y, const std::vector<int64_t>& shape,
                      const std::vector<int64_t> (&strides)[3], F f) {
  for_each_index_reference<3>(shape, strides, [&](const int64_t* off) { o[off[0]] = f(x[off[1]], y[off[2]]); });
}

template <class TO, class TA, class F>
void unary_reference(TO* o, const TA* x, const std::vector<int64_t>& shape, const std::vector<int64_t> (&strides)[2],
                     F f) {
  for_each_index_reference<2>(shape, strides, [&](const int64_t* off) { o[off[0]] = f(x[off[1]]); });
}

}  // namespace tinytorch::kernels

// Walking strided operands together: the loop under every elementwise op, copy and dtype
// conversion. A view (a transpose, a stepped slice, a broadcast with stride 0) is read where it
// lies, without a dense copy first.
//
// plan_strided_loop drops size-1 dims and merges neighbouring dims that are contiguous for every
// operand, so a dense tensor is one run and a transpose of a matrix is rows of a fixed stride.
// for_each_run then hands the body runs of the innermost dim, in row-major order, for any range
// of flat indices: the ops split [0, numel) over threads and each thread walks its own range.
// Pure functions: no allocation beyond the small index vectors, no exceptions, no threads.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tinytorch::kernels {

template <size_t N>
struct StridedLoop {
  std::vector<int64_t> sizes;                   // merged dims, outermost first; empty for one element
  std::array<std::vector<int64_t>, N> strides;  // per operand, in elements (0 where broadcast)
};

// shape: the common shape of the walk; strides[k]: operand k's strides for that shape.
template <size_t N>
StridedLoop<N> plan_strided_loop(const std::vector<int64_t>& shape,
                                 const std::array<const std::vector<int64_t>*, N>& strides) {
  StridedLoop<N> loop;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !loop.sizes.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = loop.strides[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      loop.sizes.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) loop.strides[k].back() = (*strides[k])[d];
    } else {
      loop.sizes.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) loop.strides[k].push_back((*strides[k])[d]);
    }
  }
  return loop;
}

// Calls body(offsets, count, inner) for consecutive runs covering the flat (row-major) indices
// [begin, end): operand k's elements are at offsets[k] + i * inner[k] for i in [0, count).
template <size_t N, class Body>
void for_each_run(const StridedLoop<N>& loop, int64_t begin, int64_t end, Body&& body) {
  if (begin >= end) return;  // also every walk of an empty tensor (a size-0 dim)
  std::array<int64_t, N> offsets{};
  std::array<int64_t, N> inner{};
  const size_t nd = loop.sizes.size();
  if (nd == 0) {
    body(offsets, int64_t{1}, inner);
    return;
  }
  std::vector<int64_t> index(nd);
  int64_t rest = begin;
  for (size_t d = nd; d-- > 0;) {
    index[d] = rest % loop.sizes[d];
    rest /= loop.sizes[d];
    for (size_t k = 0; k < N; ++k) offsets[k] += index[d] * loop.strides[k][d];
  }
  for (size_t k = 0; k < N; ++k) inner[k] = loop.strides[k][nd - 1];
  const int64_t row = loop.sizes[nd - 1];
  for (int64_t at = begin; at < end;) {
    const int64_t count = std::min(row - index[nd - 1], end - at);
    body(offsets, count, inner);
    at += count;
    index[nd - 1] += count;
    for (size_t k = 0; k < N; ++k) offsets[k] += count * inner[k];
    for (size_t d = nd - 1; d > 0 && index[d] == loop.sizes[d]; --d) {  // carry into the outer dims
      index[d] = 0;
      ++index[d - 1];
      for (size_t k = 0; k < N; ++k) offsets[k] += loop.strides[k][d - 1] - loop.sizes[d] * loop.strides[k][d];
    }
  }
}

}  // namespace tinytorch::kernels

// The elementwise kernels under every arithmetic, comparison and unary op: a function applied
// along the runs of a strided walk (strided.hpp), with the dense and broadcast-scalar runs as their
// own loops the compiler vectorises. The per-element functions are the ops' (src/ops/elementwise.cpp);
// the reference (reference/elementwise_reference.hpp) walks every index without merging dims or
// runs. Pure functions: no allocation, no threads.
#pragma once

#include <cstdint>

#include "kernels/strided.hpp"

namespace tinytorch::kernels {

// The sum of x[0 .. n) in double: eight running sums over every eighth element (independent
// chains: one chain waits for each add, 4 cycles an element), added in a fixed order.
inline double sum_run(const float* x, int64_t n) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) lane[k] += static_cast<double>(x[i + k]);
  }
  for (; i < n; ++i) lane[0] += static_cast<double>(x[i]);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// o = f(x, y) over the flat indices [begin, end) of loop (operands: o, x, y).
template <class TO, class TA, class TB, class F>
void binary_runs(TO* o, const TA* x, const TB* y, const StridedLoop<3>& loop, int64_t begin, int64_t end, F f) {
  for_each_run(loop, begin, end, [&](auto off, int64_t n, auto step) {
    TO* po = o + off[0];
    const TA* pa = x + off[1];
    const TB* pb = y + off[2];
    if (step[0] == 1 && step[1] == 1 && step[2] == 1) {  // dense
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    } else if (step[0] == 1 && step[1] == 1 && step[2] == 0) {  // y broadcast along the run
      const TB v = *pb;
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], v);
    } else if (step[0] == 1 && step[1] == 0 && step[2] == 1) {  // x broadcast along the run
      const TA v = *pa;
      for (int64_t i = 0; i < n; ++i) po[i] = f(v, pb[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * step[0]] = f(pa[i * step[1]], pb[i * step[2]]);
    }
  });
}

// o = f(x) over the flat indices [begin, end) of loop (operands: o, x).
template <class TO, class TA, class F>
void unary_runs(TO* o, const TA* x, const StridedLoop<2>& loop, int64_t begin, int64_t end, F f) {
  for_each_run(loop, begin, end, [&](auto off, int64_t n, auto step) {
    TO* po = o + off[0];
    const TA* pa = x + off[1];
    if (step[0] == 1 && step[1] == 1) {
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * step[0]] = f(pa[i * step[1]]);
    }
  });
}

}  // namespace tinytorch::kernels

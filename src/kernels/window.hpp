// Which taps of a window land inside the input, along one axis: shared by the pools and the
// blocked convolution's tiles.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

// Taps [lo, hi) of a window of k taps (dilation d) starting at `start` that land in [0, size);
// lo >= hi when none does.
inline void taps_inside(int64_t start, int64_t d, int64_t k, int64_t size, int64_t& lo, int64_t& hi) {
  if (d == 1) {  // no division (two per output column cost more than the taps)
    lo = start >= 0 ? 0 : -start;
    hi = size - start < k ? size - start : k;
    return;
  }
  lo = start >= 0 ? 0 : (-start + d - 1) / d;
  hi = start > size - 1 ? 0 : ((size - 1 - start) / d + 1 < k ? (size - 1 - start) / d + 1 : k);
}

}  // namespace tinytorch::kernels

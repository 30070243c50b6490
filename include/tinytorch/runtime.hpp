// Process-wide runtime settings: the number of threads tinytorch's kernels use.
#pragma once

namespace tinytorch {

// Threads for tinytorch's kernels (default: the number of cores). n must be >= 1.
void set_num_threads(int n);
int get_num_threads();

}  // namespace tinytorch

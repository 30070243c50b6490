// Scratch memory for kernels that need it (im2col columns, Winograd tiles): one growing,
// 64-byte-aligned buffer per calling thread, reused across calls, so steady-state calls do not
// allocate. Ops ask for the bytes they need; kernels receive plain pointers into it.
#pragma once

#include <cstddef>

namespace tinytorch {

// A buffer of at least `bytes`, valid until the next call from the same thread. Throws
// std::bad_alloc if it cannot grow.
float* workspace(size_t bytes);
size_t workspace_capacity();  // this thread's current buffer size in bytes

}  // namespace tinytorch

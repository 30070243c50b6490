// Scratch memory for kernels that need it (im2col columns, Winograd tiles): one growing,
// 64-byte-aligned buffer per calling thread, reused across calls, so steady-state calls do not
// allocate. Ops ask for the bytes they need; kernels receive plain pointers into it.
#pragma once

#include <cstddef>

namespace tinytorch {

// Two buffers per thread: Shared holds what an op prepares before its parallel region for all
// threads to read (packed weights); Scratch is each worker's own (the calling thread is a worker
// too, so it needs both).
enum class WorkspaceSlot { Shared, Scratch };

// A buffer of at least `bytes`, valid until the next call for the same slot from the same thread.
// Throws std::bad_alloc if it cannot grow.
float* workspace(size_t bytes, WorkspaceSlot slot = WorkspaceSlot::Scratch);
size_t workspace_capacity(WorkspaceSlot slot = WorkspaceSlot::Scratch);  // bytes held now
// Frees the calling thread's buffer for `slot` (the next call allocates again): what an algorithm
// that lost its autotuning grew would otherwise stay for the process's life.
void release_workspace(WorkspaceSlot slot);

}  // namespace tinytorch

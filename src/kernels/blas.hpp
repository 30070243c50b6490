// The GEMM tinytorch calls on OpenBLAS: its sgemm, pinned to one thread (tinytorch does the
// threading, see core/parallel.hpp), in row-major terms.
#pragma once

#include <cstdint>

namespace tinytorch::kernels {

// C[M, N] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [M, K] (A^T if trans_a), op(B)
// is [K, N] (B^T if trans_b).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The name of the kernels OpenBLAS runs ("SkylakeX", "Haswell", ...), after the check of the first
// call (blas.cpp, replace_fallback_kernels).
const char* blas_kernels();
// Whether OPENBLAS_CORETYPE was set before that check (the user's choice, left as it is).
bool blas_kernels_chosen_by_user();

}  // namespace tinytorch::kernels

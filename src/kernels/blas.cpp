// sgemm through OpenBLAS. OpenBLAS is told once to use one thread, so our parallel_for never
// runs two thread pools against each other and each GEMM's result does not depend on how many
// threads we use.
#include "kernels/blas.hpp"

#include <cblas.h>

#include <mutex>

namespace tinytorch::kernels {

namespace {
void pin_to_one_thread() {
  static std::once_flag pinned;
  std::call_once(pinned, [] { openblas_set_num_threads(1); });
}
}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  pin_to_one_thread();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace tinytorch::kernels

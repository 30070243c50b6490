// sgemm through OpenBLAS. OpenBLAS is told once to use one thread, so our parallel_for never
// runs two thread pools against each other and each GEMM's result does not depend on how many
// threads we use.
#include "kernels/blas.hpp"

#include <cblas.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "kernels/cpu.hpp"

// OpenBLAS's choice of kernels (a build that chooses at load, as Debian's does): weak, so that a
// build without them links and keeps its own kernels.
extern "C" {
extern void* gotoblas __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
void blas_thread_shutdown_(void) __attribute__((weak));  // OpenBLAS's pthreads builds
}

namespace tinytorch::kernels {

namespace {

// OpenBLAS (0.3.21 in Debian 12) picks its kernels by CPU model when it loads, and a model it does
// not know gets its most basic x86-64 kernels, Prescott's (SSE3): on a Xeon of model 207 (Emerald
// Rapids class) a 512^3 sgemm ran at 15 GFLOP/s on one core, against 96 with its SkylakeX kernels.
// There, before our first call, OpenBLAS's own choice runs again as OPENBLAS_CORETYPE would make it
// at load, for the kernels of the ISA tinytorch runs: SkylakeX with AVX-512, Haswell with AVX2.
// Nothing changes when the user set OPENBLAS_CORETYPE, when OpenBLAS chose other kernels, or when
// it does not choose at load; should the choice fail, the former one stays.
bool chosen_by_user = false;

void replace_fallback_kernels() {
  chosen_by_user = std::getenv("OPENBLAS_CORETYPE") != nullptr;
  if (&gotoblas == nullptr || gotoblas_dynamic_init == nullptr || gotoblas == nullptr) return;
  if (chosen_by_user || std::strcmp(openblas_get_corename(), "Prescott") != 0) return;
  const char* core = cpu_isa() == Isa::Avx512 ? "SkylakeX" : "Haswell";
  setenv("OPENBLAS_CORETYPE", core, 0);
  void* fallback = gotoblas;
  gotoblas = nullptr;
  gotoblas_dynamic_init();
  if (gotoblas == nullptr) gotoblas = fallback;
  log_isa_choice("OpenBLAS", (std::string(openblas_get_corename()) + " kernels, for its Prescott fallback").c_str());
}

void pin_to_one_thread() {
  static std::once_flag pinned;
  std::call_once(pinned, [] {
    replace_fallback_kernels();
    openblas_set_num_threads(1);
  });
}

// OpenBLAS's pthreads build (Debian's default) starts a pool of threads when it loads, one per
// core but the caller's, and they spin on sched_yield for a while after the library loads and after
// each threaded call before they sleep. We only ever run OpenBLAS on one thread, so the pool never
// works, yet its spinning took the cores from our own threads: on 2 vCPUs, during the first seconds
// of a process (tinytorch run --bench) a parallel region's threads started 25-50 us late on
// average against 1 us. Stopped when tinytorch loads (OpenBLAS has loaded before: a library this
// one needs), before any of our threads start; a later threaded call would start it again.
const bool blas_pool_stopped = [] {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_ != nullptr) blas_thread_shutdown_();
  return true;
}();

}  // namespace

const char* blas_kernels() {
  pin_to_one_thread();
  return openblas_get_corename();
}

bool blas_kernels_chosen_by_user() {
  pin_to_one_thread();
  return chosen_by_user;
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  pin_to_one_thread();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace tinytorch::kernels

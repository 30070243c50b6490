// libFuzzer target: the .npy reader on arbitrary bytes. Any input must give a tensor whose size
// matches its shape or a DataError, never a crash or an out-of-bounds read.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tinytorch/errors.hpp"
#include "tinytorch/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/tinytorch_fuzz_npy_" + std::to_string(::getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const tinytorch::Tensor t = tinytorch::load_npy(path);
    int64_t n = 1;
    for (int64_t d : t.shape()) n *= d;
    if (n != t.numel()) __builtin_trap();
  } catch (const tinytorch::DataError&) {
  }
  return 0;
}

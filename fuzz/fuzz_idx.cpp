// libFuzzer target: the IDX reader (gzip or plain) on arbitrary bytes. Any input must give
// either data or a DataError, never a crash, a hang or an out-of-bounds read.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tinytorch/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/tinytorch_fuzz_idx_" + std::to_string(::getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const tinytorch::IdxImages images = tinytorch::read_idx_images(path);
    if (static_cast<int64_t>(images.pixels.size()) != images.count * images.rows * images.cols) __builtin_trap();
  } catch (const tinytorch::DataError&) {
  }
  try {
    (void)tinytorch::read_idx_labels(path);
  } catch (const tinytorch::DataError&) {
  }
  return 0;
}

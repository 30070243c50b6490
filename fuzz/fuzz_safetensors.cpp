// libFuzzer target: the safetensors loader, and loading into a small model. Any input must give
// tensors or a DataError (or, for a checkpoint that does not fit the model, a DataError), never
// a crash.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tinytorch/tinytorch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/tinytorch_fuzz_st_" + std::to_string(::getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const tinytorch::SafeTensors st = tinytorch::load_safetensors(path);
    for (const auto& [name, t] : st.tensors) {
      // Every dtype the loader produces must be readable: touch the first and last element.
      if (t.numel() == 0) continue;
      if (t.raw_data() == nullptr) __builtin_trap();
      volatile double sink = t.element(0) + t.element(t.numel() - 1);
      (void)sink;
    }
  } catch (const tinytorch::DataError&) {
  }
  try {
    tinytorch::Sequential model;
    model.emplace<tinytorch::Linear>(2, 2);
    tinytorch::load_checkpoint(path, model, nullptr);
  } catch (const tinytorch::DataError&) {
  }
  return 0;
}

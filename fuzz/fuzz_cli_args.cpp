// libFuzzer target: the command-line parser with the options of `tinytorch train`: arguments are
// the input split at NUL bytes. Any input must parse or give a UsageError.
#include <string>
#include <vector>

#include "args.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> argv(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      argv.emplace_back();
    } else {
      argv.back() += static_cast<char>(data[i]);
    }
  }
  tinytorch::cli::Args args("train", "fuzzing");
  args.option("epochs", "3", "").option("lr", "0.001", "").option("data", "/x", "");
  args.flag("resume", "").flag("json", "");
  args.optional_value("threads", "2", "");
  try {
    if (!args.parse(argv)) return 0;
    (void)args.get_int("epochs", 1, 1000);
    (void)args.get_int("threads", 1, 256);
    (void)args.has("resume");
  } catch (const tinytorch::cli::UsageError&) {
  }
  return 0;
}

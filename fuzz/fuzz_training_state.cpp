// libFuzzer target: the training state a checkpoint's metadata holds, as `tinytorch train
// --resume` reads it (training_state.cpp). The input is "key=value" lines; any input must give
// the state of a run of 3 epochs of 4 batches of 32, or a DataError.
#include <cstdlib>
#include <map>
#include <string>

#include "tinytorch/errors.hpp"
#include "training_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> metadata;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (size_t at = 0; at <= text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) metadata[line.substr(0, eq)] = line.substr(eq + 1);
    at = end + 1;
  }
  const auto steps = metadata.find("optimizer_steps");
  const int64_t optimizer_steps = steps == metadata.end() ? 0 : std::strtoll(steps->second.c_str(), nullptr, 10);
  const tinytorch::cli::RunConfig run{0, 3, 32, 128};
  try {
    const auto state = tinytorch::cli::parse_training_metadata(metadata, run, optimizer_steps, "fuzz");
    // What parses must describe a point inside the run.
    if (state.epoch > run.epochs || state.batch >= run.batches_per_epoch() ||
        static_cast<int64_t>(state.history.size()) != state.epoch) {
      std::abort();
    }
  } catch (const tinytorch::DataError&) {
  }
  return 0;
}

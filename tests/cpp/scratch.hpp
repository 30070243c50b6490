// Scratch files for tests: a folder per test file and process under the system's temp folder.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace tinytorch::testing {

// The path of `name` (folders created) in "<tmp>/tinytorch_<suite>_<pid>/".
inline std::string scratch_path(const std::string& suite, const std::string& name) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("tinytorch_" + suite + "_" + std::to_string(::getpid())) / name;
  std::filesystem::create_directories(path.parent_path());
  return path.string();
}

}  // namespace tinytorch::testing

#include "core/verbose.hpp"

#include <unistd.h>

#include <cstdlib>

namespace tinytorch {

bool verbose_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("TINYTORCH_VERBOSE");
    return env && *env && std::string(env) != "0";
  }();
  return enabled;
}

void verbose_log(const std::string& message) {
  const std::string line = "tinytorch: " + message + "\n";
  ssize_t ignored = ::write(2, line.data(), line.size());  // best effort: a log line, not data
  (void)ignored;
}

}  // namespace tinytorch

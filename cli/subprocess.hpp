// Running a helper program without a shell: an argument vector through posix_spawn, so no
// character of a path or an option can be read as shell syntax.
#pragma once

#include <string>
#include <vector>

namespace tinytorch::cli {

struct ProcessResult {
  bool started = false;  // false: the program could not be run (`error` says why)
  int exit_code = -1;    // -1 when it was killed by a signal
  std::string out, err;  // everything it wrote to stdout and stderr
  std::string error;
};

// Runs argv[0] (a full path) with argv, stdin from /dev/null, and collects its output.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace tinytorch::cli

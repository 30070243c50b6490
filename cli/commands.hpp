// The tinytorch tool's subcommands. Each takes its arguments (after the subcommand name) and
// returns the process exit code; usage errors are thrown as UsageError.
#pragma once

#include <string>
#include <vector>

namespace tinytorch::cli {

int run_demo(const std::vector<std::string>& args);
int run_analyze(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_run(const std::vector<std::string>& args);
int run_inspect(const std::vector<std::string>& args);

}  // namespace tinytorch::cli

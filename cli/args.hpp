// A small command-line parser for the tinytorch tool: --name value / --name=value options and
// flags, each declared with its help text. Any misuse throws UsageError, which main() turns into
// exit code 2 with the message.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tinytorch/errors.hpp"

namespace tinytorch::cli {

// A command line the tool cannot take: exit code 2, like every ArgumentError.
class UsageError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

class Args {
 public:
  Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}
  // Declares an option that takes a value (with a default) or a flag.
  Args& option(const std::string& name, const std::string& default_value, const std::string& help);
  Args& flag(const std::string& name, const std::string& help);
  // An option whose value may be left out (`--threads` or `--threads 4`): the value is taken
  // when the next argument does not start with "--".
  Args& optional_value(const std::string& name, const std::string& default_value, const std::string& help);
  // Parses argv; returns false if --help was given (help has been printed).
  bool parse(const std::vector<std::string>& argv);

  std::string get(const std::string& name) const;
  bool has(const std::string& name) const;  // a flag that was given
  // An integer option in [lo, hi]; anything else is a UsageError naming the option.
  int64_t get_int(const std::string& name, int64_t lo, int64_t hi) const;
  std::string help() const;

 private:
  struct Spec {
    bool is_flag;
    std::string value;
    std::string help;
    bool given = false;
    bool value_optional = false;
  };
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
};

}  // namespace tinytorch::cli

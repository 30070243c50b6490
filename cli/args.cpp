#include "args.hpp"

#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace tinytorch::cli {

Args& Args::option(const std::string& name, const std::string& default_value, const std::string& help) {
  specs_[name] = Spec{false, default_value, help};
  order_.push_back(name);
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_[name] = Spec{true, "", help};
  order_.push_back(name);
  return *this;
}

Args& Args::optional_value(const std::string& name, const std::string& default_value, const std::string& help) {
  specs_[name] = Spec{false, default_value, help, false, true};
  order_.push_back(name);
  return *this;
}

bool Args::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help();
      return false;
    }
    if (arg.rfind("--", 0) != 0) throw UsageError(command_ + ": unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = specs_.find(name);
    if (it == specs_.end()) throw UsageError(command_ + ": unknown option '--" + name + "' (see --help)");
    Spec& spec = it->second;
    if (spec.is_flag) {
      if (inline_value) throw UsageError(command_ + ": option '--" + name + "' takes no value");
    } else if (!inline_value) {
      const bool next_is_value = i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0;
      if (next_is_value) {
        value = argv[++i];
      } else if (spec.value_optional) {
        value = spec.value;
      } else {
        throw UsageError(command_ + ": option '--" + name + "' needs a value");
      }
    }
    spec.value = value;
    spec.given = true;
  }
  return true;
}

std::string Args::get(const std::string& name) const { return specs_.at(name).value; }

bool Args::has(const std::string& name) const { return specs_.at(name).given; }

int64_t Args::get_int(const std::string& name, int64_t lo, int64_t hi) const {
  const std::string& text = specs_.at(name).value;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(command_ + ": --" + name + " expects an integer from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got '" + text + "'");
  }
  return v;
}

std::string Args::help() const {
  std::string s = "usage: tinytorch " + command_ + " [options]\n\n" + summary_ + "\n\noptions:\n";
  for (const std::string& name : order_) {
    const Spec& spec = specs_.at(name);
    std::string left = "  --" + name + (spec.is_flag ? "" : spec.value_optional ? " [N]" : " VALUE");
    left.resize(std::max<size_t>(left.size() + 2, 24), ' ');
    s += left + spec.help;
    if (!spec.is_flag && !spec.value.empty()) s += " (default: " + spec.value + ")";
    s += "\n";
  }
  s += "  --help                print this help\n";
  return s;
}

}  // namespace tinytorch::cli

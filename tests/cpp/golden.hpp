// Reads the golden files written by scripts/make_golden.py: named cases, each with integer
// attributes and float32 tensors (inputs and PyTorch's expected output).
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tinytorch/tinytorch.hpp"

namespace golden {

struct Case {
  std::string name, op;
  std::map<std::string, std::vector<std::string>> attrs;
  std::map<std::string, tinytorch::Tensor> tensors;

  bool has(const std::string& t) const { return tensors.count(t) != 0; }
  const tinytorch::Tensor& tensor(const std::string& t) const { return tensors.at(t); }
  int64_t attr(const std::string& key, size_t i = 0) const { return std::stoll(attrs.at(key).at(i)); }
  tinytorch::Size2 pair(const std::string& key) const { return {attr(key, 0), attr(key, 1)}; }
};

inline std::vector<Case> load(const std::string& filename) {
  std::ifstream in(std::string(TINYTORCH_GOLDEN_DIR) + "/" + filename);
  if (!in) throw std::runtime_error("cannot open golden file " + filename);
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "case") {
      cases.emplace_back();
      ls >> cases.back().name >> cases.back().op;
    } else if (word == "attr") {
      std::string key, v;
      ls >> key;
      while (ls >> v) cases.back().attrs[key].push_back(v);
    } else if (word == "tensor") {
      std::string name;
      int64_t ndim;
      ls >> name >> ndim;
      tinytorch::Shape shape(static_cast<size_t>(ndim));
      for (auto& s : shape) ls >> s;
      std::getline(in, line);
      std::istringstream vs(line);
      std::vector<float> values;
      float v;
      while (vs >> v) values.push_back(v);
      cases.back().tensors.emplace(name, tinytorch::Tensor(shape, values));
    }
  }
  return cases;
}

}  // namespace golden

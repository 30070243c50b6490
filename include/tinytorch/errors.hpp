// Typed errors thrown at tinytorch's public boundary.
//
// Every check on user input lives at the API or op layer and throws one of these; kernels only
// assert. All derive from std::invalid_argument, so a caller can catch that one type. The Python
// module maps them to ValueError (IndexError for IndexError).
#pragma once

#include <stdexcept>
#include <string>

namespace tinytorch {

// A shape, size or hyper-parameter is not what the operation needs.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An index is outside a tensor's bounds.
class IndexError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace tinytorch

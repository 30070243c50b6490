// Typed errors thrown at tinytorch's public boundary: one home for all of them.
//
// Every check on user input lives at the API or op layer and throws one of these; kernels only
// assert. The input errors derive from ArgumentError (a std::invalid_argument), so a caller can
// catch that one type; IOError is a failure of the system under a well-formed request (a full
// disk, a permission) and derives from std::runtime_error. The Python module maps ArgumentError
// and its kinds to ValueError (IndexError to IndexError, DTypeError to TypeError, DataError to
// tinytorch.DataError, a ValueError) and IOError to OSError; the CLI exits with 2 on the first
// and 1 on the second.
#pragma once

#include <stdexcept>
#include <string>

namespace tinytorch {

// An argument is not what the function needs (a thread count, a learning rate, a path).
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A shape, size or hyper-parameter does not fit the operation.
class ShapeError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

// A tensor has a dtype the operation does not take (an int64 tensor given to conv2d).
class DTypeError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

// An index is outside a tensor's bounds.
class IndexError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

// A file (or data passed in memory) that cannot be read as what it claims to be: malformed,
// truncated, too large, not a regular file, or not matching the model it is loaded into. The
// message names the file.
class DataError : public ArgumentError {
 public:
  using ArgumentError::ArgumentError;
};

// Reading or writing failed for a reason outside the request: the message names the path and
// the system's reason (strerror).
class IOError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A collective operation across processes failed (tinytorch::distributed): MPI's reason, and the
// rank that was lost where it is known.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tinytorch

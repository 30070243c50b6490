// NumPy's .npy files (format versions 1-3): one array, a small Python-literal header giving its
// dtype, order and shape, then the raw data. What `tinytorch run` reads and writes, so inputs and
// outputs move to and from numpy with np.load / np.save.
#pragma once

#include <string>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

// Reads a C-order array of float32 or float64 (read as float32), int64 or int32 (read as int64),
// or bool, little-endian. Anything else, and any malformed or truncated file, is a DataError
// naming the file and what was expected.
Tensor load_npy(const std::string& path);
// Writes the tensor (contiguous copy of any view) as a version 1.0 file in its dtype (<f4, <i8,
// |b1), atomically (file_io.hpp).
void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace tinytorch

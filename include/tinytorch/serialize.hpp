// Checkpoints in the safetensors format (an 8-byte little-endian header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the raw little-endian data), so
// PyTorch users can read them with the safetensors package or a few lines of Python.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tinytorch/data.hpp"
#include "tinytorch/module.hpp"
#include "tinytorch/optim.hpp"

namespace tinytorch {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafeTensors {
  NamedTensors tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const Tensor* find(const std::string& name) const;
};

// Writes atomically through AtomicFile (file_io.hpp): if anything fails (a full disk, a kill),
// the previous file stays as it was. Throws IOError naming the file on I/O failure, and
// ArgumentError for a name given twice or a destination that is not a regular file.
void save_safetensors(const std::string& path, const SafeTensors& contents);
// Reads and validates: a regular file, header length, strict JSON (no duplicate keys),
// __metadata__ an object of strings, dtypes, shapes, offsets in range and tiling the data
// exactly. A malformed or truncated file is a DataError naming it. Tensors are written in their
// dtype (F32, I64, BOOL); files from elsewhere may also hold F64, F16 and BF16 (read as float32)
// and I32, I16, I8, U8 (read as int64).
SafeTensors load_safetensors(const std::string& path);

// A model's parameters and buffers under their names ("0.weight"), the optimizer's state under
// "optimizer.<index>.<slot>", and metadata (epoch, step, optimizer type, ...). The NamedTensors
// form takes the tensors as the caller names them (the Python module passes a Python subclass's
// whole state this way).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata = {});
void save_checkpoint(const std::string& path, const NamedTensors& state, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata = {});
// Loads into an existing model (and optimizer) and returns the metadata. Strict (the default,
// as PyTorch's load_state_dict): every tensor must be present with its shape and the file may
// hold no other (its optimizer state is ignored when no optimizer is given); a mismatch is a
// DataError listing the missing and unexpected names, and nothing is changed. strict = false
// loads the tensors present in both and leaves the rest; a shape mismatch is still an error.
// optimizer_steps is checked to be a count in [0, 2^53].
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer,
                                                   bool strict = true);
std::map<std::string, std::string> load_checkpoint(const std::string& path, const NamedTensors& state,
                                                   Optimizer* optimizer, bool strict = true);

}  // namespace tinytorch

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

struct SafeTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const Tensor* find(const std::string& name) const;
};

// Writes atomically: a temporary file next to `path`, flushed and fsync'ed, then renamed over
// it. If anything fails (a full disk, a kill), the previous file stays as it was. Throws
// std::runtime_error naming the file on I/O failure.
void save_safetensors(const std::string& path, const SafeTensors& contents);
// Reads and validates: header length, JSON, dtypes (F32 only), shapes, offsets in range and
// tiling the data exactly. A malformed or truncated file is a DataError naming it.
SafeTensors load_safetensors(const std::string& path);

// A model's parameters and buffers under their names ("0.weight"), the optimizer's state under
// "optimizer.<index>.<slot>", and metadata (epoch, step, optimizer type, ...).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata = {});
// Loads into an existing model (and optimizer): every tensor must be present with its shape.
// Returns the metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

}  // namespace tinytorch

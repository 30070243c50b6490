// The user-facing convolution settings (include/tinytorch/backends.hpp): algorithm names, the
// forced algorithm, autotuning, the prepared-weight cache, and the per-shape queries. Everything
// an algorithm is comes from its row in conv2d_table.cpp.
#include <string>

#include "ops/conv2d.hpp"
#include "ops/conv2d_select.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch {
namespace {

kernels::Conv2dGeometry geometry_of(const Shape& input, const Shape& weight, const Conv2dOptions& options) {
  if (input.size() != 3 && input.size() != 4) {
    throw ShapeError("Expected 3D input (channels, height, width), got " + std::to_string(input.size()) +
                     "D (a batch is 4D: (batch, channels, height, width))");
  }
  Shape batched = input;
  if (batched.size() == 3) batched.insert(batched.begin(), 1);
  return ops::conv2d_geometry(batched, weight, Tensor(), options);
}

}  // namespace

std::string to_string(Conv2dAlgorithm algorithm) {
  if (algorithm == Conv2dAlgorithm::Auto) return "auto";
  for (const ops::Conv2dAlgorithmRow& row : ops::conv2d_algorithm_table())
    if (row.id == algorithm) return row.name;
  return "unknown";
}

Conv2dAlgorithm conv2d_algorithm_from_string(const std::string& name) {
  if (name == "auto") return Conv2dAlgorithm::Auto;
  std::string known = "auto";
  for (const ops::Conv2dAlgorithmRow& row : ops::conv2d_algorithm_table()) {
    if (name == row.name) return row.id;
    known += std::string(", ") + row.name;
  }
  throw ArgumentError("unknown conv2d algorithm '" + name + "': expected one of " + known);
}

std::vector<Conv2dAlgorithm> all_conv2d_algorithms() {
  std::vector<Conv2dAlgorithm> out;
  for (const ops::Conv2dAlgorithmRow& row : ops::conv2d_algorithm_table()) out.push_back(row.id);
  return out;
}

void set_conv2d_algorithm(Conv2dAlgorithm algorithm) { ops::forced_conv2d_algorithm().store(algorithm); }
Conv2dAlgorithm get_conv2d_algorithm() { return ops::forced_conv2d_algorithm().load(); }

void set_conv2d_autotune(bool enabled) { ops::conv2d_autotune_enabled().store(enabled); }
bool get_conv2d_autotune() { return ops::conv2d_autotune_enabled().load(); }
void clear_conv2d_autotune_cache() { ops::clear_conv2d_tuning(); }
int64_t conv2d_autotune_cache_size() { return ops::conv2d_tuned_shapes(); }

void set_weight_cache_bytes(int64_t bytes) {
  if (bytes < 0) {
    throw ArgumentError("set_weight_cache_bytes: expected a budget of 0 bytes or more, got " + std::to_string(bytes));
  }
  ops::set_prepared_weight_budget(bytes);
}
int64_t get_weight_cache_bytes() { return ops::prepared_weight_stats().budget_bytes; }
int64_t weight_cache_held_bytes() { return ops::prepared_weight_stats().bytes; }
void clear_weight_cache() { ops::clear_prepared_weights(); }

bool conv2d_algorithm_supports(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options) {
  const kernels::Conv2dGeometry g = geometry_of(input, weight, options);
  return algorithm == Conv2dAlgorithm::Auto || ops::conv2d_algorithm_row(algorithm).supports(g);
}

Conv2dAlgorithm select_conv2d_algorithm(const Shape& input, const Shape& weight, const Conv2dOptions& options) {
  return ops::choose_conv2d_algorithm(geometry_of(input, weight, options));
}

int64_t conv2d_workspace_bytes(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options) {
  const kernels::Conv2dGeometry g = geometry_of(input, weight, options);
  if (algorithm == Conv2dAlgorithm::Auto) algorithm = ops::choose_conv2d_algorithm(g);
  const ops::Conv2dAlgorithmRow& row = ops::conv2d_algorithm_row(algorithm);
  return row.supports(g) ? row.workspace_bytes(g) : 0;
}

}  // namespace tinytorch

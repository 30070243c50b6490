// Options every tinytorch command takes: --threads and --conv-algo, and the PNG helper.
#pragma once

#include <string>

#include "args.hpp"

namespace tinytorch::cli {

// Declares --threads and --conv-algo on a command.
void add_runtime_options(Args& args);
// Applies them (set_num_threads, set_conv2d_algorithm); bad values are UsageErrors.
void apply_runtime_options(const Args& args);

// Writes `json` to OUT.json and draws OUT.png with scripts/plot.py (KIND: threads, scaling,
// curves, bars), both through the atomic writer. Returns a line saying what was written, or why
// no PNG was drawn (matplotlib missing is not an error; a failed write is: IOError).
std::string write_plot(const std::string& kind, const std::string& json, const std::string& out_stem);

// The benchmark shapes file: the source tree's, or the installed copy.
std::string default_shapes_file();

}  // namespace tinytorch::cli

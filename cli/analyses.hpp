// The analyses behind `tinytorch analyze` flags (analyze.cpp parses the options).
#pragma once

#include <cstdint>
#include <string>

namespace tinytorch::cli {

// --loops: one convolution in several loop orders, next to the fast path.
int analyze_loops(bool json, int64_t size, int64_t channels);
// --threads [N]: speed-up from 1 to N threads for every algorithm on one layer; table and PNG.
int analyze_threads(bool json, int max_threads, const std::string& plot_stem);
// --train: predicted and measured peak memory of a training step of the default CNN.
int analyze_train(bool json, int64_t batch);
// --distributed: data-parallel training on 1 to 1,024 processes, predicted from the allreduce and a
// step measured here (under mpirun); table and PNG. probe: the measuring processes' part.
int analyze_distributed(bool json, const std::string& plot_stem, bool probe);

}  // namespace tinytorch::cli

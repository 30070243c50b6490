// Choosing the convolution algorithm, like torch.backends: by default a heuristic picks one per
// shape; a user can force one from C++ (set_conv2d_algorithm), Python
// (tinytorch.backends.set_conv2d_algorithm), the CLI (--conv-algo) or the environment
// (TINYTORCH_CONV_ALGO=im2col, read at start-up). A forced algorithm is used wherever it supports
// the shape; elsewhere the heuristic chooses (so forcing winograd does not break a 1x1 layer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinytorch/functional.hpp"

namespace tinytorch {

enum class Conv2dAlgorithm {
  Auto,        // the heuristic (select_conv2d_algorithm)
  Reference,   // the plain loop nest, double accumulation: the oracle
  Im2colGemm,  // im2col blocks + OpenBLAS sgemm: any shape
  Gemm1x1,     // 1x1, stride 1, no padding: sgemm straight on the input, no im2col
  Packed,      // im2col into register-tile panels + our AVX-512/AVX2 micro-kernel: any shape
  Winograd,    // 3x3, dilation 1, groups 1: F(4x4, 3x3) at stride 1 (padding <= 1); at stride 2 the input
               // split by parity into F(2, 2) and 1-tap convolutions (25 multiplies for 4 outputs)
  Depthwise,   // groups == in_channels > 1 (out_channels a multiple): vectors across output channels
  Direct,      // the micro-kernel reads the padded (phase-split) input in place, no im2col
  Batched,     // every image's patches as rows of one OpenBLAS GEMM per group: images with few pixels
  Ocblock,     // vectors across output channels, each tap an input value broadcast: images with few pixels
  Blocked,     // groups 1: the input converted to blocks of 8/16 channels, the graph runtime's blocked kernels
};

std::string to_string(Conv2dAlgorithm algorithm);
// "auto", "reference", "im2col", "gemm1x1", "packed", "winograd", "depthwise", "direct", "batched", "ocblock",
// "blocked";
// ArgumentError
// otherwise. The names and everything else an algorithm is live in one table (src/ops/conv2d_table.cpp).
Conv2dAlgorithm conv2d_algorithm_from_string(const std::string& name);
std::vector<Conv2dAlgorithm> all_conv2d_algorithms();  // every concrete algorithm (not Auto)

void set_conv2d_algorithm(Conv2dAlgorithm algorithm);
Conv2dAlgorithm get_conv2d_algorithm();

// Autotuning, like torch.backends.cudnn.benchmark. Off by default; TINYTORCH_CONV_AUTOTUNE=1 turns
// it on at start-up. When on, the first conv2d of each shape (for the current thread count and
// ISA) times every fast algorithm that supports it on the call's own tensors (a warm-up and three
// timed runs each) and remembers the fastest; later calls of that shape run it. A forced algorithm
// (set_conv2d_algorithm) still comes first. The choice follows measured times, so two runs may
// pick different algorithms, whose results differ within the bounds the tests hold them to.
void set_conv2d_autotune(bool enabled);
bool get_conv2d_autotune();
void clear_conv2d_autotune_cache();
int64_t conv2d_autotune_cache_size();  // shapes tuned so far

// Prepared weights kept between calls: Winograd's transformed weights and the direct kernel's
// packed ones, reused while a layer's weight keeps the same values (compared in full on every call,
// so a weight changed in place is always seen). Least recently used entries go past the budget:
// 256 MiB by default, TINYTORCH_WEIGHT_CACHE_MB at start-up, or set_weight_cache_bytes (0 turns
// the cache off; negative is an ArgumentError).
void set_weight_cache_bytes(int64_t bytes);
int64_t get_weight_cache_bytes();
int64_t weight_cache_held_bytes();  // held now: prepared weights and the copies they are checked against
void clear_weight_cache();

// For a (validated) call: whether an algorithm handles it, which one conv2d would run (with
// autotuning on: the tuned one once the shape has run, the heuristic's before), and the
// workspace bytes it needs (per thread: each thread has its own).
bool conv2d_algorithm_supports(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options = {});
Conv2dAlgorithm select_conv2d_algorithm(const Shape& input, const Shape& weight, const Conv2dOptions& options = {});
int64_t conv2d_workspace_bytes(Conv2dAlgorithm algorithm, const Shape& input, const Shape& weight,
                               const Conv2dOptions& options = {});

// conv2d with an explicit algorithm (Auto: the heuristic). ShapeError if it does not support the
// shape. Used by tests and benchmarks to compare algorithms side by side.
Tensor conv2d_with(Conv2dAlgorithm algorithm, const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                   const Conv2dOptions& options = {});

}  // namespace tinytorch

// TINYTORCH_VERBOSE=1: the library says on stderr which kernel it picked and why, once per
// choice (the ISA when the micro-kernels are first chosen; the conv2d algorithm for each new
// layer shape), as oneDNN's ONEDNN_VERBOSE does. Read once, at the first message.
#pragma once

#include <string>

namespace tinytorch {

bool verbose_enabled();
// Writes "tinytorch: <message>" and a newline to stderr (one write, so threads do not interleave).
void verbose_log(const std::string& message);

}  // namespace tinytorch

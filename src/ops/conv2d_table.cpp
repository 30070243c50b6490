// The convolution algorithms, one row each. Adding an algorithm: write its file (run, supports,
// workspace), add its value to Conv2dAlgorithm (backends.hpp) and its row here; the heuristic
// (conv2d_select.cpp) decides where it is the default. See docs/ARCHITECTURE.md.
#include <algorithm>

#include "core/contract.hpp"
#include "core/parallel.hpp"
#include "ops/conv2d_algorithms.hpp"

namespace tinytorch::ops {
namespace {

bool any_shape(const Conv2dGeometry&) { return true; }
int64_t no_workspace(const Conv2dGeometry&) { return 0; }

void conv2d_reference(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                      const OutputStage& stage) {
  kernels::conv2d_forward_reference(out, in, weight, bias, g);
  apply_stage_all(out, stage, g);
}

}  // namespace

void apply_stage(float* out, const OutputStage& stage, const Conv2dGeometry& g, int64_t oc0, int64_t oc1, int64_t f0,
                 int64_t f1) {
  if (stage.empty()) return;
  const int64_t P = g.OH * g.OW;
  for (int64_t f = f0; f < f1;) {  // image by image
    const int64_t n = f / P, p = f % P, count = std::min(f1 - f, P - p);
    for (int64_t oc = oc0; oc < oc1; ++oc) stage.apply(out, (n * g.OC + oc) * P + p, count);
    f += count;
  }
}

int64_t conv2d_work(const Conv2dGeometry& g) {
  const int64_t floats = g.N * g.C * g.H * g.W + g.OC * g.channels_per_group() * g.KH * g.KW + g.N * g.OC * g.OH * g.OW;
  return g.flops() + kStreamedFloatWork * floats;
}

void apply_stage_all(float* out, const OutputStage& stage, const Conv2dGeometry& g) {
  if (stage.empty()) return;
  parallel_chunks(g.N * g.OC * g.OH * g.OW, [&](int64_t begin, int64_t end) { stage.apply(out, begin, end - begin); });
}

const std::vector<Conv2dAlgorithmRow>& conv2d_algorithm_table() {
  // The reference is the oracle, never a choice for speed: autotuning does not time it.
  static const std::vector<Conv2dAlgorithmRow> table = {
      {Conv2dAlgorithm::Reference, "reference", any_shape, conv2d_reference, no_workspace, false},
      {Conv2dAlgorithm::Im2colGemm, "im2col", any_shape, conv2d_im2col_gemm, conv2d_im2col_workspace_bytes, true},
      {Conv2dAlgorithm::Gemm1x1, "gemm1x1", conv2d_gemm1x1_supports, conv2d_gemm1x1, no_workspace, true},
      {Conv2dAlgorithm::Packed, "packed", any_shape, conv2d_packed,
       [](const Conv2dGeometry& g) { return conv2d_packed_workspace_bytes(g) + conv2d_packed_shared_bytes(g); }, true},
      {Conv2dAlgorithm::Winograd, "winograd", conv2d_winograd_supports, conv2d_winograd,
       [](const Conv2dGeometry& g) { return conv2d_winograd_workspace_bytes(g) + conv2d_winograd_shared_bytes(g); },
       true},
      {Conv2dAlgorithm::Depthwise, "depthwise", conv2d_depthwise_supports, conv2d_depthwise,
       conv2d_depthwise_workspace_bytes, true},
      {Conv2dAlgorithm::Direct, "direct", conv2d_direct_supports, conv2d_direct,
       [](const Conv2dGeometry& g) { return conv2d_direct_workspace_bytes(g) + conv2d_direct_shared_bytes(g); }, true},
      {Conv2dAlgorithm::Batched, "batched", any_shape, conv2d_batched, conv2d_batched_workspace_bytes, true},
      {Conv2dAlgorithm::Ocblock, "ocblock", any_shape, conv2d_ocblock, conv2d_ocblock_workspace_bytes, true},
      {Conv2dAlgorithm::Blocked, "blocked", conv2d_blocked_supports, conv2d_blocked_plain,
       conv2d_blocked_workspace_bytes, true},
  };
  return table;
}

const Conv2dAlgorithmRow& conv2d_algorithm_row(Conv2dAlgorithm algorithm) {
  const auto& table = conv2d_algorithm_table();
  const size_t index = static_cast<size_t>(algorithm) - 1;           // the enum's first value is Auto
  TT_EXPECTS(index < table.size() && table[index].id == algorithm);  // a concrete algorithm, in enum order
  return table[index];
}

}  // namespace tinytorch::ops

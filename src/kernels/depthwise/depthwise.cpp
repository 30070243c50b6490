// The depthwise kernel's entry points (conv2d.hpp): its scratch size and the block kernel of the
// ISA this process runs (depthwise/avx2.cpp or avx512.cpp, both built from depthwise/block.hpp),
// chosen once.
#include "core/contract.hpp"
#include "kernels/conv2d.hpp"
#include "kernels/cpu.hpp"
#include "kernels/depthwise/block.hpp"
#include "kernels/depthwise/table.hpp"

namespace tinytorch::kernels {
namespace {

const DepthwiseKernels& table() {
  static const DepthwiseKernels& kernels = isa_table("depthwise", &avx2::depthwise_kernels, &avx512::depthwise_kernels);
  return kernels;
}

}  // namespace

int64_t depthwise_block_lanes() { return table().lanes; }

int64_t depthwise_block_scratch_floats(const Conv2dGeometry& g, int64_t band_rows) {
  const int64_t L = depthwise_block_lanes();
  const int64_t rows = band_input_rows(g, band_rows);
  return (g.KH * g.KW + 1 + band_rows * g.OW + rows * band_input_cols(g) + (narrow(g) ? rows * g.W : 0)) * L;
}

void conv2d_depthwise_block(float* out, const float* in, const float* weight, const float* bias, int64_t oc0,
                            int64_t oh0, int64_t oh1, float* scratch, const Conv2dGeometry& g) {
  TT_EXPECTS(g.groups == g.C && g.OC % g.C == 0 && 0 <= oc0 && oc0 < g.OC && 0 <= oh0 && oh0 < oh1 && oh1 <= g.OH);
  table().block(out, in, weight, bias, oc0, oh0, oh1, scratch, g);
}

void depthwise_weight_grad_block(float* sums, const float* dy, const float* in, int64_t oc0, int64_t oh0, int64_t oh1,
                                 float* scratch, const Conv2dGeometry& g) {
  TT_EXPECTS(g.C % g.groups == 0 && g.OC % g.groups == 0 && 0 <= oc0 && oc0 < g.OC && 0 <= oh0 && oh0 < oh1 &&
             oh1 <= g.OH);
  table().weight_grad(sums, dy, in, oc0, oh0, oh1, scratch, g);
}

int64_t lanes_input_grad_scratch_floats(const Conv2dGeometry& g, int64_t band_rows) {
  return input_grad_scratch(g, band_rows, depthwise_block_lanes());
}

void lanes_input_grad_block(float* dx, const float* dy, const float* weight, int64_t ic0, int64_t ih0, int64_t ih1,
                            float* scratch, const Conv2dGeometry& g) {
  TT_EXPECTS(g.C % g.groups == 0 && g.OC % g.groups == 0 && g.KH <= 32 && g.KW <= 32 && 0 <= ic0 && ic0 < g.C &&
             0 <= ih0 && ih0 < ih1 && ih1 <= g.H);
  table().input_grad(dx, dy, weight, ic0, ih0, ih1, scratch, g);
}

}  // namespace tinytorch::kernels

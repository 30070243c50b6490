// The Winograd kernels' entry points (winograd.hpp): which layers each scheme takes, the tile
// counts, and the transforms of the ISA this process runs (winograd/avx2.cpp or avx512.cpp), chosen
// once; each entry point checks its contract first.
#include "kernels/winograd/winograd.hpp"

#include "core/contract.hpp"
#include "kernels/cpu.hpp"
#include "kernels/winograd/common.hpp"
#include "kernels/winograd/table.hpp"

namespace tinytorch::kernels {
namespace {

const WinogradKernels& table() {
  static const WinogradKernels& kernels =
      isa_table("winograd transforms", &avx2::winograd_kernels, &avx512::winograd_kernels);
  return kernels;
}

}  // namespace

bool winograd_f43_supports(const Conv2dGeometry& g) {
  if (g.KH != 3 || g.KW != 3 || g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 || g.dilation_w != 1 ||
      g.groups != 1) {
    return false;
  }
  // Padding of at most 1 on every side (3x3 "valid" and "same" layers). Winograd's rounding error
  // scales with the inputs of the whole 6x6 tile, not of each output's own 3x3 window; with wider
  // padding an output whose window is (nearly) all padding, next to real data in the same tile,
  // came out up to 10^4 x the float bound of its own window (a 1-channel layer with padding 3).
  const int64_t pad_bottom = g.OH + 2 - g.H - g.pad_top, pad_right = g.OW + 2 - g.W - g.pad_left;
  if (g.pad_top > 1 || g.pad_left > 1 || pad_bottom > 1 || pad_right > 1) return false;
  return offsets_fit(g, grid_f43(g));
}

int64_t winograd_f43_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_f43(g);
  return g.N * grid.TH * grid.TW;
}

bool winograd_s2_supports(const Conv2dGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.groups == 1 && offsets_fit(g, grid_s2(g));
}

int64_t winograd_s2_tiles(const Conv2dGeometry& g) {
  const Grid grid = grid_s2(g);
  return g.N * grid.TH * grid.TW;
}

void winograd_f43_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                   int mr) {
  TT_EXPECTS(oc0 >= 0 && oc0 < OC && mr >= 1 && mr <= 16 && xi_stride >= C * mr);
  table().f43_weight(u, xi_stride, weight, OC, C, oc0, mr);
}

void winograd_f43_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  TT_EXPECTS(winograd_f43_supports(g) && t0 >= 0 && t0 < winograd_f43_tiles(g) && (lanes == 16 || lanes == 32));
  table().f43_input(v, in, g, t0, lanes);
}

void winograd_f43_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                   int64_t oc0, int rows, int64_t t0, int lanes) {
  TT_EXPECTS(t0 >= 0 && t0 < winograd_f43_tiles(g) && (lanes == 16 || lanes == 32) && rows >= 1);
  table().f43_output(out, m, xs, bias, g, oc0, rows, t0, lanes);
}

void winograd_s2_weight_transform(float* u, int64_t xi_stride, const float* weight, int64_t OC, int64_t C, int64_t oc0,
                                  int mr) {
  TT_EXPECTS(oc0 >= 0 && oc0 < OC && mr >= 1 && mr <= 16 && xi_stride >= C * mr);
  table().s2_weight(u, xi_stride, weight, OC, C, oc0, mr);
}

void winograd_s2_input_transform(float* v, const float* in, const Conv2dGeometry& g, int64_t t0, int lanes) {
  TT_EXPECTS(winograd_s2_supports(g) && t0 >= 0 && t0 < winograd_s2_tiles(g) && (lanes == 16 || lanes == 32));
  table().s2_input(v, in, g, t0, lanes);
}

void winograd_s2_output_transform(float* out, const float* m, int64_t xs, const float* bias, const Conv2dGeometry& g,
                                  int64_t oc0, int rows, int64_t t0, int lanes) {
  TT_EXPECTS(t0 >= 0 && t0 < winograd_s2_tiles(g) && (lanes == 16 || lanes == 32) && rows >= 1);
  table().s2_output(out, m, xs, bias, g, oc0, rows, t0, lanes);
}

}  // namespace tinytorch::kernels

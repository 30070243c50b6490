// The blocked layout's entry points (blocked.hpp): the weight and bias packing, the scratch size,
// the layout changes, and the work item of the ISA this process runs (blocked/avx2.cpp or
// avx512.cpp), chosen once.
#include "kernels/blocked/blocked.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/contract.hpp"
#include "kernels/blocked/table.hpp"
#include "kernels/cpu.hpp"
#include "kernels/simd/transpose8.hpp"

namespace tinytorch::kernels {
namespace {

const BlockedKernels& table() {
  static const BlockedKernels& kernels = isa_table("blocked", &avx2::blocked_kernels, &avx512::blocked_kernels);
  return kernels;
}

// Floats per pixel of an input block: B for a blocked input, all C channels for a plain one.
int64_t pixel_floats(const BlockedConv& g, int64_t lanes) { return g.in_blocked ? lanes : g.C; }

// The item's contract (blocked.hpp, blocked_conv); checked in builds with contracts on.
[[maybe_unused]] bool valid_item(const BlockedConv& g, int64_t lanes, int64_t n, int64_t ob0, int64_t ob1, int64_t oh0,
                                 int64_t oh1) {
  const int64_t OB = blocked_blocks(g.OC, lanes);  // any block range: a dense item may cut panels
  return 0 <= n && n < g.N && 0 <= ob0 && ob0 < ob1 && ob1 <= OB && 0 <= oh0 && oh0 < oh1 && oh1 <= g.OH &&
         (!g.depthwise || (g.in_blocked && g.C == g.OC)) &&
         (g.in_plane == 0 || (g.in_blocked && g.in_plane >= g.H * g.W * lanes)) &&
         (g.out_plane == 0 || g.out_plane >= g.OH * g.OW * lanes);
}

}  // namespace

int64_t blocked_lanes() { return table().lanes; }

int64_t blocked_weight_floats(const BlockedConv& g, int64_t lanes) {
  const int64_t taps = g.KH * g.KW;
  if (g.depthwise) return blocked_blocks(g.C, lanes) * taps * lanes;
  return blocked_blocks(g.OC, lanes) * lanes * blocked_input_blocks(g, lanes) * taps * pixel_floats(g, lanes);
}

void pack_blocked_weight(float* dst, const float* weight, const BlockedConv& g, int64_t lanes, int64_t first,
                         int64_t last) {
  const int64_t B = lanes, T = g.KH * g.KW;
  if (g.depthwise) {  // [cb][tap][lane] from [C, 1, KH, KW]; one "panel" per block
    std::memset(dst + first * T * B, 0, static_cast<size_t>((last - first) * T * B) * sizeof(float));
    for (int64_t c = first * B; c < std::min(g.C, last * B); ++c)
      for (int64_t t = 0; t < T; ++t) dst[(c / B * T + t) * B + c % B] = weight[c * T + t];
    return;
  }
  // [panel][cb][tap][ci][block of the panel][lane] from [OC, C, KH, KW] (blocked_panels).
  const int64_t OB = blocked_blocks(g.OC, B), IB = pixel_floats(g, B);
  const int64_t K = blocked_input_blocks(g, B) * T * IB;
  for (int64_t i = first; i < last; ++i) {
    const int64_t panel0 = blocked_panel_start(i, B), end = blocked_panel_end(i, OB, B), m = end - panel0;
    float* panel = dst + panel0 * K * B;
    std::memset(panel, 0, static_cast<size_t>(m * K * B) * sizeof(float));
    for (int64_t oc = panel0 * B; oc < std::min(g.OC, end * B); ++oc) {
      const int64_t j = oc / B - panel0;
      const float* row = weight + oc * g.C * T;
      for (int64_t c = 0; c < g.C; ++c) {
        const int64_t cb = g.in_blocked ? c / B : 0, ci = g.in_blocked ? c % B : c;
        for (int64_t t = 0; t < T; ++t) panel[(((cb * T + t) * IB + ci) * m + j) * B + oc % B] = row[c * T + t];
      }
    }
  }
}

int64_t blocked_weight_units(const BlockedConv& g, int64_t lanes) {
  return g.depthwise ? blocked_blocks(g.C, lanes) : blocked_panels(blocked_blocks(g.OC, lanes), lanes);
}

void pack_blocked_bias(float* dst, const float* bias, const BlockedConv& g, int64_t lanes) {
  const int64_t n = blocked_blocks(g.OC, lanes) * lanes;
  std::fill(dst, dst + n, 0.0f);
  if (bias) std::copy(bias, bias + g.OC, dst);
}

int64_t blocked_scratch_floats(const BlockedConv& g, int64_t rows, int64_t lanes) {
  const int64_t taps = blocked_taps_floats(g), band = blocked_band_rows(g, rows) * blocked_band_cols(g);
  if (g.depthwise && !depthwise_copies(g, lanes)) return taps;  // read in place
  if (g.depthwise) return taps + band * lanes;                  // one block's band
  if (g.in_blocked && (g.stride_h > 1 || g.stride_w > 1)) {     // split by phase, each rounded up
    const int64_t split = blocked_split_phases(g) * blocked_split_rows(g, rows) * blocked_split_cols(g);
    return taps + blocked_input_blocks(g, lanes) * split * lanes;
  }
  return taps + blocked_input_blocks(g, lanes) * band * pixel_floats(g, lanes);
}

void blocked_conv(float* out, const float* in, const float* packed_weight, const float* packed_bias,
                  const BlockedConv& g, int64_t n, int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1, float* scratch,
                  const OutputStage& stage) {
  TT_EXPECTS(valid_item(g, table().lanes, n, ob0, ob1, oh0, oh1));
  table().item(out, in, packed_weight, packed_bias, g, n, ob0, ob1, oh0, oh1, scratch, stage);
}

void blocked_conv_wide_on_avx2(float* out, const float* in, const float* packed_weight, const float* packed_bias,
                               const BlockedConv& g, int64_t n, int64_t ob0, int64_t ob1, int64_t oh0, int64_t oh1,
                               float* scratch, const OutputStage& stage) {
  TT_EXPECTS(valid_item(g, 16, n, ob0, ob1, oh0, oh1));
  avx2::blocked_kernels_wide().item(out, in, packed_weight, packed_bias, g, n, ob0, ob1, oh0, oh1, scratch, stage);
}

// Both directions go 8 channels x 8 pixels at a time through one register transpose (lanes is 8
// or 16: one or two such groups per block), the pixels past the last multiple of 8 one by one.
void to_blocked_block(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes, int64_t cb) {
  float* d = dst + cb * P * lanes;
  const int64_t valid = std::min(lanes, C - cb * lanes), P8 = P / 8 * 8;
  for (int64_t g = 0; g < lanes; g += 8) {
    const int64_t rows = std::clamp<int64_t>(valid - g, 0, 8);  // channels of this group of 8
    const float* s = src + (cb * lanes + g) * P;
    for (int64_t p = 0; p < P8; p += 8) {
      v8 r[8];
      for (int64_t l = 0; l < 8; ++l) r[l] = l < rows ? load8(s + l * P + p) : v8{};
      transpose8(r);
      for (int64_t j = 0; j < 8; ++j) std::memcpy(d + (p + j) * lanes + g, &r[j], sizeof(v8));
    }
    for (int64_t p = P8; p < P; ++p)
      for (int64_t l = 0; l < 8; ++l) d[p * lanes + g + l] = l < rows ? s[l * P + p] : 0.0f;
  }
}

void from_blocked_block(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes, int64_t cb) {
  const float* s = src + cb * P * lanes;
  const int64_t valid = std::min(lanes, C - cb * lanes), P8 = P / 8 * 8;
  for (int64_t g = 0; g < valid; g += 8) {
    const int64_t rows = std::min<int64_t>(valid - g, 8);
    float* d = dst + (cb * lanes + g) * P;
    for (int64_t p = 0; p < P8; p += 8) {
      v8 r[8];
      for (int64_t j = 0; j < 8; ++j) r[j] = load8(s + (p + j) * lanes + g);
      transpose8(r);
      for (int64_t l = 0; l < rows; ++l) std::memcpy(d + l * P + p, &r[l], sizeof(v8));
    }
    for (int64_t p = P8; p < P; ++p)
      for (int64_t l = 0; l < rows; ++l) d[l * P + p] = s[p * lanes + g + l];
  }
}

void to_blocked(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes) {
  for (int64_t cb = 0; cb < blocked_blocks(C, lanes); ++cb) to_blocked_block(dst, src, C, P, lanes, cb);
}

void from_blocked(float* dst, const float* src, int64_t C, int64_t P, int64_t lanes) {
  for (int64_t cb = 0; cb < blocked_blocks(C, lanes); ++cb) from_blocked_block(dst, src, C, P, lanes, cb);
}

}  // namespace tinytorch::kernels

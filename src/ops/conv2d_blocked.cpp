// The blocked layout's ops (conv2d_blocked.hpp): validation, the packed weight kept between calls,
// the cut into work items, and the layout changes over threads.
#include "ops/conv2d_blocked.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/parallel.hpp"
#include "core/workspace.hpp"
#include "kernels/blocked/blocked.hpp"
#include "ops/conv2d_algorithms.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch::ops {
namespace {

// Scratch of at most this many floats per work item where the band is copied: 1 MiB, half an L2
// of 2 MiB. A quarter of it cut a 512 -> 512 3x3 stride-2 layer at 14x14 (a 0.9 MiB band) into 4
// bands, each reading the 9 MiB of weights: 1.41 against 0.80 ms (docs/PERFORMANCE.md).
constexpr int64_t kBandFloats = 256 * 1024;

[[noreturn]] void fail(const std::string& what) { throw ShapeError("conv2d_blocked: " + what); }

// The geometry of a layer on an input of shape s (dtype: the input's).
kernels::BlockedConv geometry(const Shape& s, DType dtype, int64_t channels, const Tensor& weight, const Tensor& bias,
                              const BlockedConvOptions& o, int64_t B) {
  const bool blocked = s.size() == 5;
  if (!blocked && s.size() != 4) fail("expected a 4-D plain or 5-D blocked input, got " + shape_to_string(s));
  if (weight.dim() != 4) fail("expected a 4-D weight, got " + shape_to_string(weight.shape()));
  if (dtype != DType::Float32 || weight.dtype() != DType::Float32) fail("expected float32 tensors");
  kernels::BlockedConv g{};
  g.N = s[0], g.C = blocked ? channels : s[1], g.H = s[2], g.W = s[3];
  if (blocked && (s[4] != B || s[1] != kernels::blocked_blocks(channels, B))) {
    fail("a blocked input of " + std::to_string(channels) + " channels is [N, " +
         std::to_string(kernels::blocked_blocks(channels, B)) + ", H, W, " + std::to_string(B) + "], got " +
         shape_to_string(s));
  }
  g.OC = weight.shape()[0], g.KH = weight.shape()[2], g.KW = weight.shape()[3];
  g.in_blocked = blocked, g.depthwise = o.depthwise;
  const int64_t per_group = o.depthwise ? 1 : g.C;
  if (weight.shape()[1] != per_group || (o.depthwise && (g.OC != g.C || !blocked))) {
    fail("weight " + shape_to_string(weight.shape()) + " does not fit an input of " + std::to_string(g.C) +
         " channels" + (o.depthwise ? " (depthwise: [C, 1, KH, KW] on a blocked input)" : ""));
  }
  if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != g.OC))
    fail("expected a bias of " + std::to_string(g.OC));
  g.stride_h = o.stride[0], g.stride_w = o.stride[1], g.dilation_h = o.dilation[0], g.dilation_w = o.dilation[1];
  g.pad_top = o.pads[0], g.pad_left = o.pads[1];
  if (g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 || g.dilation_w < 1 || g.KH < 1 || g.KW < 1 ||
      *std::min_element(o.pads.begin(), o.pads.end()) < 0) {
    fail("strides, dilations and the kernel must be positive, pads not negative");
  }
  const int64_t eh = g.dilation_h * (g.KH - 1) + 1, ew = g.dilation_w * (g.KW - 1) + 1;
  const int64_t ph = g.H + o.pads[0] + o.pads[2], pw = g.W + o.pads[1] + o.pads[3];
  if (ph < eh || pw < ew || g.N < 1 || g.C < 1 || g.OC < 1) {
    fail("the window (" + std::to_string(eh) + "x" + std::to_string(ew) + ") does not fit the padded input " +
         std::to_string(ph) + "x" + std::to_string(pw));
  }
  g.OH = (ph - eh) / g.stride_h + 1, g.OW = (pw - ew) / g.stride_w + 1;
  return g;
}

kernels::BlockedConv geometry(const Tensor& input, int64_t channels, const Tensor& weight, const Tensor& bias,
                              const BlockedConvOptions& o, int64_t B) {
  return geometry(input.shape(), input.dtype(), channels, weight, bias, o, B);
}

struct Cut {
  int64_t rows, bands, groups;  // output rows per band, bands per image, ranges of output blocks
};

// One item per thread at least: with parallel_for's static runs more items balance no better
// (the imbalance weight below picks more where they do), and each reads the weights again and
// copies its band's overlap. Four per thread cost small layers: 48 -> 128 3x3 at 7x7 0.026 ->
// 0.032 ms; MobileNetV2, EfficientNet-B0 and ResNet-50 at batch 1 ran 3-5% faster with one.
int64_t wanted_items(int threads) { return std::max(1, threads); }

// A dense item's blocks [ob0, ob1) in units of a whole panel's block: its tiles cover the panels'
// blocks in the range, and a piece of one block (a panel cut next to it) runs a tile that reads one
// weight vector per 12 broadcasts, slower than the wider ones (the tile loop on data in L1: 79% of
// 4 x 6's speed with 16 lanes, 91% of 2 x 6's with 8).
double range_work(int64_t ob0, int64_t ob1, int64_t OB, int64_t B) {
  if (ob1 <= ob0) return 0.0;
  const double narrow = B == 8 ? 1.0 / 0.91 : 1.0 / 0.79;
  const int64_t panels = kernels::blocked_panels(OB, B), per = kernels::blocked_panel_start(1, B);
  double work = static_cast<double>(ob1 - ob0);
  auto piece = [&](int64_t i) {  // the panels inside the range are whole; its ends may cut one
    const int64_t start = kernels::blocked_panel_start(i, B), end = kernels::blocked_panel_end(i, OB, B);
    if (std::min(end, ob1) - std::max(start, ob0) == 1 && end - start > 1) work += narrow - 1.0;
  };
  const int64_t first = std::min(ob0 / per, panels - 1), last = std::min((ob1 - 1) / per, panels - 1);
  piece(first);
  if (last != first) piece(last);
  return work;
}

// The longest thread's work over the mean of the work uncut, when parallel_for's static schedule
// hands `threads` threads contiguous runs of the items (image, band of `rows` rows, range of
// output blocks), an item's work its rows times its blocks' (range_work for a dense layer): 9
// equal items on 2 threads take as long as 10 (1.11), and a band or range shorter than the others
// leaves a thread idle. Runs of many items balance: 1 beyond 64 per thread.
// The work of the thread with the most, when parallel_for's static schedule hands `threads`
// threads contiguous runs of `items` items (OpenMP's: the first items % threads get one more),
// item i's work work(i).
template <class Work>
double longest_static_run(int64_t items, int64_t threads, Work&& work) {
  double longest = 0;
  for (int64_t t = 0, i = 0; t < threads; ++t) {
    double share = 0;
    for (const int64_t end = i + items / threads + (t < items % threads ? 1 : 0); i < end; ++i) share += work(i);
    longest = std::max(longest, share);
  }
  return longest;
}

double imbalance(const kernels::BlockedConv& g, int64_t B, int64_t rows, int64_t bands, int64_t OB, int64_t groups,
                 int64_t threads) {
  const int64_t items = g.N * bands * groups, per_group = (OB + groups - 1) / groups;
  if (items > 64 * threads) return 1.0;
  const int64_t last_rows = g.OH - (bands - 1) * rows;                        // the bands before it have `rows`
  const double longest = longest_static_run(items, threads, [&](int64_t i) {  // items: image, band, group
    const int64_t band = i / groups % bands, grp = i % groups;
    const int64_t ob0 = std::min(OB, grp * per_group), ob1 = std::min(OB, ob0 + per_group);
    const double work = g.depthwise ? static_cast<double>(ob1 - ob0) : range_work(ob0, ob1, OB, B);
    return static_cast<double>(band + 1 == bands ? last_rows : rows) * work;
  });
  const double total = static_cast<double>(g.N * g.OH * OB);
  return longest * static_cast<double>(threads) / total;
}

// How the work is cut over `threads`: a band's input (what every panel of an item reads again)
// at most kBandFloats, whether copied or read in place; of the cuts with at least wanted_items
// (or the most there are), the one that reads the fewest bytes, times its imbalance: every
// (image, band) reads all the weights once, every block range all the input once (what the
// kernel reads of it: a strided layer's band split by phase holds only the phases its taps
// read). A late layer with many weights and few pixels is cut by output blocks, an early one by
// rows. Depthwise: one block per item.
Cut cut(const kernels::BlockedConv& g, int64_t B, int64_t units, int threads) {
  const int64_t want = wanted_items(threads);
  if (g.depthwise) {
    // Reads in place, so a band costs only its rows: a block's rows are one item, cut into the
    // fewest bands that give enough items and balance within 2% (9 blocks on 2 threads whole ran
    // 5 against 4; in 2 bands each thread runs 9 halves), else the best balance there is.
    Cut best{g.OH, 1, units};
    double best_balance = 0;
    for (int64_t bands = 1; bands <= g.OH; ++bands) {
      const int64_t rows = (g.OH + bands - 1) / bands;
      if ((g.OH + rows - 1) / rows != bands) continue;  // the same cut as a smaller count
      if (g.N * bands * units < want && bands < g.OH) continue;
      const double balance = imbalance(g, B, rows, bands, units, units, std::max(1, threads));
      if (best_balance == 0 || balance < best_balance - 1e-9) best = {rows, bands, units}, best_balance = balance;
      if (balance <= 1.02) break;
    }
    return best;
  }
  int64_t most = g.OH;  // rows whose band fits
  while (most > 1 && kernels::blocked_scratch_floats(g, most, B) > kBandFloats) most = (most + 1) / 2;
  const int64_t pixel = g.in_blocked ? B : g.C;
  const double read = kernels::blocked_input_share(g);  // the share of the input's pixels read
  const double input = read * static_cast<double>(g.N) * g.H * g.W * kernels::blocked_input_blocks(g, B) * pixel;
  const double weights = static_cast<double>(g.OC) * g.C * g.KH * g.KW;
  const int64_t T = std::max(1, threads);
  Cut best{};
  double best_cost = 0;
  for (int64_t bands = (g.OH + most - 1) / most; bands <= g.OH; ++bands) {
    const int64_t rows = (g.OH + bands - 1) / bands;
    if ((g.OH + rows - 1) / rows != bands) continue;  // the same cut as a smaller count
    for (int64_t groups = 1; groups <= units; ++groups) {
      const int64_t items = g.N * bands * groups;
      // Too few items: more groups, else more bands (while there are more of either).
      if (items < want && (groups < units || bands < g.OH)) continue;
      // The fewest groups that give enough items read the least; a few more may balance better.
      for (int64_t more = groups; more <= std::min(units, groups + T - 1); ++more) {
        const double balance = imbalance(g, B, rows, bands, units, more, T);
        const double cost = (static_cast<double>(g.N * bands) * weights + static_cast<double>(more) * input) * balance;
        if (best.rows == 0 || cost < best_cost) best = {rows, bands, more}, best_cost = cost;
      }
      break;
    }
  }
  return best;
}

// The packed weight, kept between calls while the weight stays the same (prepared_weights.hpp).
std::shared_ptr<const PreparedWeight> packed_weight(const float* weight, int64_t floats, const kernels::BlockedConv& g,
                                                    int64_t B) {
  const PreparedTag tag{kBlockedPacked, B, g.OC, g.C, g.KH * g.KW * 4 + (g.in_blocked ? 1 : 0) + (g.depthwise ? 2 : 0)};
  return prepared_weight(tag, weight, floats, kernels::blocked_weight_floats(g, B), [&](float* dst) {
    // Over threads by panels: a training step packs every call (0.5 ms
    // for 512 -> 512 3x3 on one thread).
    const int64_t units = kernels::blocked_weight_units(g, B);
    parallel_for(
        units, [&](int64_t i, int) { kernels::pack_blocked_weight(dst, weight, g, B, i, i + 1); },
        2 * kStreamedFloatWork * kernels::blocked_weight_floats(g, B));
  });
}

// The convolution's work for parallel_for's thread decision, as conv2d_work counts a plain one:
// its multiply-adds and every float of its input, weight and output (padding lanes included)
// streamed once. A depthwise layer does 18 FLOPs per output float (3x3): by its FLOPs alone one
// of 960 channels at 7x7 ran on one thread, 0.034 ms, against 0.024 on two.
int64_t blocked_work(const kernels::BlockedConv& g, int64_t B) {
  const int64_t in_channels = g.in_blocked ? kernels::blocked_blocks(g.C, B) * B : g.C;
  const int64_t out_channels = kernels::blocked_blocks(g.OC, B) * B;
  const int64_t floats =
      g.N * in_channels * g.H * g.W + g.OC * (g.depthwise ? 1 : g.C) * g.KH * g.KW + g.N * out_channels * g.OH * g.OW;
  return g.flops() + kStreamedFloatWork * floats;
}

// The work items of one convolution over threads: images x bands of output rows x ranges of
// output blocks (cut()), each a call of the kernels.
void run_items(float* dst, const float* src, const float* wp, const float* packed_bias, const kernels::BlockedConv& g,
               int64_t B, const kernels::OutputStage& stage) {
  const int64_t OB = kernels::blocked_blocks(g.OC, B);
  // An item's block range is any: a dense layer's tiles then compute parts of weight panels, so a
  // layer of few panels (160 channels: 4 + 4 + 2 blocks) still splits evenly over the threads.
  const int64_t units = OB;
  const int64_t work = blocked_work(g, B);
  const Cut c = cut(g, B, units, work < serial_work() ? 1 : get_num_threads());  // as parallel_for decides
  const int64_t rows = c.rows, bands = c.bands, groups = c.groups, per_group = (units + groups - 1) / groups;
  const int64_t scratch_floats = kernels::blocked_scratch_floats(g, rows, B);
  parallel_for(
      g.N * bands * groups,
      [&](int64_t item, int) {
        const int64_t n = item / (bands * groups), band = item / groups % bands, grp = item % groups;
        const int64_t u0 = grp * per_group, u1 = std::min(units, u0 + per_group);
        if (u0 >= u1) return;
        const int64_t ob0 = u0, ob1 = u1;
        const int64_t oh0 = band * rows, oh1 = std::min(g.OH, oh0 + rows);
        float* scratch = workspace(static_cast<size_t>(scratch_floats) * sizeof(float));
        kernels::blocked_conv(dst, src, wp, packed_bias, g, n, ob0, ob1, oh0, oh1, scratch, stage);
      },
      work);
}

// Plain [N, C, P] -> blocked [N, ceil(C/B), P, B] (padding lanes zero), over threads by (image,
// block).
void to_blocked_all(float* dst, const float* src, int64_t N, int64_t C, int64_t P, int64_t B) {
  const int64_t CB = kernels::blocked_blocks(C, B);
  parallel_for(
      N * CB,
      [&](int64_t i, int) {
        kernels::to_blocked_block(dst + i / CB * CB * P * B, src + i / CB * C * P, C, P, B, i % CB);
      },
      (N * C * P + N * CB * B * P) * kStreamedFloatWork);  // a copy: every float read and written once
}

// Blocked [N, ceil(C/B), P, B] -> plain [N, C, P], over threads by (image, block); each item then
// calls after(image, block) while that block's planes are in its cache.
template <class After>
void from_blocked_all(float* dst, const float* src, int64_t N, int64_t C, int64_t P, int64_t B, After&& after) {
  const int64_t CB = kernels::blocked_blocks(C, B);
  parallel_for(
      N * CB,
      [&](int64_t i, int) {
        kernels::from_blocked_block(dst + i / CB * C * P, src + i / CB * CB * P * B, C, P, B, i % CB);
        after(i / CB, i % CB);
      },
      (N * C * P + N * CB * B * P) * kStreamedFloatWork);
}

}  // namespace

int64_t blocked_lanes() { return kernels::blocked_lanes(); }

Shape conv2d_blocked_shape(const Tensor& input, int64_t channels, const Tensor& weight,
                           const BlockedConvOptions& options) {
  const int64_t B = kernels::blocked_lanes();
  const kernels::BlockedConv g = geometry(input, channels, weight, Tensor(), options, B);
  return {g.N, kernels::blocked_blocks(g.OC, B), g.OH, g.OW, B};
}

int64_t conv2d_blocked_work_items(const Tensor& input, int64_t channels, const Tensor& weight,
                                  const BlockedConvOptions& options, int threads) {
  const int64_t B = kernels::blocked_lanes();
  const kernels::BlockedConv g = geometry(input, channels, weight, Tensor(), options, B);
  const int64_t OB = kernels::blocked_blocks(g.OC, B);
  const Cut c = cut(g, B, OB, threads);
  return g.N * c.bands * c.groups;
}

Tensor conv2d_blocked(const Tensor& input, int64_t channels, const Tensor& weight, const Tensor& bias,
                      const BlockedConvOptions& options, const kernels::Epilogue& epilogue, const Tensor& residual) {
  const int64_t B = kernels::blocked_lanes();
  const kernels::BlockedConv g = geometry(input, channels, weight, bias, options, B);
  const int64_t OB = kernels::blocked_blocks(g.OC, B);
  const Shape out_shape{g.N, OB, g.OH, g.OW, B};
  Tensor res;
  if (residual.defined()) {
    if (residual.shape() != out_shape) {
      fail("the residual " + shape_to_string(residual.shape()) + " is not of the output's shape " +
           shape_to_string(out_shape));
    }
    res = residual.to(DType::Float32).contiguous();
  }
  const Tensor x = input.contiguous(), w = weight.contiguous();
  const float* wdata = w.data();
  const auto packed = packed_weight(wdata, w.numel(), g, B);
  float* packed_bias = workspace(static_cast<size_t>(OB * B) * sizeof(float), WorkspaceSlot::Shared);
  const Tensor b = bias.defined() ? bias.to(DType::Float32).contiguous() : Tensor();
  kernels::pack_blocked_bias(packed_bias, b.defined() ? b.data() : nullptr, g, B);

  Tensor out = Tensor::empty(out_shape);
  const kernels::OutputStage stage{epilogue, res.defined() ? std::as_const(res).data() : nullptr};
  run_items(out.data_to_write(), std::as_const(x).data(), packed->prepared.data(), packed_bias, g, B, stage);
  return out;
}

namespace {

// A pointwise layer and the depthwise layer after it, fused (conv2d_blocked_pointwise_depthwise).
// An item: image n, depthwise output rows [r0, r1), channel blocks [b0, b1) of the middle tensor.
// It computes the pointwise layer's rows of those blocks that its depthwise rows read into
// scratch, then the depthwise rows from there: a range of blocks costs nothing twice, a band
// recomputes the middle rows its neighbours read too ((KH - 1) * dilation - stride + 1 of them).
struct FusedCut {
  int64_t rows, bands, groups;
};

// The middle rows [e0, e1) that depthwise rows [r0, r1) read, inside the image.
std::pair<int64_t, int64_t> middle_rows(const kernels::BlockedConv& dw, int64_t r0, int64_t r1) {
  const int64_t e0 = std::max<int64_t>(0, r0 * dw.stride_h - dw.pad_top);
  const int64_t e1 = std::min(dw.H, (r1 - 1) * dw.stride_h - dw.pad_top + (dw.KH - 1) * dw.dilation_h + 1);
  return {e0, std::max(e0, e1)};
}

// A middle band of at most this many floats per item: 1 MiB, as kBandFloats, so that the band
// the pointwise layer writes is still in L2 when the depthwise layer reads it.
constexpr int64_t kMiddleFloats = 256 * 1024;

// The cut whose longest thread (parallel_for's static runs) does the least work, counted as the
// pointwise layer's multiply-adds on the rows computed, recomputed ones included, and the
// depthwise layer's at a quarter of the rate (it loads a vector per multiply-add): of the band
// counts from the fewest whose band fits kMiddleFloats up to 4 per thread more, and up to a range
// of blocks per thread.
FusedCut fused_cut(const kernels::BlockedConv& pw, const kernels::BlockedConv& dw, int64_t B, int threads) {
  const int64_t MB = kernels::blocked_blocks(dw.C, B), T = std::max(1, threads);
  const double pw_row = static_cast<double>(pw.W) * static_cast<double>(pw.C);  // per middle row and lane
  const double dw_row = 4.0 * static_cast<double>(dw.OW) * static_cast<double>(dw.KH * dw.KW);
  int64_t fewest = 1;
  while (fewest < dw.OH) {
    const int64_t rows = (dw.OH + fewest - 1) / fewest;
    const auto [e0, e1] = middle_rows(dw, 0, rows);
    if ((e1 - e0) * dw.W * B * ((MB + T - 1) / T) <= kMiddleFloats) break;
    ++fewest;
  }
  FusedCut best{dw.OH, 1, 1};
  double best_cost = -1;
  for (int64_t groups = 1; groups <= std::min(MB, T); ++groups) {
    const int64_t per = (MB + groups - 1) / groups;
    for (int64_t bands = fewest; bands <= std::min(dw.OH, fewest + 4 * T); ++bands) {
      const int64_t rows = (dw.OH + bands - 1) / bands;
      if ((dw.OH + rows - 1) / rows != bands) continue;  // the same cut as a smaller count
      const auto [f0, f1] = middle_rows(dw, 0, rows);
      if (bands > fewest && (f1 - f0) * dw.W * B * per > kMiddleFloats) continue;
      const int64_t items = dw.N * bands * groups;
      if (items < T && (bands < dw.OH || groups < MB)) continue;
      const double longest = longest_static_run(items, T, [&](int64_t item) {
        const int64_t band = item / groups % bands, grp = item % groups;
        const int64_t r0 = band * rows, r1 = std::min(dw.OH, r0 + rows);
        const int64_t b0 = std::min(MB, grp * per), b1 = std::min(MB, b0 + per);
        const auto [e0, e1] = middle_rows(dw, r0, r1);
        return static_cast<double>(b1 - b0) *
               (static_cast<double>(e1 - e0) * pw_row + static_cast<double>(r1 - r0) * dw_row);
      });
      if (best_cost < 0 || longest < best_cost * 0.999) best = {rows, bands, groups}, best_cost = longest;
    }
  }
  return best;
}

}  // namespace

bool fuses_pointwise_depthwise(const Shape& middle) {
  // The middle tensor of one image [CB, H, W, B]: fused where it outgrows half an L2 (1 MiB).
  if (middle.size() != 5) return false;
  return middle[1] * middle[2] * middle[3] * middle[4] > kMiddleFloats;
}

Tensor conv2d_blocked_pointwise_depthwise(const Tensor& input, int64_t channels, const Tensor& pw_weight,
                                          const Tensor& pw_bias, const kernels::Epilogue& pw_epilogue,
                                          const Tensor& dw_weight, const Tensor& dw_bias,
                                          const BlockedConvOptions& dw_options, const kernels::Epilogue& epilogue,
                                          const Tensor& residual) {
  const int64_t B = kernels::blocked_lanes();
  BlockedConvOptions o = dw_options;
  o.depthwise = true;
  auto apart = [&] {  // the two layers one after the other
    const Tensor y = conv2d_blocked(input, channels, pw_weight, pw_bias, BlockedConvOptions{}, pw_epilogue, Tensor());
    return conv2d_blocked(y, pw_weight.dim() == 4 ? pw_weight.shape()[0] : 0, dw_weight, dw_bias, o, epilogue,
                          residual);
  };
  if (input.dim() != 5) return apart();  // a plain input (a first layer)
  const kernels::BlockedConv pw = geometry(input, channels, pw_weight, pw_bias, BlockedConvOptions{}, B);
  if (pw.KH != 1 || pw.KW != 1)
    fail("the fused layer's first weight must be 1x1, got " + shape_to_string(pw_weight.shape()));
  const Shape middle{pw.N, kernels::blocked_blocks(pw.OC, B), pw.OH, pw.OW, B};
  const kernels::BlockedConv dw = geometry(middle, DType::Float32, pw.OC, dw_weight, dw_bias, o, B);
  const int64_t OB = kernels::blocked_blocks(dw.OC, B), MB = middle[1];
  const Shape out_shape{dw.N, OB, dw.OH, dw.OW, B};
  if (residual.defined() && residual.shape() != out_shape) {
    fail("the residual " + shape_to_string(residual.shape()) + " is not of the output's shape " +
         shape_to_string(out_shape));
  }
  if (!fuses_pointwise_depthwise(middle)) return apart();
  const Tensor x = input.contiguous(), w1 = pw_weight.contiguous(), w2 = dw_weight.contiguous();
  const Tensor res = residual.defined() ? residual.to(DType::Float32).contiguous() : Tensor();
  const auto packed1 = packed_weight(w1.data(), w1.numel(), pw, B);
  const auto packed2 = packed_weight(w2.data(), w2.numel(), dw, B);
  float* biases = workspace(static_cast<size_t>(2 * MB * B) * sizeof(float), WorkspaceSlot::Shared);
  const Tensor b1 = pw_bias.defined() ? pw_bias.to(DType::Float32).contiguous() : Tensor();
  const Tensor b2 = dw_bias.defined() ? dw_bias.to(DType::Float32).contiguous() : Tensor();
  kernels::pack_blocked_bias(biases, b1.defined() ? b1.data() : nullptr, pw, B);
  kernels::pack_blocked_bias(biases + MB * B, b2.defined() ? b2.data() : nullptr, dw, B);

  Tensor out = Tensor::empty(out_shape);
  const int64_t work = blocked_work(pw, B) + blocked_work(dw, B);
  const FusedCut c = fused_cut(pw, dw, B, work < serial_work() ? 1 : get_num_threads());
  const int64_t per = (MB + c.groups - 1) / c.groups, in_image = kernels::blocked_blocks(pw.C, B) * pw.H * pw.W * B;
  const int64_t out_plane = dw.OH * dw.OW * B;
  const float* xd = x.data();
  float* od = out.data_to_write();
  parallel_for(
      dw.N * c.bands * c.groups,
      [&](int64_t item, int) {
        const int64_t n = item / (c.bands * c.groups), band = item / c.groups % c.bands, grp = item % c.groups;
        const int64_t r0 = band * c.rows, r1 = std::min(dw.OH, r0 + c.rows);
        const int64_t b0 = std::min(MB, grp * per), b1 = std::min(MB, b0 + per);
        if (b0 >= b1) return;
        const auto [e0, e1] = middle_rows(dw, r0, r1);
        kernels::BlockedConv a = pw, d = dw;  // the band's: one image, the middle rows [e0, e1)
        a.N = d.N = 1;
        a.H = a.OH = e1 - e0;
        a.in_plane = pw.H * pw.W * B;  // read in place from the image's rows e0...
        d.H = e1 - e0;
        d.pad_top = dw.pad_top + e0 - r0 * dw.stride_h;
        d.OH = r1 - r0;
        d.out_plane = out_plane;                           // ... and written in place to its rows r0...
        const int64_t band_floats = b1 * a.OH * a.OW * B;  // blocks [0, b1): the kernel's offsets
        const int64_t scratch =
            std::max(kernels::blocked_scratch_floats(a, a.OH, B), kernels::blocked_scratch_floats(d, d.OH, B));
        float* mid = workspace(static_cast<size_t>((band_floats + 15) / 16 * 16 + scratch) * sizeof(float));
        float* tmp = mid + (band_floats + 15) / 16 * 16;
        if (a.OH > 0) {
          kernels::blocked_conv(mid, xd + n * in_image + e0 * pw.W * B, packed1->prepared.data(), biases, a, 0, b0, b1,
                                0, a.OH, tmp, kernels::OutputStage{pw_epilogue, nullptr});
        }
        const int64_t at = n * OB * out_plane + r0 * dw.OW * B;
        kernels::blocked_conv(od + at, mid, packed2->prepared.data(), biases + MB * B, d, 0, b0, b1, 0, d.OH, tmp,
                              kernels::OutputStage{epilogue, res.defined() ? res.data() + at : nullptr});
      },
      work);
  return out;
}

Tensor to_blocked(const Tensor& x_arg) {
  if (x_arg.dim() < 2) throw ShapeError("to_blocked: expected [N, C, ...], got " + shape_to_string(x_arg.shape()));
  const int64_t B = kernels::blocked_lanes();
  const Tensor x = x_arg.to(DType::Float32).contiguous();
  Shape shape = x.shape();
  const int64_t N = shape[0], C = shape[1], P = x.numel() / std::max<int64_t>(1, N * C);
  shape[1] = kernels::blocked_blocks(C, B);
  shape.push_back(B);
  Tensor out = Tensor::empty(shape);
  to_blocked_all(out.data_to_write(), std::as_const(x).data(), N, C, P, B);
  return out;
}

void to_blocked_into(Tensor& out, int64_t first, const Tensor& x_arg) {
  const int64_t B = kernels::blocked_lanes();
  const Tensor x = x_arg.to(DType::Float32).contiguous();
  const Shape& s = x.shape();
  Shape want = s;
  if (s.size() >= 2) want[0] = out.dim() > 0 ? out.shape()[0] : 0, want[1] = kernels::blocked_blocks(s[1], B);
  want.push_back(B);
  if (s.size() < 2 || out.shape() != want || !out.is_contiguous() || first < 0 || first + s[0] > want[0]) {
    throw ShapeError("to_blocked_into: images [" + std::to_string(first) + ", +" +
                     std::to_string(s.empty() ? 0 : s[0]) + ") of " + shape_to_string(x.shape()) +
                     " do not fit a blocked " + shape_to_string(out.shape()));
  }
  const int64_t N = s[0], C = s[1], P = x.numel() / std::max<int64_t>(1, N * C);
  to_blocked_all(out.data_to_write() + first * want[1] * P * B, std::as_const(x).data(), N, C, P, B);
}

Tensor from_blocked(const Tensor& x_arg, int64_t channels) {
  const int64_t B = kernels::blocked_lanes();
  const Shape& s = x_arg.shape();
  if (x_arg.dim() < 3 || s.back() != B || s[1] != kernels::blocked_blocks(channels, B)) {
    throw ShapeError("from_blocked: expected a blocked tensor of " + std::to_string(channels) + " channels ([N, " +
                     std::to_string(kernels::blocked_blocks(channels, B)) + ", ..., " + std::to_string(B) + "]), got " +
                     shape_to_string(s));
  }
  const Tensor x = x_arg.contiguous();
  Shape shape(s.begin(), s.end() - 1);
  shape[1] = channels;
  const int64_t N = s[0], P = x.numel() / std::max<int64_t>(1, N * s[1] * B);
  Tensor out = Tensor::empty(shape);
  from_blocked_all(out.data_to_write(), std::as_const(x).data(), N, channels, P, B, [](int64_t, int64_t) {});
  return out;
}

namespace {

typedef float Lanes8 __attribute__((vector_size(32)));  // 8 floats (explicit: GCC left these loops scalar)

inline Lanes8 load8(const float* p) {
  Lanes8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The mean of each of B lanes over P pixels of one block: runs of 32 pixels summed in float (B
// lanes as B / 8 vectors), the runs' sums in double. Each run's error is at most 31 roundings of
// its own magnitude, so the mean stays within a few ulp, as the plain pool's plane_mean, at a
// fraction of an all-double sum's cost (a conversion per value).
template <int B>
void block_means(float* dst, const float* src, int64_t P) {
  constexpr int64_t kRun = 32;
  double sum[B] = {};
  for (int64_t q0 = 0; q0 < P; q0 += kRun) {
    Lanes8 run[B / 8] = {};
    for (int64_t q = q0; q < std::min(P, q0 + kRun); ++q)
      for (int h = 0; h < B / 8; ++h) run[h] += load8(src + q * B + h * 8);
    for (int l = 0; l < B; ++l) sum[l] += run[l / 8][l % 8];
  }
  for (int l = 0; l < B; ++l) dst[l] = static_cast<float>(sum[l] / static_cast<double>(std::max<int64_t>(1, P)));
}

// dst = src * k lane by lane over P pixels of one block.
template <int B>
void scale_block(float* dst, const float* src, const float* k, int64_t P) {
  Lanes8 lanes[B / 8];
  for (int h = 0; h < B / 8; ++h) lanes[h] = load8(k + h * 8);
  for (int64_t q = 0; q < P; ++q) {
    for (int h = 0; h < B / 8; ++h) {
      const Lanes8 v = load8(src + q * B + h * 8) * lanes[h];
      std::memcpy(dst + q * B + h * 8, &v, sizeof v);
    }
  }
}

}  // namespace

Tensor global_average_pool_blocked(const Tensor& x_arg) {
  const int64_t B = kernels::blocked_lanes();
  if (x_arg.dim() != 5 || x_arg.shape()[4] != B || x_arg.dtype() != DType::Float32) {
    throw ShapeError("global_average_pool_blocked: expected float32 [N, CB, H, W, " + std::to_string(B) + "], got " +
                     shape_to_string(x_arg.shape()));
  }
  const Tensor x = x_arg.contiguous();
  const Shape& s = x.shape();
  const int64_t planes = s[0] * s[1], P = s[2] * s[3];
  Tensor out = Tensor::empty({s[0], s[1], 1, 1, B});
  const float* src = x.data();
  float* d = out.data_to_write();
  parallel_for(
      planes,
      [&](int64_t i, int) {
        if (B == 8) return block_means<8>(d + i * B, src + i * P * B, P);
        block_means<16>(d + i * B, src + i * P * B, P);
      },
      x.numel() * kStreamedFloatWork);  // every float read once: by its FLOPs, [1, 32, 112, 112] ran on one thread
  return out;
}

Tensor scale_blocked(const Tensor& x_arg, const Tensor& scale_arg) {
  const Shape &xs = x_arg.shape(), &ss = scale_arg.shape();
  const bool fits = x_arg.dim() == 5 && scale_arg.dim() == 5 && x_arg.dtype() == DType::Float32 &&
                    scale_arg.dtype() == DType::Float32 && ss[0] == xs[0] && ss[1] == xs[1] && ss[2] == 1 &&
                    ss[3] == 1 && ss[4] == xs[4] && xs[4] == kernels::blocked_lanes();
  if (!fits) return Tensor();
  const Tensor x = x_arg.contiguous(), scale = scale_arg.contiguous();
  const int64_t B = xs[4], P = xs[2] * xs[3];
  Tensor out = Tensor::empty(xs);
  const float *src = x.data(), *sc = scale.data();
  float* d = out.data_to_write();
  parallel_for(
      xs[0] * xs[1],
      [&](int64_t i, int) {
        if (B == 8) return scale_block<8>(d + i * P * B, src + i * P * B, sc + i * B, P);
        scale_block<16>(d + i * P * B, src + i * P * B, sc + i * B, P);
      },
      2 * x.numel() * kStreamedFloatWork);
  return out;
}

// --- the plain-layout algorithm ("blocked" in the algorithm table) --------------------------------

namespace {

// Whether the plain algorithm reads the input as it is (all C channels of a pixel interleaved in
// the band copy, as for a network's first layer) rather than converting it to blocks first: with
// fewer channels than a block, whose lanes would mostly hold padding.
bool reads_plain(const Conv2dGeometry& g, int64_t B) { return g.C < B; }

kernels::BlockedConv blocked_geometry(const Conv2dGeometry& g, int64_t B) {
  kernels::BlockedConv b{};
  b.N = g.N, b.C = g.C, b.H = g.H, b.W = g.W, b.OC = g.OC, b.KH = g.KH, b.KW = g.KW, b.OH = g.OH, b.OW = g.OW;
  b.stride_h = g.stride_h, b.stride_w = g.stride_w, b.dilation_h = g.dilation_h, b.dilation_w = g.dilation_w;
  b.pad_top = g.pad_top, b.pad_left = g.pad_left;
  b.in_blocked = !reads_plain(g, B);
  return b;
}

}  // namespace

bool conv2d_blocked_supports(const Conv2dGeometry& g) { return g.groups == 1; }

int64_t conv2d_blocked_workspace_bytes(const Conv2dGeometry& g) {
  const int64_t B = kernels::blocked_lanes();
  const kernels::BlockedConv b = blocked_geometry(g, B);
  const int64_t in = b.in_blocked ? g.N * kernels::blocked_blocks(g.C, B) * g.H * g.W * B : 0;
  const int64_t out = g.N * kernels::blocked_blocks(g.OC, B) * g.OH * g.OW * B;
  return (kernels::blocked_weight_floats(b, B) + kernels::blocked_blocks(g.OC, B) * B + in + out +
          kernels::blocked_scratch_floats(b, g.OH, B)) *
         4;
}

// A plain [N, C, H, W] convolution through the blocked kernels: the input converted to blocks
// (or read as it is, reads_plain), the output computed blocked into a temporary and converted back
// block by block, each block's planes finishing with the stage there (the residual is plain).
// The layout changes read and write each activation once more, which pays where the blocked
// kernels' register tile (4 blocks of 16 channels x 6 pixels with AVX-512, all 32 registers' worth)
// beats the plain algorithms' (see conv2d_select.cpp).
void conv2d_blocked_plain(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g,
                          const OutputStage& stage) {
  const int64_t B = kernels::blocked_lanes();
  const kernels::BlockedConv b = blocked_geometry(g, B);
  const int64_t CB = kernels::blocked_blocks(g.C, B), OB = kernels::blocked_blocks(g.OC, B);
  const int64_t P = g.H * g.W, OP = g.OH * g.OW;
  const auto packed = packed_weight(weight, g.OC * g.C * g.KH * g.KW, b, B);
  // Shared by the threads: the bias, the blocked input and output (workspace, not tensors: a fresh
  // allocation per call faulted its pages in again, 0.13 ms of a 0.4 ms 256 -> 1024 1x1 at 14x14).
  const int64_t in_floats = b.in_blocked ? g.N * CB * P * B : 0;
  float* packed_bias =
      workspace(static_cast<size_t>(OB * B + in_floats + g.N * OB * OP * B) * sizeof(float), WorkspaceSlot::Shared);
  kernels::pack_blocked_bias(packed_bias, bias, b, B);
  float* blocked_in = packed_bias + OB * B;  // [N, CB, H, W, B] (unused when reads_plain)
  float* y = blocked_in + in_floats;         // [N, OB, OH, OW, B]
  if (b.in_blocked) to_blocked_all(blocked_in, in, g.N, g.C, P, B);
  // With no residual the kernels apply the stage as they store (it is then elementwise).
  const bool fused = stage.residual == nullptr;
  run_items(y, b.in_blocked ? blocked_in : in, packed->prepared.data(), packed_bias, b, B,
            fused ? stage : OutputStage{});
  from_blocked_all(out, y, g.N, g.OC, OP, B, [&](int64_t n, int64_t ob) {
    if (!fused) apply_stage(out, stage, g, ob * B, std::min(g.OC, (ob + 1) * B), n * OP, (n + 1) * OP);
  });
}

}  // namespace tinytorch::ops

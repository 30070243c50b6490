// Algorithm selection for conv2d: the heuristic, autotuning and its cache.
#include "ops/conv2d_select.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/verbose.hpp"
#include "core/workspace.hpp"
#include "kernels/blocked/blocked.hpp"
#include "kernels/conv2d.hpp"
#include "kernels/cpu.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "kernels/peak/peak.hpp"
#include "kernels/winograd/winograd.hpp"
#include "ops/prepared_weights.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch::ops {
namespace {

bool supports(Conv2dAlgorithm a, const Conv2dGeometry& g) { return conv2d_algorithm_row(a).supports(g); }

// --- autotuning ---------------------------------------------------------------------------------
// The first call of each shape times every algorithm the table lets autotuning try and keeps the
// fastest, keyed by the shape, the thread count and the ISA (which change what is fastest).

using TuneKey = std::array<int64_t, 18>;

// clang-format off
TuneKey tune_key(const Conv2dGeometry& g) {
  return {g.N, g.C, g.H, g.W, g.OC, g.KH, g.KW, g.OH, g.OW, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
          g.dilation_h, g.dilation_w, g.groups, get_num_threads(), static_cast<int64_t>(kernels::cpu_isa())};
}
// clang-format on

struct TuneCache {
  std::mutex mutex;
  std::map<TuneKey, Conv2dAlgorithm> best;
};

TuneCache& tune_cache() {
  static TuneCache cache;
  return cache;
}

bool tuned(const Conv2dGeometry& g, Conv2dAlgorithm& algorithm) {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  const auto it = cache.best.find(tune_key(g));
  if (it == cache.best.end()) return false;
  algorithm = it->second;
  return true;
}

// Times each candidate on the call's own tensors and remembers the fastest. `out` is overwritten;
// the caller runs the winner on it afterwards. The heuristic's choice runs first; when that takes
// longer than `limit` seconds it is kept untimed against the others (a large layer, where the
// heuristic is surest and timing costs most: the graph runtime's default). Every other candidate
// runs once (preparing its weights, warming the caches); one that took over kAbandon times the
// fastest first run is not timed again. The rest take turns for three rounds and keep their best,
// so that a burst of another tenant's work on this machine lands on all of them rather than one.
Conv2dAlgorithm tune(const Conv2dGeometry& g, const Conv2dCall& d, double limit) {
  constexpr double kAbandon = 5.0;
  auto time_run = [&](const Conv2dAlgorithmRow& row) {
    const auto start = std::chrono::steady_clock::now();
    row.run(d.out, d.in, d.w, d.b, g, OutputStage{});
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const Conv2dAlgorithm heuristic = conv2d_heuristic(g);
  std::vector<const Conv2dAlgorithmRow*> candidates{&conv2d_algorithm_row(heuristic)};
  std::vector<double> first{time_run(*candidates[0])};
  Conv2dAlgorithm choice = heuristic;
  if (first[0] <= limit) {
    for (const Conv2dAlgorithmRow& row : conv2d_algorithm_table()) {
      if (!row.autotune || !row.supports(g) || row.id == heuristic) continue;
      candidates.push_back(&row);
      first.push_back(time_run(row));
    }
    const double fastest_first = *std::min_element(first.begin(), first.end());
    std::vector<double> best(candidates.size(), std::numeric_limits<double>::infinity());
    for (int round = 0; round < 3; ++round) {
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (first[i] <= kAbandon * fastest_first) best[i] = std::min(best[i], time_run(*candidates[i]));
      }
    }
    choice = candidates[static_cast<size_t>(std::min_element(best.begin(), best.end()) - best.begin())]->id;
    // The losers' prepared weights would stay in the cache for nothing (DenseNet-121 at batch 8:
    // 543 -> 693 MiB of peak memory before they were dropped).
    if (choice == Conv2dAlgorithm::Winograd) {
      drop_prepared_weights(d.w, {kWinogradF43, kWinogradStride2});
    } else if (choice == Conv2dAlgorithm::Direct) {
      drop_prepared_weights(d.w, {kDirectPacked});
    } else if (choice == Conv2dAlgorithm::Ocblock) {
      drop_prepared_weights(d.w, {kOcBlockPacked});
    } else if (choice == Conv2dAlgorithm::Blocked) {
      drop_prepared_weights(d.w, {kBlockedPacked});
    } else {
      drop_prepared_weights(d.w, {});
    }
    // And the shared buffer a loser grew (the blocked algorithm's copies of the input and output:
    // 4.6 MiB of ResNet-18's at batch 8): the choice grows it again if it needs it.
    release_workspace(WorkspaceSlot::Shared);
  }
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  cache.best[tune_key(g)] = choice;
  return choice;
}

// The longest first run of the heuristic's choice for which a Conv2dTuningScope times the others.
constexpr double kScopeTuneLimit = 2e-3;

thread_local int tuning_scope_depth = 0;

// TINYTORCH_CONV_AUTOTUNE=0: no autotuning at all, not even in a Conv2dTuningScope.
bool autotune_refused() {
  static const bool refused = [] {
    const char* env = std::getenv("TINYTORCH_CONV_AUTOTUNE");
    return env && std::string(env) == "0";
  }();
  return refused;
}

Conv2dAlgorithm algorithm_from_environment() {
  const char* env = std::getenv("TINYTORCH_CONV_ALGO");
  if (!env || !*env) return Conv2dAlgorithm::Auto;
  try {
    return conv2d_algorithm_from_string(env);
  } catch (const ArgumentError&) {
    return Conv2dAlgorithm::Auto;  // an unknown name falls back to the heuristic, never stops the program
  }
}

}  // namespace

// The heuristic. Each rule is a property of the algorithms, checked on the shape sweep
// (bench/conv_sweep.py, docs/PERFORMANCE.md), not fitted to a list of shapes:
// - depthwise layers: the depthwise kernel, but for 1x1 ones of 8 (8 lanes) or 4 (16 lanes) or
//   more outputs per channel and ones with a window of 16 or more (depthwise_kernel_fits below),
//   which go on through the rules as grouped layers of one input channel per group (never
//   ocblock: below);
// - 3x3, stride 1, at least 16 channels in and out, where Winograd F(4x4, 3x3) repays its
//   transforms by winograd_f43_repays' cost model below (the micro-kernel's lanes it runs over, not
//   the tiles: with fewer tiles than a panel it computes only the vectors they fill);
// - 3x3, stride 2, at least 16 channels in and out and 4 panels of tiles: Winograd's stride-2
//   scheme (25 multiplies for 36: it saves less than F(4x4, 3x3), so it needs more tiles to repay
//   its transforms);
// - images of fewer output pixels than the micro-kernel's tile is wide, but more than one, and a
//   kernel of several taps: ocblock, vectors across output channels reading a padded window (the
//   batched algorithm's im2col gather there is a strided copy per tap and pixel, which costs more
//   than the multiply-adds when the output channels are few; with one pixel per image ocblock's
//   register block holds one pixel, and batched's GEMM over the images wins);
// - fewer than 16 pixel tiles in all images, a window of at least 3x3 and at least 8 output
//   channels per group: ocblock too. The direct kernel re-reads each weight panel once per pixel
//   tile, so with few tiles its weights come from L2 and beyond for little work each, while ocblock
//   keeps a K block of weights in L1 for all the pixels (512 -> 512 3x3 at 7x7, 14x14 at batch 1:
//   1.1-1.3x direct). With fewer taps (2x2 windows) or output channels (a group's channels fill
//   the 16 lanes) it loses; measured on 40 random shapes outside the benchmark's (PERFORMANCE.md);
// - images of fewer output pixels than the micro-kernel's tile is wide: batched, which makes the
//   pixels of all images the rows of one GEMM (per image, every tile would be mostly empty), but
//   for pointwise layers of at least 8 pixels per image, which go on to the rules below: the direct
//   kernel reads a pointwise layer's patches in place, its tiles running through the images, and
//   with such images a tile reads the runs of at most three (16-pixel tiles) or five. Forced side by side
//   (bench/rule_study.py pointwise-small-images; 2 threads, eager): with AVX-512's 32-pixel tiles
//   (Zen 4, --seed 2041 --count 90) at 16-31 pixels per image direct ran 1.20x batched's geomean
//   (39 of 61 faster, 13 slower), at 9-15 1.10x with losses to 0.77x, at 2-8 0.73x; checked on 60
//   more of 16-31 (--seed 2042): 1.23x, 42 faster, 9 slower. With AVX2's 16 (AMD EPYC Zen 3,
//   2026-12-07, --seed 2613 --count 60 --pixels 2,15): at 8-15 pixels 1.31x (39 layers, 32 faster
//   by 5%, 5 slower, the worst 0.62x), at 2-7 1.16x but 6 of 21 slower, down to 0.64x (batch 32 of
//   2-5 pixels an image: a tile meets up to 8 images). Pointwise layers of fewer than 128 pixels
//   in all images once went batched with AVX2 (1 x 1024 -> 256 at 7x7: 1.3x direct, before the
//   direct kernel's cuts by threads and packed tiles); now direct ran 1.61x batched's geomean on
//   40 random ones of 16-127 pixels per image at batch 1-4 (--seed 2612), faster on 39, slower on
//   none (docs/PERFORMANCE.md). Half a tile's 16 pixels was AVX-512's bound until measured on AMD's
//   Zen 5 (family 26, 512-bit FMAs at twice the 256-bit rate, 2026-12-08, --pixels 2,15): --seed
//   4301 (with the machine's OPENBLAS_CORETYPE=Haswell: batched's sgemm at 256 bits) at 8-15
//   pixels direct 2.05x batched's geomean over 38 layers, faster on all, at 6-7 1.53x, at 2-5
//   1.19x with 4 of 12 slower (to 0.54x); --seed 4302 with OpenBLAS's own 512-bit kernels, at 8-15
//   1.32x over 40 (36 faster, 2 slower, to 0.76x), at 6-7 1.07x (2 of 6 slower), at 2-5 1.09x (7
//   of 14 slower, to 0.51x); --seed 4303 --pixels 8,15 (Haswell's kernels again): 2.01x over 40, 39
//   faster, 1 slower. So 8 pixels with either ISA (Zen 4's 9-15 bin above: 1.10x);
// - first layers of 3-8 input channels at stride 3 or more, the window at least as wide: blocked
//   where its 16 lanes run at twice 8 lanes' rate (few_channels_strided_goes_blocked);
// - grouped layers (not depthwise) of 9 taps or more per channel with 8 or more output channels
//   per group (a group fills a vector of ocblock's): ocblock. The direct kernel meets each pixel
//   tile's input rows with a group's one or two 6-row weight panels only; ocblock broadcasts each
//   input once against all of a group's 8 or 16 channels, from a window in the thread's cache.
//   Measured on 96 seeded random grouped shapes (groups 2-64, 4-96 channels per group, windows 3x3
//   to 7x7, 5x5 to 56x56 outputs, batch 1, 2, 8; AVX2, docs/PERFORMANCE.md): 84 picked, geomean
//   1.44x direct's, 6 below 0.95x (down to 0.71x). With AVX-512 the direct kernel's vectors are
//   twice as wide and ocblock's are not, so ocblock wins only where the direct kernel's 6-row
//   panels are mostly empty: 5 to 32 output channels per group (more than half of ocblock's 8
//   lanes filled; beyond 32 all but the last of direct's panels are full), or more when strided.
//   Drawn on 100 random grouped shapes as above (a new seed): 68 picked, geomean 1.26x
//   all-direct ("at least 8": 75 for 1.09x, 25 losing by more than 5%); checked on 100 more
//   (another seed): 68 picked, 1.20x, 15 losing by more than 5% (the worst 0.6x: few input
//   channels per group on large images);
// - grouped layers of 1-4 output channels and 2 or more input channels per group, with a window of
//   several taps: ocblock, for the same reason, its interleaved blocks (several pixels per vector)
//   filling the lanes (grouped_few_outputs below: measured on 80 random grouped layers, checked on
//   80 more per ISA);
// - dense layers of at most 16 output channels, strided, of 8 or more input channels and a window
//   of several taps, on images of 32 output pixels or more: ocblock, one window copied where the
//   direct kernel copies a column plane per row phase and column for few multiply-adds each
//   (few_outputs_strided below: measured on 80 random such layers, checked on 80 more per ISA);
// - groups with fewer than 32 taps (C/groups*KH*KW) at batch > 1 whose stride skips input rows or
//   columns that no tap reads (a stride larger than the window's span, in either direction):
//   packed, whose im2col gathers only what the taps read, where the direct kernel's column planes
//   copy every row phase and column of the input. Such layers with overlapping or touching
//   windows go direct (ResNet-style 3-channel stems at batch 8: 1.3-1.9x packed). Checked on 60
//   random shapes of this kind (seed 2027, not the sweep's; AVX-512, 2 threads, both forced): the
//   rule's choices 0.97x the time of packed everywhere, 7% from the faster of the two (packed
//   everywhere: 10%), 12 of the 34 sent to direct slower by more than 5%;
// - everything else, grouped or not, 1x1 or not: direct, which keeps its packed weights between
//   calls and skips the im2col copy;
// - where the few-pixel rules pick ocblock with AVX2's 8-lane blocks, dense layers of 16+ input
//   channels at stride 1: blocked (few_pixels_go_blocked_8);
// - and where the rules pick ocblock (or blocked) for a training call, whose weight changes
//   before the next (a ChangingWeights scope: the weight requires grad), and all the pixels fit
//   the direct kernel's pixel block: direct, which then reads the weight's rows in place, where
//   ocblock and blocked pack the weight anew on every call. Training-mode forward calls of 3x3
//   layers drawn at random (seed 5, AVX-512, 2 threads; docs/PERFORMANCE.md): on the 7 of 32-256
//   pixels, direct 1.5-3.5x faster than the blocked/ocblock choice on 6, 0.83x on the other.
// OpenBLAS's per-image forms (im2col, gemm1x1) stay available by request and to autotuning.
// The pixels per image from which a pointwise layer's images, fewer than a tile's width, stay off
// batched (the clause above): 8, half of AVX2's 16-pixel tiles, a quarter of AVX-512's.
int64_t pointwise_image_pixels(const kernels::GemmTile& tile) { return std::min<int64_t>(8, tile.nr / 2); }

// Winograd F(4x4, 3x3)'s time over the best of the other kernels', as a model of two measured
// constants: r (a + b / q). r is the multiplies its GEMMs run, 36 per tile and lane of the
// micro-kernel they fill (whole panels, the last one's lanes rounded up to a vector: it computes
// only the vectors its tiles fill), over the direct form's 9 per output pixel: 0.25 on large
// images, 0.33 on 14x14 at batch 1 (16 tiles, one vector of AVX-512's 32-lane panel), 1.3 on 7x7.
// q = C OC / (C + OC) weighs the transforms (per tile, C inputs and OC outputs) against the
// GEMMs (C OC). Fitted by least squares on 100 random 3x3 stride-1 layers of 16-1024 channels
// and fewer than 4 panels of tiles (bench/rule_study.py winograd-few-tiles --seed 2501; AVX-512,
// 2 threads, 2026-12-05): a = 1.43, b = 14.7; on 100 more (seed 2502) this compute part picks the
// faster side on 97 (1.11x the former rule's geomean, a whole panel of tiles; with the stream
// term below, which those hot layers do not need, 1.07x, 9 faster by 5%, none slower). With
// AVX2's 16-lane panels (seed 2503, 80 layers) the model did no better than a whole panel of
// tiles (1.01x its geomean, 11 faster, 6 slower, down to 0.51x): a panel is full from 16 tiles
// there, and below it ocblock's 8-lane vectors, as wide as the panel's half, win as often as they
// lose. AVX2 keeps the whole panel.
// Those layers ran one after another on the same weight, which stays in cache. In a network each
// weight is read once per pass, from memory, and Winograd's U is 4x the weight (36 floats for 9):
// with few pixels reading it costs more than the multiplies. So both sides' times are the larger
// of their compute and their weight's stream: relative to the other kernels' compute, s = the
// weight's stream (36 C OC bytes) over their multiplies (18 C OC pixels flops), 2 kWeightBalance /
// pixels, and 4 s for U. kWeightBalance: the flops those kernels do while a byte of weight comes
// from memory, 280 GFLOP/s over 10 GB/s: in ResNet-18 at batch 1 in the graph runtime (2 threads,
// Sapphire Rapids), the 512 -> 512 layers at 7x7 (9.4 MB of weight) took 1.02 ms blocked, and the
// 256 -> 256 layers at 14x14 took 0.89 ms by Winograd (U 9.4 MB) where blocked took 0.80 (and,
// hot in cache, 0.49 against 0.82: the study's regime). Without the stream term, in the graph
// runtime at batch 1, alternating: ResNet-18 14.4-14.7 ms against 13.0-14.4 with it, GoogLeNet
// 13.3-13.4 against 12.2-12.9, VGG-11 the same. AVX2's multiply-adds are half as wide, so
// half the flops per byte (its rule of a whole panel stands for the compute).
// The stream term holds where the weights do come from memory: where U (36 C OC floats) is more
// than a sixteenth of the L3 (`kernels::l3_bytes`, shared by the cores and by the network's other
// weights and activations). With a large L3 the network's U's stay in it between passes: on a Xeon
// of model 207 (300 MiB of L3, 2 threads, 2026-12-06) ResNet-18's 256 -> 256 layers at 14x14 in
// the graph runtime took 1.01-1.08 ms by Winograd against 1.13-1.17 blocked (per-node medians,
// two runs each way), where the Sapphire Rapids above lost by Winograd (its L3 was not recorded;
// the 105 MiB of the common parts would make 9.4 MiB of U more than a sixteenth). A sixteenth keeps
// U at most 18.75 MiB on the former (256 -> 384 channels, not 512 -> 512); where Linux does not
// describe the L3, the term holds.
bool u_streams(const Conv2dGeometry& g) {
  const double u_bytes = 36.0 * static_cast<double>(g.C * g.OC) * 4.0;
  return 16.0 * u_bytes > static_cast<double>(kernels::l3_bytes());
}

constexpr double kWinogradGemm = 1.43, kWinogradTransforms = 14.7, kWeightBalance = 28.0;
bool winograd_f43_repays(const Conv2dGeometry& g, const kernels::GemmTile& tile) {
  const int64_t tiles = kernels::winograd_f43_tiles(g), vector = tile.nr / 2;
  const int64_t lanes = tiles / tile.nr * tile.nr + (tiles % tile.nr + vector - 1) / vector * vector;
  const double pixels = static_cast<double>(g.N * g.OH * g.OW);
  const double r = 4.0 * static_cast<double>(lanes) / pixels;
  const double q = static_cast<double>(g.C * g.OC) / static_cast<double>(g.C + g.OC);
  const double s = u_streams(g) ? 2.0 * kWeightBalance * tile.nr / 32.0 / pixels : 0.0;
  const double compute = tile.nr > 16 ? r * (kWinogradGemm + kWinogradTransforms / q) : tiles >= tile.nr ? 0.0 : 2.0;
  return std::max(compute, 4.0 * s) < std::max(1.0, s);
}

// The grouped-layer rule above: with AVX2's 16-pixel tiles, a group that fills one of ocblock's
// vectors; with AVX-512's 32-pixel tiles, one that fills more than half of it and at most 32
// output channels (beyond, the direct kernel's twice as wide vectors win), or more when strided:
// there the direct kernel copies a column plane per row phase and kernel column, ocblock one
// window (its strided windows as phase planes since the interleaved blocks). Forced side by side
// (`bench/rule_study.py grouped --seed 2033`, 100 layers; Xeon model 207, 2 threads, 2026-12-06):
// on the 18 strided ones of more than 32 outputs per group ocblock 1.18x direct's speed in
// geomean (11 faster by 5%, 2 slower, to 0.71x), at stride 1 1.0-1.1x with losses to 0.5x;
// checked on --seed 2034: 12 strided, 1.19x (7 faster, 2 slower, to 0.89x).
bool grouped_fills_ocblock(const Conv2dGeometry& g, const kernels::GemmTile& tile) {
  if (g.groups <= 1 || g.channels_per_group() == 1 || g.KH * g.KW < 9 || !supports(Conv2dAlgorithm::Ocblock, g)) {
    return false;
  }
  const int64_t per_group = g.out_channels_per_group();
  const bool strided = g.stride_h > 1 || g.stride_w > 1;
  return tile.nr == 16 ? per_group >= 8 : per_group > 4 && (per_group <= 32 || strided);
}

// Where the rules above pick ocblock: with AVX-512 at twice AVX2's rate, the blocked algorithm for
// dense layers without dilation. ocblock's vectors were AVX2's 8 lanes on either
// ISA when this was measured; the blocked kernels' hold 16 channels, a register tile of 4 x 16
// channels x 6 pixels, at the price of a transpose of the input and the output. (With ocblock's
// blocks at AVX-512's width, 12 pixels x 16 or 32 channels, blocked still led on 40 such layers:
// ocblock 0.70x its speed, docs/PERFORMANCE.md.) With stride 3 or dilation each work item's copy of its
// input band holds 3-9 times the pixels it computes, and ocblock's one window per image wins.
// Measured (AVX-512, 2 threads, every algorithm forced, weights frozen as in the graph runtime) on
// the dense layers of torchvision's models at batch 1 and 8 and 200 random dense shapes (seed
// 123, not the sweep's), of which the ocblock rules take 110: on the 69 of stride <= 2 without
// dilation blocked's geomean is 1.25x ocblock's (53 faster, the worst 0.69x); on the other 41
// 0.98x. With AVX2 (8 lanes: tiles of 2 blocks x 6 pixels) blocked lost on 33 of 42 (0.88x).
// All of that on an Intel Xeon, whose 512-bit FMAs run at twice the rate of its 256-bit ones; on
// a CPU where they do not (AMD's Zen 4: kernels::wide_fma_doubles_rate() measures it), the 16-lane
// tiles do no more work per second than ocblock's 8-lane blocks and the transposes are pure cost:
// forced side by side there (2 threads, eager, weights without grad) on 160 random dense layers the
// rules send to ocblock (bench/rule_study.py few-pixel-dense --seed 2031 --count 160: batch 1-8,
// 8-767 channels, windows 2x2 to 7x7, strides 1 and 2, 2x2 to 28x28 inputs), ocblock ran 1.07x
// blocked's speed in geomean, faster by 5% on 78 and slower on 46; ocblock 1.10x the time of the
// fastest of ocblock, blocked and direct, blocked 1.17x. Checked on 100 more (--seed 2033): 1.05x,
// 56 and 31. ResNet-18's 3x3 layers at batch 1: a tie at 7x7 and 14x14 stride 1, ocblock 1.2x at
// stride 2. So there those stay ocblock.
// Strides of 3 and more, measured again on AMD's Zen 5 (family 26: 512-bit FMAs at twice the
// 256-bit rate, 1 MiB L2; 2 threads, eager, 2026-12-08; bench/rule_study.py few-pixel-dense
// --strides 3 and 3,4: batch 1-8, 8-767 channels, windows 2x2 to 7x7, 6-84 pixels a side): the
// band copies' extra pixels did not decide it. --seed 4201, 60 layers of stride 3: blocked 1.31x
// ocblock's speed in geomean, faster by 5% on 45, slower on 10 (the least 0.71x); held out,
// --seed 4202: stride 3 1.31x over 34 layers (24 faster, 7 slower), stride 4 1.29x over 26 (15
// and 8, the least 0.67x). With the Xeon's tie above, such layers go blocked too; dilated ones
// (not measured apart) stay ocblock.
bool ocblock_goes_blocked(const Conv2dGeometry& g) {
  return kernels::blocked_lanes() == 16 && kernels::wide_fma_doubles_rate() && g.groups == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1;
}

// Where ocblock_goes_blocked holds, layers of fewer than kBlockedInputChannels input channels (a
// fraction of a 16-lane block) go direct: measured on Zen 5 as above (--in-channels 1,15, --seed
// 4501, 60 layers), with 1-7 input channels direct ran 1.27x blocked's speed in geomean over 29 (21
// faster by 5%, 4 slower, to 0.65x), with 8-15 they tied (1.02x over 31), and ocblock ran 0.84x
// blocked's speed over all 60; held out, --seed 4502 --in-channels 1,7: 1.22x over 40, 30 faster, 7
// slower, to 0.54x.
constexpr int64_t kBlockedInputChannels = 8;

// With 8-lane blocks (AVX2), where the few-pixel rules pick ocblock: the blocked kernel for dense
// layers of 16 or more input channels at stride 1 without dilation. Since its 8-lane tiles run a
// pointwise block as straight multiply-adds and its last tiles take a pixel fewer rather than end
// short, it beats ocblock's 8-lane blocks there, transposes included. Forced side by side
// (bench/rule_study.py few-pixel-dense: batch 1-8, 8-767 channels, windows 2x2 to 7x7, stride 1 and
// 2, 2x2 to 28x28 inputs; AMD EPYC Zen 3, AVX2, 2 threads, eager, 2026-12-07): --seed 3601, 100
// layers: on the 44 of stride 1 and 16+ input channels blocked ran 1.18x ocblock's speed in geomean
// (28 faster by 5%, 10 slower, the least 0.83x); held out, seeds 3602-3603 (200 layers): the 76 such
// 1.16x (47 faster, 16 slower, the least 0.76x), 3x3 windows 1.11x and larger ones 1.25x over the
// three seeds. At stride 2 1.03-1.06x with as many losses, with fewer input channels 0.90-1.06x: those
// stay ocblock. Unlike the 16-lane rule, an eager call's large weight does not send one image of few
// pixels to the direct kernel: on these layers direct lost to blocked (the rule with that exception:
// 1.08-1.10x, down to 0.40x).
bool few_pixels_go_blocked_8(const Conv2dGeometry& g) {
  return kernels::blocked_lanes() == 8 && g.groups == 1 && g.C >= 16 && g.stride_h == 1 && g.stride_w == 1 &&
         g.dilation_h == 1 && g.dilation_w == 1;
}

// First layers of 3-8 input channels at stride 3 or more with a window at least as wide (stems
// like AlexNet's 11x11 stride 4, patchify layers): the blocked kernel, which interleaves the plain
// input's channels as it copies a work item's band, where the direct kernel copies a plane per
// row phase and column for few multiply-adds each. Forced side by side (bench/rule_study.py
// few-channel-strided: 1-8 channels, stride 2-4, windows from the stride to 11, 32-256 pixels a
// side, batch 1-8; AVX-512, 2 threads, eager, 2026-12-06): seed 2601, 40 layers: the 20 of stride
// 3-4 and 3-8 channels ran 1.32x faster blocked in geomean, 2 slower by 5% (the least 0.87x); at
// stride 2, or with 1-2 channels, direct was the faster on most (blocked down to 0.42x). Held out,
// seed 2602: the 28 such layers of 60 all faster blocked, 1.45x, the least 1.10x. Where blocked
// holds 16 lanes at twice 8 lanes' rate (ocblock_goes_blocked's condition; not measured otherwise).
bool few_channels_strided_goes_blocked(const Conv2dGeometry& g) {
  return kernels::blocked_lanes() == 16 && kernels::wide_fma_doubles_rate() && g.groups == 1 && g.C >= 3 && g.C <= 8 &&
         g.stride_h >= 3 && g.stride_w >= 3 && g.KH >= g.stride_h && g.KW >= g.stride_w && g.dilation_h == 1 &&
         g.dilation_w == 1;
}

// With 8-lane blocks (AVX2), dense layers of 8 or more input and output channels and a window of
// more than 9 taps (5x5, 7x7) at stride 1 or 2 that the rules leave to the direct kernel: the
// blocked kernel, whose register tile broadcasts each input value against two blocks of output
// channels and reads each window row's taps as one run, where the direct kernel packs K x 16
// columns of taps per pixel tile and adds K blocks through the output. Forced side by side
// (bench/rule_study.py dense-windows: 8-512 channels, 3x3, 5x5 and 7x7 at stride 1 and 2, batch
// 1-8, sides 14-112, past the few-pixel rules; AMD EPYC Zen 3, 2 threads, eager, 2026-12-07;
// docs/PERFORMANCE.md's rule table): on the 5x5 and 7x7 layers the other rules give direct,
// blocked (its transposes included) ran 1.17-1.24x direct's speed in geomean on each of three
// seeds (3301-3303, 100 layers drawn each), faster by 5% on 115 of 145, slower on 10 (the least
// 0.85x), up to 2.2x. 3x3 layers stay direct (those Winograd leaves: few channels, or stride 2):
// blocked ran 0.93-1.01x there, slower on 22 of 42. Fewer than 8 outputs leave most of a block's
// lanes empty (1 x 13 -> 1 7x7 at 64x64 went 0.29 -> 0.32 ms in the shape sweep, while the rest
// ran faster). 16 lanes keep the rules above (not measured).
bool dense_window_goes_blocked(const Conv2dGeometry& g) {
  return kernels::blocked_lanes() == 8 && g.groups == 1 && g.C >= 8 && g.OC >= 8 && g.KH * g.KW > 9 &&
         g.stride_h <= 2 && g.stride_w <= 2 && g.dilation_h == 1 && g.dilation_w == 1;
}

// Where ocblock_goes_blocked sends an eager call (weights compared, not frozen) of one image of at
// most kEagerWeightPixels output pixels, whose weight is larger than L2: direct, which then reads
// the weight's rows once in place (conv2d_direct_reads_weight_rows). Blocked, as ocblock, compares
// the weight with its packed copy on every eager call (two reads of it) and then reads the copy (a
// third); past L2 each read is a pass through L3 or memory. A weight of W floats meets 2 W P
// flops over P pixels: at a peak of R flop/s and a bandwidth of B bytes/s the two extra passes
// (8 W / B) cost more than all the multiply-adds (2 W P / R) below P = 4 R / B, about 110-140
// pixels on the machine below (R 485-497 GFLOP/s, B 14-18 GB/s); beyond, blocked's faster tiles
// win it back. Forced side by side (Sapphire Rapids, 2 MiB L2, 512-bit FMAs at twice the 256-bit
// rate, 2 threads, eager, 2026-12-05; bench/rule_study.py few-pixel-large-weights, batch-1 layers
// with weights over 2 MiB): --seed 2311, at most 128 pixels: direct 1.69x blocked's speed in
// geomean over 15 layers, none slower by 5%; more pixels: 1.01x over 4, one slower (0.88x). At
// batch 2-8 direct ran 0.99x (2311) and 0.78x (few-pixel-dense --seed 2313, to 0.52x: 8 x 547 ->
// 32 7x7, whose 32 outputs leave the direct kernel's panels a third empty): one image only.
// Checked on --seed 2312 and 2314: at most 128 pixels 1.64x over 17 layers (none slower) and
// 1.47x over 11 (2 slower); in the shape sweep 1 x 512 -> 512 3x3 at 7x7 went 0.63x -> 0.87x the
// faster peer, 192 -> 384 at 7x7 0.55x -> 0.78x, but 3x3 layers at 13x13 and 14x14 (169-196
// pixels) lost 10-20%, hence 128. On Zen 4, where 512-bit FMAs run at the 256-bit rate, ocblock
// stays (ocblock_goes_blocked): direct and ocblock measured even on such layers (seed 2101).
constexpr int64_t kEagerWeightPixels = 128;
bool eager_weight_past_l2(const Conv2dGeometry& g) {
  const int64_t weight_bytes = g.OC * g.channels_per_group() * g.KH * g.KW * static_cast<int64_t>(sizeof(float));
  return g.N == 1 && g.OH * g.OW <= kEagerWeightPixels && conv2d_direct_reads_weight_rows(g) &&
         weight_bytes > kernels::l2_bytes();
}

// Dense layers of at most 16 output channels, a window of several taps, a stride and 8 or more input
// channels: ocblock. The direct kernel copies a column plane per row phase and kernel column of
// each input channel (up to KW / s_w input sizes), and with few output channels each copied value
// meets few multiply-adds; its 12-row weight panels are mostly empty too. ocblock copies one window
// of the input per image and spends its vectors on the output channels. Forced side by side on 80
// random dense layers of 1-16 output channels (bench/rule_study.py few-outputs --seed 2051 --count
// 80; AVX-512, 2 threads): on the 29 strided ones of 8 or more input channels ocblock ran 1.49x the
// direct kernel's speed in geomean (faster on 24, slower on 5, the slowest 0.6x: 50 -> 2 channels
// at 126x120); at stride 1 it lost (0.71x), and with fewer input channels (0.71x). Checked on new
// layers: --seed 2052, the 25 the rule takes, 1.67x (17 faster, 7 slower, the slowest 0.58x); with
// AVX2 kernels (TINYTORCH_ISA=avx2, --seed 2053), 27 taken, 1.30x (20 faster, 6 slower).
// Drawn and checked on images of 32 output pixels or more and 512 in all (fewer go to the
// few-pixel rules above it, or to batched), so it holds there only.
bool few_outputs_strided(const Conv2dGeometry& g) {
  return g.groups == 1 && g.OC <= 16 && (g.stride_h > 1 || g.stride_w > 1) && g.C >= 8 && g.KH * g.KW > 1 &&
         g.OH * g.OW >= 32 && g.N * g.OH * g.OW >= 512 && supports(Conv2dAlgorithm::Ocblock, g);
}

// The grouped layers grouped_fills_ocblock leaves to the direct kernel for their few output
// channels per group (1 to 4), with 2 or more input channels per group and a window of several
// taps: ocblock, as few_outputs_strided does for dense layers. The direct kernel meets each tile
// row with a group's 1-4 rows of its 6-row weight panels (and, strided, copies a column plane per
// row phase and kernel column of each input channel); ocblock copies one window per image and
// group and, since its interleaved blocks (4 pixels x 4 channels a vector with AVX-512, 2 x 4 with
// AVX2), fills its lanes. Forced side by side on 80 random grouped layers of 1-4 output channels
// per group (bench/rule_study.py grouped-few-outputs --seed 2071 --count 80; Zen 4, AVX-512, 2
// threads; before the interleaved blocks): on the 20 strided ones of 8 or more input channels per
// group ocblock ran 2.29x the direct kernel's speed in geomean (17 faster, 2 slower); at stride 1
// 1.57x but 7 of 24 slower (to 0.74x), with fewer input channels 0.99x; so it took strided layers
// of 8 or more inputs per group only. With the interleaved blocks (--seed 2072, Xeon model 207,
// AVX-512, 2 threads, 2026-12-06): stride 1 and 8 or more inputs per group 2.54x (16 of 16
// faster, the slowest 1.34x), stride 1 and 2-7 inputs 1.39x (9 of 11 faster by 5%, none slower),
// strided and 2-7 inputs 1.72x (11 of 13 faster, none slower), strided and 8 or more 2.09x (19 of
// 21 faster, 2 slower). Checked on --seed 2074 (80 more): the 70 the rule takes 1.86x in geomean,
// 65 faster by 5%, 5 slower (two of them, 0.15x and 0.21x, measured while a build ran beside:
// alone 3.0x and 1.3x faster; the others 0.71-0.77x, a stride of 3 or a 7-tap row over 11
// columns); with AVX2 kernels (--seed 2075) 67 taken, 1.55x, 58 faster, 3 slower (to 0.79x).
// Layers whose stride passes the window (2x2 at stride 3: rows and columns no tap reads, which
// ocblock copies all the same) lost to 0.33x and stay with the rules below (packed, or direct).
// With the interleaved blocks' final choice (stride 1 and 2, lanes x pixels counted), --seed 2076:
// the 72 taken 2.15x, 66 faster by 5%, 2 slower (to 0.77x).
bool grouped_few_outputs(const Conv2dGeometry& g) {
  return g.groups > 1 && g.out_channels_per_group() <= 4 && g.channels_per_group() >= 2 && g.KH * g.KW > 1 &&
         g.stride_h <= (g.KH - 1) * g.dilation_h + 1 && g.stride_w <= (g.KW - 1) * g.dilation_w + 1 &&
         supports(Conv2dAlgorithm::Ocblock, g);
}

// A depthwise layer (groups == C) goes to the depthwise kernel unless it has a channel multiplier
// M = OC / C of 4 or more and a 1x1 window, or of 16 or more and a window. With one tap the layer
// is a broadcast multiply, bound by its output's writes: the depthwise kernel, made for summing
// windows a vector of channels at a time, then stores each input channel's M outputs through its
// channel-vector layout, where the GEMM forms (direct, packed) write the plain output rows at once.
// Measured (AVX-512, 2 threads, every algorithm forced) on 80 random depthwise layers of
// multipliers 2-32 (seed 77: batch 1, 2, 8; 2-512 channels; 4-112 px; 1x1 to 7x7; stride 1, 2):
// with a 1x1 window the depthwise kernel took 1.25x (M 2-4) to 3.5x (M 32) the time of the faster
// of direct and packed; with several taps the GEMM forms won from M = 12 on by 1.15-1.5x in
// geomean, but lost up to 3x on large images (a 5x5 layer of 381 channels at 91x91: the direct
// kernel's column copy of 25 taps per pixel for 12 outputs), so those stayed (but see the window
// rule below). Checked on 160 more (seeds 2028, 2029): the 1x1 layers of M >= 2 ran 0.94-4.3x
// faster by the GEMM forms (geomean 1.6x); with AVX2 (seed 2030) M = 2 lost (0.46x, 0.50x), M = 3
// 0.93x, M >= 4 0.98-2.7x: hence 4.
// With a window the kernel sums each of a channel's M outputs on its own, reading the channel's
// window again for each, where the GEMM forms read it (or its column copy) once for all M: the
// copy's cost shared by M outputs. Measured (`bench/rule_study.py depthwise-multiplier`: batch 1-8,
// 2-383 channels, M 2-128, 2x2 to 7x7, stride 1-2, 4-160 px a side; AVX-512, 2 threads, 2026-12-05)
// on 320 layers (seeds 2401-2404): direct over the depthwise kernel's time 0.48-0.69 in geomean at
// M >= 16 for every window size (134 layers, 4 slower by 5% or more, the worst 1.59x), but 0.88
// (M 8-11) and 0.98 (M 12-15) with losses to 2.1x on large images (8 x 116 at 137x31, M 8: the column
// copy of 9 taps per pixel for 8 outputs); with AVX2 (seed 2405, 60 layers) 0.57-0.69 at M >= 16:
// hence 16. Such layers go direct; ocblock's vectors across a group's outputs each meet one input
// channel there, and it ran 1.9-2.9x the fastest's time: the ocblock rules skip them.
// Since the kernel's weights are interleaved by transposes (not a scalar loop per tap and lane) and
// its row loop knows strides 1 and 2, 1x1 layers of M 4-7 run faster on it with 8 lanes: forced
// side by side (`bench/rule_study.py depthwise-multiplier-1x1`, AVX2, AMD EPYC Zen 3, 2 threads,
// 2026-12-07), --seed 3502: the depthwise kernel 1.46x the faster GEMM form's speed at M 4-7 and
// stride 1 (6 of 7 faster), 1.13x at M 8-15 with losses to 0.51x, 0.58x from 16; held out, seeds
// 3503-3504: M 4-7 1.18x at stride 1 (9 of 12 faster by 5%, 2 slower) and 1.01x at stride 2, M 8-15
// 0.90x and 0.60x. So with 8 lanes a 1x1 layer stays on the depthwise kernel below M = 8; with 16
// (not measured since) below 4.
bool depthwise_kernel_fits(const Conv2dGeometry& g) {
  const int64_t pointwise_multiplier = kernels::depthwise_block_lanes() == 8 ? 8 : 4;
  return g.OC < pointwise_multiplier * g.C || (g.KH * g.KW > 1 && g.OC < 16 * g.C);
}

Conv2dAlgorithm conv2d_heuristic(const Conv2dGeometry& g, const char** reason) {
  const kernels::GemmTile& tile = kernels::packed_gemm_tile();
  const char* why = "few taps per group at batch > 1, a stride past the window: packed panels";
  Conv2dAlgorithm choice = Conv2dAlgorithm::Packed;
  const int64_t tiles = g.stride_h == 1 ? kernels::winograd_f43_tiles(g) : kernels::winograd_s2_tiles(g);
  const int64_t taps = g.channels_per_group() * g.KH * g.KW;
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
                         g.pad_left == 0 && g.OH == g.H && g.OW == g.W;
  // A depthwise layer the depthwise kernel leaves (depthwise_kernel_fits, 1x1): batched's GEMM per
  // group would sum one value per output, so the last rules send it direct or packed (AVX2, 1-2
  // images of 6x6 to 11x11, 4-16 outputs per channel: batched 2-3.9x direct's time).
  const bool single_channel_groups = g.groups > 1 && g.channels_per_group() == 1;
  bool few_outputs = false;  // ocblock by few_outputs_strided, which stays ocblock (not measured as blocked)
  if (supports(Conv2dAlgorithm::Depthwise, g) && depthwise_kernel_fits(g)) {
    choice = Conv2dAlgorithm::Depthwise, why = "depthwise layer (a window, or fewer than 4 outputs per channel)";
  } else if (supports(Conv2dAlgorithm::Winograd, g) && g.C >= 16 && g.OC >= 16 &&
             (g.stride_h == 1 ? winograd_f43_repays(g, tile) : tiles >= 4 * tile.nr)) {
    choice = Conv2dAlgorithm::Winograd,
    why = g.stride_h == 1 ? "3x3, >= 16 channels in and out, transforms repaid by the multiplies saved"
                          : "3x3 stride 2, >= 16 channels in and out, 4 panels of tiles";
  } else if (!single_channel_groups && g.OH * g.OW < tile.nr && g.KH * g.KW > 1 && g.OH * g.OW > 1) {
    choice = Conv2dAlgorithm::Ocblock,
    why = "fewer output pixels per image than a tile, several taps: vectors across output channels, no gather";
  } else if (!single_channel_groups && g.N * g.OH * g.OW < 16 * tile.nr && g.KH * g.KW >= 9 &&
             g.out_channels_per_group() >= 8) {
    choice = Conv2dAlgorithm::Ocblock,
    why = "fewer than 16 pixel tiles in all, a window of 9 taps or more: vectors across output channels";
  } else if (grouped_fills_ocblock(g, tile)) {
    choice = Conv2dAlgorithm::Ocblock,
    why = "grouped, 8 or more output channels per group: vectors across a group's channels";
  } else if (grouped_few_outputs(g)) {
    choice = Conv2dAlgorithm::Ocblock,
    why = "grouped, 1-4 outputs and 2 or more inputs per group: interleaved pixels fill the vectors";
  } else if (few_channels_strided_goes_blocked(g)) {
    choice = Conv2dAlgorithm::Blocked,
    why = "3-8 input channels, stride 3 or more (a first layer): blocked, the channels interleaved as it copies";
  } else if (few_outputs_strided(g)) {
    choice = Conv2dAlgorithm::Ocblock, few_outputs = true,
    why = "at most 16 output channels, strided, 8 or more input channels: one window, not a plane per phase";
  } else if (!single_channel_groups && g.OH * g.OW < tile.nr &&
             !(pointwise && g.OH * g.OW >= pointwise_image_pixels(tile))) {
    choice = Conv2dAlgorithm::Batched, why = "fewer output pixels per image than a tile: all images in one GEMM";
  } else if (conv2d_direct_reads_in_place(g)) {
    choice = Conv2dAlgorithm::Direct, why = "1x1 stride 1 without padding: read in place";
  } else if (dense_window_goes_blocked(g)) {
    choice = Conv2dAlgorithm::Blocked,
    why = "a window of more than 9 taps, groups 1, stride <= 2, 8-lane blocks: blocks of output channels";
  } else if (taps >= 32 || g.N == 1) {
    choice = Conv2dAlgorithm::Direct, why = g.N == 1 ? "batch 1" : ">= 32 taps per group (C/groups*KH*KW)";
  } else if (g.stride_h <= (g.KH - 1) * g.dilation_h + 1 && g.stride_w <= (g.KW - 1) * g.dilation_w + 1) {
    choice = Conv2dAlgorithm::Direct, why = "few taps, but a stride that reads every input row and column";
  }
  if (choice == Conv2dAlgorithm::Ocblock && changing_weights_active() && conv2d_direct_reads_weight_rows(g)) {
    choice = Conv2dAlgorithm::Direct, why = "a training call's few pixels: the weight's rows read in place, not packed";
  } else if (choice == Conv2dAlgorithm::Ocblock && !few_outputs && few_pixels_go_blocked_8(g)) {
    choice = Conv2dAlgorithm::Blocked,
    why = "few pixels, groups 1, 16+ input channels, stride 1, 8-lane blocks: blocks of output channels";
  } else if (choice == Conv2dAlgorithm::Ocblock && !few_outputs && ocblock_goes_blocked(g)) {
    if (eager_weight_past_l2(g)) {
      choice = Conv2dAlgorithm::Direct;
      why = "one image of <= 128 pixels, an eager call's weight past L2: its rows read once, not compared and packed";
    } else if (g.C < kBlockedInputChannels) {
      choice = Conv2dAlgorithm::Direct;
      why = "few pixels, fewer than 8 input channels: the direct kernel, not 16-lane blocks mostly empty";
    } else {
      choice = Conv2dAlgorithm::Blocked,
      why = "few pixels, groups 1, no dilation, 16 lanes at twice 8 lanes' rate: blocks of output channels";
    }
  }
  if (reason) *reason = why;
  return choice;
}

namespace {

std::string describe(const Conv2dGeometry& g) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "conv2d %lldx%lldx%lldx%lld -> %lld, %lldx%lld, stride %lldx%lld, dilation %lldx%lld, groups %lld",
                (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.OC, (long long)g.KH,
                (long long)g.KW, (long long)g.stride_h, (long long)g.stride_w, (long long)g.dilation_h,
                (long long)g.dilation_w, (long long)g.groups);
  return buf;
}

// With TINYTORCH_VERBOSE=1, each layer shape's choice is said once.
void log_choice(const Conv2dGeometry& g, Conv2dAlgorithm a, const std::string& why) {
  static std::mutex mutex;
  static std::set<TuneKey> logged;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (!logged.insert(tune_key(g)).second) return;
  }
  verbose_log(describe(g) + ": " + conv2d_algorithm_row(a).name + " (" + why + ")");
}

Conv2dAlgorithm choose(const Conv2dGeometry& g, const Conv2dCall* call, std::string* why) {
  const Conv2dAlgorithm forced = forced_conv2d_algorithm().load();
  if (forced != Conv2dAlgorithm::Auto && supports(forced, g)) {
    if (why) *why = "forced (set_conv2d_algorithm, --conv-algo or TINYTORCH_CONV_ALGO)";
    return forced;
  }
  const bool everywhere = conv2d_autotune_enabled().load();
  if (everywhere || (tuning_scope_depth > 0 && !autotune_refused())) {
    Conv2dAlgorithm a;
    if (tuned(g, a)) {
      if (why) *why = "autotuned: the fastest when this shape was timed";
      return a;
    }
    if (call) {
      if (why) *why = "autotuned: timed the candidates on this call";
      return tune(g, *call, everywhere ? std::numeric_limits<double>::infinity() : kScopeTuneLimit);
    }
  }
  const char* reason = nullptr;
  const Conv2dAlgorithm a = conv2d_heuristic(g, &reason);
  if (why) {
    *why = std::string("heuristic: ") + reason;
    if (forced != Conv2dAlgorithm::Auto)
      *why += std::string("; the forced ") + conv2d_algorithm_row(forced).name + " does not apply";
  }
  return a;
}

}  // namespace

Conv2dAlgorithm choose_conv2d_algorithm(const Conv2dGeometry& g, const Conv2dCall* call) {
  if (!verbose_enabled() || !call) return choose(g, call, nullptr);
  std::string why;
  const Conv2dAlgorithm a = choose(g, call, &why);
  log_choice(g, a, why);
  return a;
}

std::atomic<Conv2dAlgorithm>& forced_conv2d_algorithm() {
  static std::atomic<Conv2dAlgorithm> setting{algorithm_from_environment()};
  return setting;
}

std::atomic<bool>& conv2d_autotune_enabled() {
  static std::atomic<bool> setting{[] {
    const char* env = std::getenv("TINYTORCH_CONV_AUTOTUNE");
    return env && std::string(env) == "1";
  }()};
  return setting;
}

Conv2dTuningScope::Conv2dTuningScope() { ++tuning_scope_depth; }
Conv2dTuningScope::~Conv2dTuningScope() { --tuning_scope_depth; }

std::atomic<int64_t>& tuning_generation() {
  static std::atomic<int64_t> generation{0};
  return generation;
}

void clear_conv2d_tuning() {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  cache.best.clear();
  ++tuning_generation();
}

int64_t conv2d_tuning_generation() { return tuning_generation().load(); }

int64_t conv2d_tuned_shapes() {
  TuneCache& cache = tune_cache();
  const std::lock_guard<std::mutex> lock(cache.mutex);
  return static_cast<int64_t>(cache.best.size());
}

void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, const Conv2dGeometry& g) {
  const Conv2dCall call{out, in, weight, bias};
  conv2d_algorithm_row(choose_conv2d_algorithm(g, &call)).run(out, in, weight, bias, g, OutputStage{});
}

}  // namespace tinytorch::ops

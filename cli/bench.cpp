// `tinytorch bench`: our Conv2D forward on the fixed benchmark shapes (bench/conv_shapes.csv),
// with the algorithm the heuristic picks, GFLOP/s and % of this machine's measured FP32 peak.
// PyTorch side by side: bench/compare_torch.py.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "runtime_options.hpp"
#include "timing.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

struct ShapeRow {
  std::string name;
  int64_t v[11];  // N, C, H, W, K, KH, KW, stride, pad, dilation, groups
};

constexpr uint64_t kMaxShapesFileBytes = 1 << 20;
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;  // 8 GiB of float32: any row above is a typo

// Reads and validates the whole shapes file before anything is timed: every field a number in
// its range, groups dividing the channels, each tensor under kMaxTensorElements.
std::vector<ShapeRow> read_shapes_file(const std::string& path) {
  std::istringstream file(read_regular_file(path, kMaxShapesFileBytes));
  static const char* kFields[11] = {"N", "C", "H", "W", "K", "KH", "KW", "stride", "pad", "dilation", "groups"};
  std::vector<ShapeRow> rows;
  std::string line;
  int line_no = 0;
  while (std::getline(file, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = "bench: " + path + ":" + std::to_string(line_no) + ": ";
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream ls(line);
    ShapeRow r;
    ls >> r.name;
    for (int64_t& v : r.v) ls >> v;
    std::string extra;
    if (!ls || (ls >> extra))
      throw UsageError(where + "expected 12 fields: name,N,C,H,W,K,KH,KW,stride,pad,dilation,groups");
    for (int f = 0; f < 11; ++f) {
      const int64_t lo = f == 8 ? 0 : 1;  // padding may be 0, everything else is at least 1
      if (r.v[f] < lo || r.v[f] > (1 << 24)) {
        throw UsageError(where + kFields[f] + " must be in [" + std::to_string(lo) + ", 2^24], got " +
                         std::to_string(r.v[f]));
      }
    }
    const auto& v = r.v;
    if (v[1] % v[10] != 0 || v[4] % v[10] != 0) {
      throw UsageError(where + "groups " + std::to_string(v[10]) + " must divide C " + std::to_string(v[1]) +
                       " and K " + std::to_string(v[4]));
    }
    const int64_t channels_per_group = v[1] / v[10];  // exact: groups divides C
    const double input = double(v[0]) * v[1] * v[2] * v[3];
    const double weight = double(v[4]) * static_cast<double>(channels_per_group) * v[5] * v[6];
    const double oh = (double(v[2]) + 2.0 * v[8] - double(v[9]) * (v[5] - 1) - 1) / v[7] + 1;
    const double ow = (double(v[3]) + 2.0 * v[8] - double(v[9]) * (v[6] - 1) - 1) / v[7] + 1;
    const double output = double(v[0]) * v[4] * std::max(oh, 0.0) * std::max(ow, 0.0);
    if (input > kMaxTensorElements || weight > kMaxTensorElements || output > kMaxTensorElements) {
      throw UsageError(where + "the row describes a tensor of more than 2^31 elements");
    }
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  NoGradGuard no_grad;  // inference only: parameters require grad, but nothing here trains
  Args args("bench",
            "Times Conv2D forward on the benchmark shapes (see bench/conv_shapes.csv) and reports ms,\n"
            "GFLOP/s and the % of this machine's FP32 peak (an FMA loop measured on the same thread\n"
            "count). For PyTorch side by side, run bench/compare_torch.py.");
  add_runtime_options(args);
  args.option("shapes", default_shapes_file(), "CSV of shapes: name,N,C,H,W,K,KH,KW,stride,pad,dilation,groups");
  args.option("json", "", "also write the results to this JSON file");
  args.option("min-time", "0.2", "seconds of timing per shape");
  if (!args.parse(argv)) return 0;
  apply_runtime_options(args);
  const double min_time = std::atof(args.get("min-time").c_str());
  if (!(min_time > 0 && min_time < 60)) throw UsageError("bench: --min-time expects seconds in (0, 60)");

  const std::vector<ShapeRow> rows = read_shapes_file(args.get("shapes"));

  const int threads = get_num_threads();
  const double peak = measure_fma_peak_gflops(threads, 0.3);
  Json js = {{"threads", threads}, {"isa", peak_isa()}, {"peak_gflops", peak}, {"results", Json::array()}};
  std::vector<std::string> table;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [name, v] = rows[i];
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = i ? i / elapsed : 0;
    std::fprintf(stderr, "\r[%zu/%zu] %.2f shapes/s, ETA %3.0fs  %-20s", i, rows.size(), rate,
                 rate > 0 ? (rows.size() - i) / rate : 0.0, name.c_str());
    const Tensor x = Tensor::randn({v[0], v[1], v[2], v[3]});
    const Tensor w = Tensor::randn({v[4], v[1] / v[10], v[5], v[6]}), b = Tensor::randn({v[4]});
    const Conv2dOptions o{v[7], v[8], v[9], v[10]};
    Tensor y;
    const double s = median_seconds([&] { y = conv2d(x, w, b, o); }, 5, min_time, 100000);
    const int64_t channels_per_group = v[1] / v[10];
    const double flops =
        2.0 * v[0] * v[4] * y.size(2) * y.size(3) * static_cast<double>(channels_per_group) * v[5] * v[6];
    const std::string algo = to_string(select_conv2d_algorithm(x.shape(), w.shape(), o));
    char buf[200];
    std::snprintf(buf, sizeof buf, "%-20s %-10s %10.3f %9.1f %7.1f%%", name.c_str(), algo.c_str(), s * 1e3,
                  flops / s / 1e9, 100 * flops / s / 1e9 / peak);
    table.push_back(buf);
    js["results"].push_back({{"shape", name},
                             {"algorithm", algo},
                             {"ms", s * 1e3},
                             {"gflops", flops / s / 1e9},
                             {"peak_pct", 100 * flops / s / 1e9 / peak}});
  }
  std::fprintf(stderr, "\r%70s\r", "");
  std::printf("Conv2D forward, %d thread(s), %s, measured FP32 peak %.0f GFLOP/s\n", threads, peak_isa(), peak);
  std::printf("%-20s %-10s %10s %9s %8s\n", "shape", "algorithm", "ms", "GFLOP/s", "% peak");
  for (const std::string& t : table) std::printf("%s\n", t.c_str());
  if (get_conv2d_autotune()) {
    std::printf("algorithms autotuned: %lld shape(s) timed\n", static_cast<long long>(conv2d_autotune_cache_size()));
  }
  if (!args.get("json").empty()) {
    write_file_atomic(args.get("json"), json_text(js, 2) + "\n");
    std::printf("wrote %s\n", args.get("json").c_str());
  }
  return 0;
}

}  // namespace tinytorch::cli

// Google Benchmark over the fixed benchmark shapes (bench/conv_shapes.csv): every conv2d
// algorithm that supports a shape, and max/avg pooling. Reports GFLOP/s as a counter.
//
//   build/bin/tinytorch_bench --benchmark_filter=resnet_3x3_28   [TINYTORCH_THREADS=1]
//
// TINYTORCH_BENCH_SHAPES=file.csv reads another list in the same format; every line of it that
// is not a comment is one shape (name, N, C, H, W, OC, KH, KW, stride, pad, dilation, groups).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

struct Shape {
  std::string name;
  int64_t N, C, H, W, K, KH, KW, stride, pad, dilation, groups;
};

std::vector<Shape> read_shapes() {
  const char* other = std::getenv("TINYTORCH_BENCH_SHAPES");
  std::ifstream in(other && *other ? other : TINYTORCH_BENCH_SHAPES);
  if (!in) {
    std::fprintf(stderr, "tinytorch_bench: cannot read the shape list '%s'\n",
                 other && *other ? other : TINYTORCH_BENCH_SHAPES);
    std::exit(2);
  }
  std::vector<Shape> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream ls(line);
    Shape s;
    ls >> s.name >> s.N >> s.C >> s.H >> s.W >> s.K >> s.KH >> s.KW >> s.stride >> s.pad >> s.dilation >> s.groups;
    out.push_back(s);
  }
  return out;
}

void run_conv(benchmark::State& state, const Shape& s, tt::Conv2dAlgorithm algorithm) {
  const tt::Tensor x = tt::Tensor::randn({s.N, s.C, s.H, s.W});
  const tt::Tensor w = tt::Tensor::randn({s.K, s.C / s.groups, s.KH, s.KW});
  const tt::Tensor b = tt::Tensor::randn({s.K});
  const tt::Conv2dOptions o{s.stride, s.pad, s.dilation, s.groups};
  tt::Tensor y;
  for (auto _ : state) {
    y = tt::conv2d_with(algorithm, x, w, b, o);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * s.N * s.K * y.size(-2) * y.size(-1) * (s.C / s.groups) * s.KH * s.KW;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(tt::to_string(algorithm));
}

void run_pool(benchmark::State& state, bool max, int64_t N, int64_t C, int64_t H, int64_t k) {
  const tt::Tensor x = tt::Tensor::randn({N, C, H, H});
  tt::MaxPool2dOptions max_options;
  tt::AvgPool2dOptions avg_options;
  max_options.kernel_size = avg_options.kernel_size = tt::Size2(k);
  for (auto _ : state) {
    tt::Tensor y = max ? tt::max_pool2d(x, max_options) : tt::avg_pool2d(x, avg_options);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* t = std::getenv("TINYTORCH_THREADS")) tt::set_num_threads(std::atoi(t));
  for (const Shape& s : read_shapes()) {
    for (tt::Conv2dAlgorithm a : tt::all_conv2d_algorithms()) {
      if (a == tt::Conv2dAlgorithm::Reference) continue;
      if (!tt::conv2d_algorithm_supports(a, {s.N, s.C, s.H, s.W}, {s.K, s.C / s.groups, s.KH, s.KW},
                                         {s.stride, s.pad, s.dilation, s.groups}))
        continue;
      benchmark::RegisterBenchmark((s.name + "/" + tt::to_string(a)).c_str(),
                                   [s, a](benchmark::State& st) { run_conv(st, s, a); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  for (bool max : {true, false}) {
    benchmark::RegisterBenchmark(max ? "maxpool2d/32x32x28x28/k2" : "avgpool2d/32x32x28x28/k2",
                                 [max](benchmark::State& st) { run_pool(st, max, 32, 32, 28, 2); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
}

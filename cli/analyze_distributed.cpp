// `tinytorch analyze --distributed`: data-parallel training on 1 to 1,024 processes, predicted from
// what is measured here.
//
// Measured (by two processes under mpirun over loopback TCP, `--distributed-probe`): the
// allreduce's latency alpha (half a 4-byte allreduce between 2 processes) and bandwidth beta
// (16 MiB), and one data-parallel training step of the default CNN (32 images per process, one
// thread each): its compute time, its backward time and the allreduce time left exposed after
// backward. In this process: the sustained GFLOP/s of a training step of a ResNet 3x3 layer.
//
// The model, per process count p and network: ring allreduce of the gradients (4 bytes per
// parameter) in 2 (p - 1) steps, T_ar = 2 (p - 1) alpha + 2 (p - 1) / p * bytes / beta; the part of
// it that overlaps backward is the fraction of backward the measured run overlapped, so
// exposed = max(0, T_ar - overlap * T_backward); a step is compute + exposed, with each process's
// compute fixed (weak scaling: the global batch grows with p). The networks' beta is their line
// rate; alpha is the loopback latency measured here (a lower bound for a real network).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "analyses.hpp"
#include "args.hpp"
#include "json.hpp"
#include "runtime_options.hpp"
#include "subprocess.hpp"
#include "timing.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

constexpr int64_t kImagesPerProcess = 32;
constexpr int kSteps = 12;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Median seconds of an allreduce of n floats over the job.
double allreduce_seconds(int64_t n, int repeats) {
  Tensor t = Tensor::ones({n});
  std::vector<double> times;
  for (int r = 0; r < repeats + 2; ++r) {
    distributed::barrier();
    const auto start = std::chrono::steady_clock::now();
    distributed::all_reduce(t);
    if (r >= 2) times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Probe {
  double alpha = 0, beta = 0;                          // seconds, bytes per second
  double step = 0, backward = 0, exposed = 0, ar = 0;  // seconds per step of the default CNN
};

Json probe_json(const Probe& p) {
  return {{"alpha", p.alpha},       {"beta", p.beta},       {"step", p.step},
          {"backward", p.backward}, {"exposed", p.exposed}, {"allreduce", p.ar}};
}

// Run by every process of `mpirun -np 2 tinytorch analyze --distributed-probe`; rank 0 prints JSON.
int run_probe() {
  distributed::init();
  if (distributed::world_size() < 2) throw UsageError("analyze --distributed-probe: run it under mpirun -np 2 or more");
  set_num_threads(1);
  Probe p;
  const double tiny = allreduce_seconds(1, 50);
  const int64_t big = int64_t{4} << 20;  // 16 MiB of floats
  const double large = allreduce_seconds(big, 5);
  const int world = distributed::world_size();
  p.alpha = tiny / (2.0 * (world - 1));
  p.beta =
      2.0 * (world - 1) / world * static_cast<double>(big * 4) / std::max(large - 2.0 * (world - 1) * p.alpha, 1e-9);

  manual_seed(0);
  auto model = make_fashion_cnn();
  std::vector<Tensor> params = model->parameters();
  for (Tensor& t : params) t.set_requires_grad();
  distributed::DataParallel ddp(params);
  Adam opt(params, 1e-3);
  Generator gen(distributed::rank() + 1);
  const Tensor x = Tensor::randn({kImagesPerProcess, 1, 28, 28}, gen);
  std::vector<int64_t> y(static_cast<size_t>(kImagesPerProcess));
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i % 10);
  double step = 0, backward = 0;
  for (int s = 0; s < kSteps + 2; ++s) {  // two warm-up steps, then the measured ones
    const distributed::CommunicationStats before = ddp.stats();
    const auto start = std::chrono::steady_clock::now();
    ddp.prepare();
    Tensor loss = cross_entropy((*model)(x), y);
    opt.zero_grad();
    const auto back = std::chrono::steady_clock::now();
    loss.backward();
    const double b = seconds_since(back);
    ddp.finish();
    opt.step();
    if (s >= 2) {
      step += seconds_since(start);
      backward += b;
      p.exposed += ddp.stats().exposed_seconds - before.exposed_seconds;
    }
  }
  p.step = step / kSteps, p.backward = backward / kSteps, p.exposed /= kSteps;
  const double bytes = static_cast<double>(model->num_parameters()) * 4.0;
  p.ar = 2.0 * (world - 1) * p.alpha + 2.0 * (world - 1) / world * bytes / p.beta;
  if (distributed::rank() == 0) std::cout << json_text(probe_json(p)) << "\n";
  return 0;
}

Probe launch_probe() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) throw std::runtime_error("analyze --distributed: cannot find this program's path");
  exe[n] = '\0';
  std::string mpirun;
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/"}) {
    if (access((std::string(dir) + "mpirun").c_str(), X_OK) == 0) mpirun = std::string(dir) + "mpirun";
  }
  if (mpirun.empty()) {
    throw UsageError(
        "analyze --distributed: measuring the allreduce needs Open MPI's mpirun (apt-get install openmpi-bin)");
  }
  std::vector<std::string> argv{mpirun, "-np",      "2",     "--oversubscribe",    "--mca",
                                "btl",  "tcp,self", "--mca", "btl_tcp_if_include", "lo"};
  if (geteuid() == 0) argv.emplace_back("--allow-run-as-root");
  argv.insert(argv.end(), {exe, "analyze", "--distributed-probe"});
  const ProcessResult r = run_process(argv);
  if (!r.started || r.exit_code != 0) {
    throw std::runtime_error("analyze --distributed: the 2-process measurement failed: " +
                             (r.started ? r.err.substr(0, 600) : r.error));
  }
  const auto line = r.out.substr(0, r.out.find('\n'));
  const Json j = Json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("alpha")) {
    throw std::runtime_error("analyze --distributed: unexpected output from the measurement: " + line.substr(0, 200));
  }
  Probe p;
  p.alpha = j["alpha"], p.beta = j["beta"], p.step = j["step"], p.backward = j["backward"];
  p.exposed = j["exposed"], p.ar = j["allreduce"];
  return p;
}

// Seconds per image of a training step (forward + backward) at the sustained rate of a ResNet
// 3x3 layer (64 -> 64 channels, 56x56, batch 4) on one thread here.
double resnet_gflops() {
  set_num_threads(1);
  Generator gen(1);
  const Tensor x = Tensor::randn({4, 64, 56, 56}, gen);
  Tensor w = Tensor::randn({64, 64, 3, 3}, gen);
  w.set_requires_grad();
  Tensor xin = x.detach();
  xin.set_requires_grad();
  const Conv2dOptions o{.padding = 1};
  const double flops = 3.0 * 2 * 4 * 64 * 56 * 56 * 64 * 9;  // forward, input and weight gradients
  const double s = median_seconds(
      [&] {
        Tensor y = conv2d(xin, w, {}, o);
        y.backward(Tensor::ones(y.shape()));
      },
      3, 0.3, 20);
  return flops / s;
}

struct ModelShape {
  std::string name;
  double params;             // trained parameters
  double seconds_per_image;  // compute of a training step, one thread
};

}  // namespace

int analyze_distributed(bool json, const std::string& plot_stem, bool probe) {
  if (probe) return run_probe();
  if (!json)
    std::fprintf(stderr, "measuring the allreduce and a data-parallel step (mpirun -np 2, loopback TCP) ...\n");
  const Probe p = launch_probe();
  if (!json) std::fprintf(stderr, "measuring a ResNet layer's training rate ...\n");
  const double rate = resnet_gflops();
  // Weak scaling: each process trains kImagesPerProcess images per step.
  const double cnn_compute = p.step - p.exposed;
  const double overlap = std::clamp((p.ar - p.exposed) / std::max(p.backward, 1e-9), 0.0, 1.0);
  const std::vector<ModelShape> models{
      {"default CNN", 421834, cnn_compute / kImagesPerProcess},
      {"ResNet-18", 11689512, 3 * 1.814e9 / rate},  // torchvision's forward FLOPs at 224x224, x3
      {"ResNet-50", 25557032, 3 * 4.089e9 / rate}};
  const std::vector<std::pair<std::string, double>> networks{
      {"10 Gb/s", 10e9 / 8}, {"25 Gb/s", 25e9 / 8}, {"100 Gb/s", 100e9 / 8}};
  std::vector<int> ranks;
  for (int r = 1; r <= 1024; r *= 2) ranks.push_back(r);

  Json js = {{"title", "data-parallel training: predicted images/s (weak scaling, 32 images per process)"},
             {"measured", probe_json(p)},
             {"resnet_layer_gflops", rate / 1e9},
             {"overlap", overlap},
             {"ranks", ranks},
             {"series", Json::object()},
             {"efficiency", Json::object()}};
  for (const auto& m : models) {
    const double compute = m.seconds_per_image * kImagesPerProcess, backward = compute * 2.0 / 3.0;
    for (const auto& [net, beta] : networks) {
      std::vector<double> rate_p, eff;
      for (int r : ranks) {
        const double ar = r == 1 ? 0.0 : 2.0 * (r - 1) * p.alpha + 2.0 * (r - 1) / r * m.params * 4.0 / beta;
        const double exposed = std::max(0.0, ar - overlap * backward);
        const double images = r * kImagesPerProcess / (compute + exposed);
        rate_p.push_back(images);
        eff.push_back(images / (r * kImagesPerProcess / compute));
      }
      js["series"][m.name + ", " + net] = rate_p;
      js["efficiency"][m.name + ", " + net] = eff;
    }
  }
  if (json) {
    std::cout << json_text(js) << "\n";
    return 0;
  }
  std::printf("Data-parallel training, predicted from measurements on this machine\n\n");
  std::printf("Measured (2 processes, loopback TCP): allreduce latency %.1f us, bandwidth %.2f GB/s;\n", p.alpha * 1e6,
              p.beta / 1e9);
  std::printf("a step of the default CNN (32 images per process, 1 thread): %.2f ms, of which backward %.2f ms;\n",
              p.step * 1e3, p.backward * 1e3);
  std::printf("its allreduce (1.69 MB) would take %.2f ms, %.2f ms of it was left exposed after backward:\n",
              p.ar * 1e3, p.exposed * 1e3);
  std::printf("%.0f%% of backward overlapped communication. A ResNet 3x3 layer trains at %.1f GFLOP/s on 1 thread.\n\n",
              overlap * 100, rate / 1e9);
  std::printf("  %-12s %-9s", "model", "network");
  for (int r : ranks) std::printf(" %8d", r);
  std::printf("   (processes; images/s, then scaling efficiency)\n");
  for (const auto& m : models) {
    for (const auto& [net, beta] : networks) {
      const std::string key = m.name + ", " + net;
      std::printf("  %-12s %-9s", m.name.c_str(), net.c_str());
      for (double v : js["series"][key]) std::printf(" %8.0f", v);
      std::printf("\n  %-12s %-9s", "", "");
      for (double v : js["efficiency"][key]) std::printf(" %7.0f%%", 100 * v);
      std::printf("\n");
    }
  }
  std::printf(
      "\nThe model: ring allreduce, 2(p-1) latencies plus 2(p-1)/p of the gradient bytes over the link;\n"
      "the part that overlaps backward is the fraction measured above; the latency is the loopback\n"
      "one (a real network's is higher). Each process computes as this machine's one core does.\n");
  std::printf("%s\n", write_plot("distributed", json_text(js), plot_stem).c_str());
  return 0;
}

}  // namespace tinytorch::cli

#include "runtime_options.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "subprocess.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/file_io.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch::cli {

void add_runtime_options(Args& args) {
  args.option("threads", std::to_string(get_num_threads()), "threads for the kernels");
  args.option("conv-algo", "auto",
              "force a conv2d algorithm where it applies: auto, reference, im2col, gemm1x1, packed, winograd, "
              "depthwise, direct, batched, ocblock, blocked");
  args.flag("conv-autotune", "time the conv2d algorithms on each new shape and keep the fastest");
}

void apply_runtime_options(const Args& args) {
  set_num_threads(static_cast<int>(args.get_int("threads", 1, 1024)));
  try {
    set_conv2d_algorithm(conv2d_algorithm_from_string(args.get("conv-algo")));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--conv-algo: ") + e.what());
  }
  if (args.has("conv-autotune")) set_conv2d_autotune(true);
}

namespace {

bool readable(const std::string& path) { return std::ifstream(path).good(); }

// <the executable's folder>/../share/tinytorch/<name>: where an installed tool's data sits, both
// under /usr/local (bin/, share/tinytorch/) and inside a pip-installed package (tinytorch/bin/,
// tinytorch/share/tinytorch/).
std::string beside_executable(const std::string& name) {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string exe(buf, static_cast<size_t>(n));
  const size_t slash = exe.find_last_of('/');
  if (slash == std::string::npos) return "";
  return exe.substr(0, slash) + "/../share/tinytorch/" + name;
}

std::string first_existing(std::initializer_list<std::string> paths) {
  for (const std::string& p : paths)
    if (!p.empty() && readable(p)) return p;
  return "";
}

}  // namespace

std::string write_plot(const std::string& kind, const std::string& json, const std::string& out_stem) {
  const std::string json_path = out_stem + ".json", png_path = out_stem + ".png";
  write_file_atomic(json_path, json + "\n");
  const std::string script = first_existing(
      {TINYTORCH_SOURCE_DIR "/scripts/plot.py", TINYTORCH_SHARE_DIR "/plot.py", beside_executable("plot.py")});
  if (script.empty()) return "wrote " + json_path + " (no plot script found: no PNG)";
  // The script draws to its stdout ("-"); the PNG is then written here by the same atomic writer
  // as every other file. An argument vector, no shell: any path is just a path.
  const ProcessResult r = run_process({"/usr/bin/python3", script, kind, json_path, "-"});
  if (!r.started || r.exit_code != 0 || r.out.empty()) {
    std::string why = r.started ? r.err : r.error;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    const size_t last_line = why.find_last_of('\n');
    if (last_line != std::string::npos) why = why.substr(last_line + 1);
    if (why.empty()) why = "the plot script exited with code " + std::to_string(r.exit_code);
    return "wrote " + json_path + " (no PNG: " + why + ")";
  }
  write_file_atomic(png_path, r.out);
  return "wrote " + json_path + " and " + png_path;
}

std::string default_shapes_file() {
  return first_existing({TINYTORCH_SOURCE_DIR "/bench/conv_shapes.csv", TINYTORCH_SHARE_DIR "/conv_shapes.csv",
                         beside_executable("conv_shapes.csv")});
}

}  // namespace tinytorch::cli

// tinytorch: the command-line tool. `tinytorch demo`, `tinytorch analyze`; see --help.
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "tinytorch/distributed.hpp"
#include "tinytorch/version.hpp"

namespace {

const char* kUsage =
    "usage: tinytorch <command> [options]\n"
    "\n"
    "commands:\n"
    "  train      train the default CNN on Fashion-MNIST (progress, test accuracy, checkpoints)\n"
    "  eval       test accuracy and confusion matrix of a checkpoint\n"
    "  demo       the seed's CNN pipeline on a 3x28x28 input: shapes after each layer, parameters\n"
    "  analyze    the seed's systems analysis with measured numbers: conv time and memory scaling;\n"
    "             --loops (loop orders and cache locality), --threads (scaling over cores)\n"
    "  bench      Conv2D forward on the benchmark shapes: ms, GFLOP/s, % of peak\n"
    "  run        an ONNX model: output shape, top 5, --output y.npy, --bench latency and throughput\n"
    "  inspect    an ONNX model's graph after the passes: shapes, FLOPs, parameters, algorithm, memory plan\n"
    "\n"
    "Run 'tinytorch <command> --help' for a command's options.\n";

// Prints the error and returns the exit code. In a job of several processes the message names
// this one, and the whole job ends: the others are waiting for it in a collective.
int fail(int code, const std::string& message) {
  namespace dist = tinytorch::distributed;
  const bool team = dist::initialized() && dist::world_size() > 1;
  // One write: in a job, mpirun forwards each process's stderr as it reads it, and its own report
  // of the abort below landed between the pieces of a message written in three.
  const std::string line =
      "error: " +
      (team ? "process " + std::to_string(dist::rank()) + " of " + std::to_string(dist::world_size()) + ": " : "") +
      message + "\n";
  std::cerr << line << std::flush;
  if (team) dist::abort_job(code);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = tinytorch::cli;
  const std::vector<std::string> args(argv + (argc > 1 ? 2 : 1), argv + argc);
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "demo") return cli::run_demo(args);
    if (command == "analyze") return cli::run_analyze(args);
    if (command == "bench") return cli::run_bench(args);
    if (command == "train") return cli::run_train(args);
    if (command == "eval") return cli::run_eval(args);
    if (command == "run") return cli::run_run(args);
    if (command == "inspect") return cli::run_inspect(args);
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (command == "--version") {
      std::cout << "tinytorch " << tinytorch::kVersion << "\n";
      return 0;
    }
    std::cerr << (command.empty() ? "tinytorch: no command given\n" : "tinytorch: unknown command '" + command + "'\n")
              << kUsage;
    return 2;
  } catch (const cli::UsageError& e) {
    return fail(2, e.what());
  } catch (const std::invalid_argument& e) {  // bad input: shapes, values, unreadable data files
    return fail(2, e.what());
  } catch (const std::bad_alloc&) {
    return fail(1, "out of memory");
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

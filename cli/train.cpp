// `tinytorch train` and `tinytorch eval`: the default CNN on Fashion-MNIST, with a progress line,
// per-epoch test metrics, checkpoints, resume and a loss/accuracy curve.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "runtime_options.hpp"
#include "tinytorch/tinytorch.hpp"
#include "training_state.hpp"

namespace tinytorch::cli {
namespace {

const char* kDefaultData = "/usr/share/datasets/fashion-mnist";
const char* kClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Evaluation {
  double loss = 0, accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

// The test set's loss, accuracy and confusion matrix. Under data parallelism each process takes
// every world-th batch and the sums are added over the processes (the models are the same).
Evaluation evaluate(Module& model, const Dataset& data, int rank = 0, int world = 1) {
  NoGradGuard no_grad;
  model.eval();
  Evaluation e;
  e.confusion.assign(10, std::vector<int64_t>(10, 0));
  DataLoader loader(data, 250, false);  // big enough to be quick, small enough to keep memory low
  double total = 0;
  int64_t correct = 0;
  for (int64_t b = rank; b < loader.batches(); b += world) {
    auto [x, y] = loader.batch(b);
    const Tensor logits = model(x);
    total += cross_entropy(logits, y).item() * static_cast<double>(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const float* row = logits.data() + i * 10;
      const int64_t predicted = std::max_element(row, row + 10) - row;
      correct += predicted == y[i];
      e.confusion[static_cast<size_t>(y[i])][static_cast<size_t>(predicted)]++;
    }
  }
  if (world > 1) {
    std::vector<double> sums{total, static_cast<double>(correct)};
    for (const auto& row : e.confusion) sums.insert(sums.end(), row.begin(), row.end());
    distributed::all_reduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
    total = sums[0], correct = static_cast<int64_t>(sums[1]);
    for (size_t i = 0; i < 100; ++i) e.confusion[i / 10][i % 10] = static_cast<int64_t>(sums[2 + i]);
  }
  e.loss = total / static_cast<double>(data.size());
  e.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  return e;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params, double lr,
                                          double momentum, double weight_decay) {
  if (name == "adam") return std::make_unique<Adam>(std::move(params), lr, 0.9, 0.999, 1e-8, weight_decay);
  if (name == "adamw") return std::make_unique<AdamW>(std::move(params), lr, 0.9, 0.999, 1e-8, weight_decay);
  if (name == "sgd") return std::make_unique<SGD>(std::move(params), lr, momentum, weight_decay, momentum > 0);
  throw UsageError("train: --optimizer expects adam, adamw or sgd, got '" + name + "'");
}

double parse_double(const Args& args, const std::string& name, double lo, double hi) {
  const std::string text = args.get(name);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= lo && v <= hi)) {
    throw UsageError("--" + name + " expects a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got '" + text + "'");
  }
  return v;
}

// This process's resident memory now, in MiB (0 where /proc is unavailable).
double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0.0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::string fmt(const char* format, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a);
  return buf;
}

}  // namespace

namespace {

// Rewrites the metrics file: the lines of other runs (or not ours to parse) kept as they are,
// then this run's rows from its history. Rewriting from the history the checkpoint holds (not
// appending) means a run killed between its checkpoint and its metrics never shows an epoch
// twice or misses one after the resume.
void write_metrics(const std::string& path, const TrainingState& state) {
  std::string kept;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    std::istringstream in(read_regular_file(path, 64u << 20));
    for (std::string line; std::getline(in, line);) {
      const auto row = Json::parse(line, nullptr, false);
      const bool ours = row.is_object() && row.contains("run") && row["run"] == state.run_id;
      if (!ours && !line.empty()) kept += line + "\n";
    }
  }
  for (const auto& row : state.history) kept += json_text(row) + "\n";
  write_file_atomic(path, kept);
}

}  // namespace

namespace {

// Refuses, before hours of training, an output whose directory does not exist or is not writable.
void check_output_directory(const std::string& path, const char* option) {
  if (path.empty() || path.find('\0') != std::string::npos) throw UsageError(std::string(option) + ": empty path");
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw UsageError(std::string(option) + ": the directory '" + dir + "' does not exist");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw UsageError(std::string(option) + ": the directory '" + dir + "' is not writable");
  }
}

struct TrainOptions {
  std::string data, optimizer, schedule, checkpoint, metrics, plot, export_onnx;
  int64_t epochs = 0, batch = 0, limit = 0, every = 0;
  uint64_t seed = 0;
  double lr = 0, momentum = 0, weight_decay = 0;
  bool resume = false, augment = false, summary = false, sync_bn = false, deterministic = false;
};

// This process's part in a data-parallel run (rank 0 of 1 without one).
struct Team {
  int rank = 0, world = 1;
  bool lead() const { return rank == 0; }  // prints, writes files
};

// Declares, parses and checks `tinytorch train`'s options; false when --help was given.
bool parse_train_options(const std::vector<std::string>& argv, TrainOptions& o) {
  Args args("train",
            "Trains the default CNN (see `tinytorch train --model-summary`) on Fashion-MNIST, printing a progress\n"
            "line and the test accuracy after every epoch.");
  add_runtime_options(args);
  args.option("data", kDefaultData, "folder with the MNIST-format files (train-images-idx3-ubyte.gz, ...)");
  args.option("epochs", "3", "epochs to train");
  args.option("batch", "64", "batch size");
  args.option("lr", "0.001", "learning rate");
  args.option("optimizer", "adam", "adam, adamw or sgd (sgd uses Nesterov momentum)");
  args.option("momentum", "0.9", "SGD momentum");
  args.option("weight-decay", "0", "weight decay (L2 for adam/sgd, decoupled for adamw)");
  args.option("schedule", "cosine", "learning-rate schedule per epoch: cosine, step (x0.1 every 2 epochs) or none");
  args.option("seed", "0", "seed for the weights, the shuffling and dropout");
  args.option("limit", "0", "train on the first N examples only (0: all 60000)");
  args.option("checkpoint", "", "save model, optimizer and run state here after every epoch (safetensors)");
  args.option("checkpoint-every", "0", "also save every N batches (0: only after each epoch)");
  args.flag("resume", "continue from --checkpoint exactly where it was saved (same --seed, --batch, --limit)");
  args.option("metrics", "", "keep one JSON object per finished epoch in this file (other runs' lines are kept)");
  args.option("plot", "tinytorch_training", "where to write the loss/accuracy curve (JSON and PNG stem)");
  args.option("export-onnx", "", "after training, write the model here as ONNX (for ONNX Runtime, OpenVINO, ...)");
  args.flag("augment", "random shifts of up to 2 pixels and horizontal flips");
  args.flag("sync-bn", "under mpirun: batch norm with the whole global batch's statistics (default: each process's)");
  args.flag("deterministic", "under mpirun: gradients summed in rank order, bit-identical from run to run");
  args.flag("model-summary", "print the model and exit");
  if (!args.parse(argv)) return false;
  apply_runtime_options(args);
  o.epochs = args.get_int("epochs", 1, 1000), o.batch = args.get_int("batch", 1, 65536);
  o.limit = args.get_int("limit", 0, 1 << 30);
  o.every = args.get_int("checkpoint-every", 0, INT64_MAX);
  o.seed = static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX));
  o.lr = parse_double(args, "lr", 1e-8, 10), o.momentum = parse_double(args, "momentum", 0, 0.999);
  o.weight_decay = parse_double(args, "weight-decay", 0, 1);
  o.data = args.get("data"), o.optimizer = args.get("optimizer"), o.schedule = args.get("schedule");
  o.checkpoint = args.get("checkpoint"), o.metrics = args.get("metrics"), o.plot = args.get("plot");
  o.export_onnx = args.get("export-onnx");
  o.sync_bn = args.has("sync-bn"), o.deterministic = args.has("deterministic");
  if (!o.export_onnx.empty()) check_output_directory(o.export_onnx, "--export-onnx");
  o.resume = args.has("resume"), o.augment = args.has("augment"), o.summary = args.has("model-summary");
  if (o.schedule != "cosine" && o.schedule != "step" && o.schedule != "none") {
    throw UsageError("train: --schedule expects cosine, step or none, got '" + o.schedule + "'");
  }
  if (o.resume && o.checkpoint.empty()) throw UsageError("train: --resume needs --checkpoint FILE");
  if (o.every > 0 && o.checkpoint.empty()) throw UsageError("train: --checkpoint-every needs --checkpoint FILE");
  return true;
}

// The batches of one epoch from state.batch on, with the progress line and the mid-epoch saves.
// A non-finite loss stops before its step changes the weights: the last checkpoint stays the last
// good one.
void train_epoch(Module& model, Optimizer& opt, DataLoader& loader, TrainingState& state, const TrainOptions& o,
                 int64_t epoch, const std::function<void()>& save, const Team& team, distributed::DataParallel& ddp) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto last_print = start;
  const int64_t first_batch = state.batch;
  for (int64_t b = first_batch; b < loader.batches(); ++b) {
    auto [x, y] = loader.batch(b);
    // Data parallelism: this process's rows of the global batch. Its loss is scaled by its share
    // of the batch (times the processes, since the gradients are averaged), so the averaged
    // gradient is the whole batch's; the reported loss is the whole batch's mean.
    const int64_t rows = static_cast<int64_t>(y.size());
    const auto [begin, end] = distributed::shard_rows(rows, team.rank, team.world);
    if (rows < team.world) continue;  // a last batch smaller than the processes (skipped, as announced)
    const Tensor xs = team.world > 1 ? x.slice(0, begin, end) : x;
    const std::vector<int64_t> ys(y.begin() + begin, y.begin() + end);
    double value = 0.0;
    {
      distributed::ShardScope shard(begin, end, rows);
      ddp.prepare();
      Tensor loss = cross_entropy(model(xs), ys);
      double sums[2] = {loss.item() * static_cast<double>(end - begin), static_cast<double>(end - begin)};
      if (team.world > 1) {
        loss = loss * static_cast<float>(static_cast<double>((end - begin) * team.world) / static_cast<double>(rows));
        distributed::all_reduce_sum(sums, 2);
      }
      value = sums[0] / sums[1];
      if (std::isfinite(value)) {
        opt.zero_grad();
        loss.backward();
        ddp.finish();
      }
    }
    if (!std::isfinite(value)) {
      if (team.lead()) std::fprintf(stderr, "\n");
      throw std::runtime_error(
          "training diverged: the loss is " + std::string(std::isnan(value) ? "nan" : "infinite") + " at epoch " +
          std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1) + " (lr " + fmt("%g", opt.lr()) +
          "); stopped without saving" +
          (o.checkpoint.empty() ? std::string() : ", '" + o.checkpoint + "' holds the last good state") +
          ". Try a lower --lr.");
    }
    opt.step();
    state.loss_sum += value * static_cast<double>(y.size());
    state.seen += static_cast<int64_t>(y.size());
    state.batch = b + 1;
    const auto now = clock::now();
    if (team.lead() && (now - last_print > std::chrono::milliseconds(250) || b + 1 == loader.batches())) {
      last_print = now;
      const double rate = static_cast<double>(b + 1 - first_batch) / std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "\repoch %lld/%lld [%5lld/%lld] %6.1f batches/s %7.0f images/s  loss %.4f  ETA %4.0fs ",
                   (long long)epoch + 1, (long long)o.epochs, (long long)b + 1, (long long)loader.batches(), rate,
                   rate * static_cast<double>(o.batch), state.loss_sum / static_cast<double>(state.seen),
                   static_cast<double>(loader.batches() - b - 1) / rate);
    }
    if (o.every > 0 && state.batch % o.every == 0 && state.batch < loader.batches() && team.lead()) save();
  }
}

}  // namespace

int run_train(const std::vector<std::string>& argv) {
  // Under mpirun or srun: data parallelism across the processes, without a flag. Each takes an
  // equal share of the cores by default.
  Team team;
  if (distributed::launched()) {
    distributed::init();
    team.rank = distributed::rank(), team.world = distributed::world_size();
    if (team.world > 1) set_num_threads(std::max(1, get_num_threads() / distributed::local_size()));
  }
  TrainOptions o;
  if (!parse_train_options(argv, o)) return 0;
  if (o.batch % team.world != 0) {
    throw UsageError("train: --batch " + std::to_string(o.batch) + " (the global batch) does not divide among " +
                     std::to_string(team.world) + " processes");
  }
  manual_seed(o.seed);
  auto model = make_fashion_cnn();
  if (o.summary) {
    if (!team.lead()) return 0;
    std::cout << model->repr() << "\n" << model->num_parameters() << " parameters\n";
    return 0;
  }
  std::vector<Tensor> params = model->parameters();
  for (Tensor& p : params) p.set_requires_grad();
  std::unique_ptr<Optimizer> opt = make_optimizer(o.optimizer, params, o.lr, o.momentum, o.weight_decay);
  distributed::DataParallel ddp(params, {.deterministic = o.deterministic});
  std::vector<Tensor> buffers;
  for (auto& [name, t] : model->named_buffers()) buffers.push_back(t);
  ddp.broadcast_parameters(buffers);  // every process starts from rank 0's weights
  distributed::set_sync_batch_norm(o.sync_bn);

  if (team.lead()) std::fprintf(stderr, "loading %s ...\n", o.data.c_str());
  const Dataset train = load_mnist_folder(o.data, true, o.limit);
  const Dataset test = load_mnist_folder(o.data, false);
  const RunConfig run{o.seed, o.epochs, o.batch, train.size()};
  TrainingState state;
  state.run_id = new_run_id();
  if (o.resume) {
    const auto meta = load_checkpoint(o.checkpoint, *model, opt.get());
    state = parse_training_metadata(meta, run, opt->steps(), o.checkpoint);
    default_generator().set_state(state.generator);
    if (team.lead())
      std::fprintf(stderr, "resumed from %s after epoch %lld, batch %lld\n", o.checkpoint.c_str(),
                   (long long)state.epoch, (long long)state.batch);
    // A kill between the last checkpoint and its metrics left the file one epoch behind.
    if (!o.metrics.empty() && team.lead()) write_metrics(o.metrics, state);
  }
  if (!team.lead()) {
    // Only rank 0 prints and writes files.
    o.metrics.clear(), o.checkpoint.clear(), o.export_onnx.clear();
  }
  if (team.world > 1 && team.lead()) {
    const int64_t last = train.size() % o.batch;
    std::printf("data parallel: %d processes, %lld images of each batch of %lld per process, %s batch norm%s\n",
                team.world, (long long)(o.batch / team.world), (long long)o.batch,
                o.sync_bn ? "synchronized" : "per-process", o.deterministic ? ", deterministic reduction" : "");
    if (last > 0 && last < team.world) {
      std::printf("note: the last batch of each epoch (%lld images) is smaller than the processes and is skipped\n",
                  (long long)last);
    }
  }
  if (team.lead())
    std::printf("training %lld parameters on %lld images (test: %lld), batch %lld, %s, lr %g (%s), %d thread(s)\n",
                (long long)model->num_parameters(), (long long)train.size(), (long long)test.size(), (long long)o.batch,
                opt->type_name().c_str(), o.lr, o.schedule.c_str(), get_num_threads());
  const std::function<void()> save = [&] {
    state.generator = default_generator().state();
    save_checkpoint(o.checkpoint, *model, opt.get(), training_metadata(state, run));
  };

  DataLoader loader(train, o.batch, true, o.seed, o.augment ? 2 : 0, o.augment);
  for (int64_t epoch = state.epoch; epoch < o.epochs; ++epoch) {
    if (o.schedule == "cosine") opt->set_lr(cosine_lr(o.lr, epoch, o.epochs, o.lr * 0.01));
    if (o.schedule == "step") opt->set_lr(step_lr(o.lr, epoch, 2, 0.1));
    model->train();
    loader.start_epoch(epoch);
    const auto start = std::chrono::steady_clock::now();
    train_epoch(*model, *opt, loader, state, o, epoch, save, team, ddp);
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Per-process batch norm: every process evaluates with rank 0's statistics, as DDP's buffers.
    if (team.world > 1 && !o.sync_bn) ddp.broadcast_parameters(buffers);
    const Evaluation e = evaluate(*model, test, team.rank, team.world);
    const double train_loss = state.loss_sum / static_cast<double>(state.seen);
    if (!team.lead()) {
      state.epoch = epoch + 1, state.batch = 0, state.loss_sum = 0, state.seen = 0;
      continue;
    }
    std::fprintf(stderr, "\n");
    std::printf("epoch %lld: train loss %.4f, test loss %.4f, test accuracy %.2f%% (%.1f s, lr %.2e)\n",
                (long long)epoch + 1, train_loss, e.loss, 100 * e.accuracy, epoch_seconds, opt->lr());
    std::fflush(stdout);
    state.history.push_back({{"run", state.run_id},
                             {"epoch", epoch + 1},
                             {"train_loss", train_loss},
                             {"test_loss", e.loss},
                             {"test_accuracy", e.accuracy},
                             {"lr", opt->lr()},
                             {"epoch_seconds", epoch_seconds},
                             {"rss_mib", resident_mib()},
                             {"tensor_mib", static_cast<double>(memory_stats().current_bytes) / (1024.0 * 1024.0)}});
    state.epoch = epoch + 1, state.batch = 0, state.loss_sum = 0, state.seen = 0;
    // The checkpoint first: the metrics file is rewritten from the history it holds.
    if (!o.checkpoint.empty()) save();
    if (!o.metrics.empty()) write_metrics(o.metrics, state);
  }
  if (team.world > 1 && team.lead()) {
    const distributed::CommunicationStats& c = ddp.stats();
    const double steps = static_cast<double>(std::max<int64_t>(c.steps, 1));
    std::printf(
        "gradient allreduce: %.2f MB per step in %lld buckets, %.2f ms per step in flight, %.2f ms exposed "
        "(waited for after backward)\n",
        static_cast<double>(c.bytes) / steps / 1e6, (long long)(c.buckets / std::max<int64_t>(c.steps, 1)),
        1e3 * c.total_seconds / steps, 1e3 * c.exposed_seconds / steps);
  }
  if (!state.history.empty() && team.lead()) {
    Json curve = {{"title", "tinytorch train: default CNN on Fashion-MNIST"}, {"epochs", state.history}};
    std::printf("%s\n", write_plot("curves", json_text(curve), o.plot).c_str());
  }
  if (!o.export_onnx.empty()) {
    onnx::export_module(*model, {1, 1, 28, 28}, o.export_onnx);
    std::printf("wrote %s (ONNX opset 13, batch size free), checked against the model on a second input\n",
                o.export_onnx.c_str());
  }
  return 0;
}

int run_eval(const std::vector<std::string>& argv) {
  Args args("eval",
            "Evaluates a checkpoint of the default CNN on the Fashion-MNIST test set: accuracy and the\n"
            "confusion matrix.");
  add_runtime_options(args);
  args.option("checkpoint", "", "the checkpoint to evaluate (required)");
  args.option("data", kDefaultData, "folder with the MNIST-format files");
  if (!args.parse(argv)) return 0;
  apply_runtime_options(args);
  if (args.get("checkpoint").empty()) throw UsageError("eval: --checkpoint FILE is required");
  auto model = make_fashion_cnn();
  load_checkpoint(args.get("checkpoint"), *model, nullptr);
  const Dataset test = load_mnist_folder(args.get("data"), false);
  const Evaluation e = evaluate(*model, test);
  std::printf(
      "test accuracy %.2f%% (%lld images), test loss %.4f\n\nconfusion matrix (rows: true class, columns: "
      "predicted)\n%14s",
      100 * e.accuracy, (long long)test.size(), e.loss, "");
  for (int c = 0; c < 10; ++c) std::printf("%6d", c);
  std::printf("\n");
  for (int r = 0; r < 10; ++r) {
    std::printf("%d %-12s", r, kClasses[r]);
    for (int c = 0; c < 10; ++c)
      std::printf("%6lld", (long long)e.confusion[static_cast<size_t>(r)][static_cast<size_t>(c)]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace tinytorch::cli

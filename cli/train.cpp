// `tinytorch train` and `tinytorch eval`: the default CNN on Fashion-MNIST, with a progress line,
// per-epoch test metrics, checkpoints, resume and a loss/accuracy curve.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "runtime_options.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

const char* kDefaultData = "/usr/share/datasets/fashion-mnist";
const char* kClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Evaluation {
  double loss = 0, accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

Evaluation evaluate(Module& model, const Dataset& data) {
  NoGradGuard no_grad;
  model.eval();
  Evaluation e;
  e.confusion.assign(10, std::vector<int64_t>(10, 0));
  DataLoader loader(data, 250, false);  // big enough to be quick, small enough to keep memory low
  double total = 0;
  int64_t correct = 0;
  for (int64_t b = 0; b < loader.batches(); ++b) {
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

std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c, d);
  return buf;
}

}  // namespace

int run_train(const std::vector<std::string>& argv) {
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
  args.option("checkpoint", "", "save model and optimizer here after every epoch (safetensors)");
  args.flag("resume", "continue from --checkpoint");
  args.option("metrics", "", "append one JSON object per epoch to this file");
  args.option("plot", "tinytorch_training", "where to write the loss/accuracy curve (JSON and PNG stem)");
  args.flag("augment", "random shifts of up to 2 pixels and horizontal flips");
  args.flag("model-summary", "print the model and exit");
  if (!args.parse(argv)) return 0;
  apply_runtime_options(args);
  const int64_t epochs = args.get_int("epochs", 1, 1000), batch = args.get_int("batch", 1, 65536);
  const int64_t limit = args.get_int("limit", 0, 1 << 30);
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX));
  const double lr = parse_double(args, "lr", 1e-8, 10), momentum = parse_double(args, "momentum", 0, 0.999);
  const double weight_decay = parse_double(args, "weight-decay", 0, 1);
  const std::string schedule = args.get("schedule");
  if (schedule != "cosine" && schedule != "step" && schedule != "none") {
    throw UsageError("train: --schedule expects cosine, step or none, got '" + schedule + "'");
  }
  if (args.has("resume") && args.get("checkpoint").empty()) throw UsageError("train: --resume needs --checkpoint FILE");

  manual_seed(seed);
  auto model = make_fashion_cnn();
  if (args.has("model-summary")) {
    std::cout << model->repr() << "\n" << model->num_parameters() << " parameters\n";
    return 0;
  }
  std::vector<Tensor> params = model->parameters();
  for (Tensor& p : params) p.set_requires_grad();
  std::unique_ptr<Optimizer> opt = make_optimizer(args.get("optimizer"), params, lr, momentum, weight_decay);

  std::fprintf(stderr, "loading %s ...\n", args.get("data").c_str());
  const Dataset train = load_mnist_folder(args.get("data"), true, limit);
  const Dataset test = load_mnist_folder(args.get("data"), false);
  int64_t first_epoch = 0;
  if (args.has("resume")) {
    const auto meta = load_checkpoint(args.get("checkpoint"), *model, opt.get());
    auto it = meta.find("epoch");
    first_epoch = it == meta.end() ? 0 : std::stoll(it->second);
    std::fprintf(stderr, "resumed from %s after epoch %lld\n", args.get("checkpoint").c_str(), (long long)first_epoch);
  }
  std::printf("training %lld parameters on %lld images (test: %lld), batch %lld, %s, lr %g (%s), %d thread(s)\n",
              (long long)model->num_parameters(), (long long)train.size(), (long long)test.size(), (long long)batch,
              opt->type_name().c_str(), lr, schedule.c_str(), get_num_threads());

  DataLoader loader(train, batch, true, seed, args.has("augment") ? 2 : 0, args.has("augment"));
  std::ostringstream curve;
  curve << "{\"title\": \"tinytorch train: default CNN on Fashion-MNIST\", \"epochs\": [";
  std::vector<std::string> rows;
  using clock = std::chrono::steady_clock;
  for (int64_t epoch = first_epoch; epoch < epochs; ++epoch) {
    if (schedule == "cosine") opt->set_lr(cosine_lr(lr, epoch, epochs, lr * 0.01));
    if (schedule == "step") opt->set_lr(step_lr(lr, epoch, 2, 0.1));
    model->train();
    loader.start_epoch(epoch);
    const auto start = clock::now();
    auto last_print = start;
    double loss_sum = 0;
    int64_t seen = 0;
    for (int64_t b = 0; b < loader.batches(); ++b) {
      auto [x, y] = loader.batch(b);
      Tensor loss = cross_entropy((*model)(x), y);
      opt->zero_grad();
      loss.backward();
      opt->step();
      loss_sum += loss.item() * static_cast<double>(y.size());
      seen += static_cast<int64_t>(y.size());
      const auto now = clock::now();
      if (now - last_print > std::chrono::milliseconds(250) || b + 1 == loader.batches()) {
        last_print = now;
        const double secs = std::chrono::duration<double>(now - start).count();
        const double rate = (b + 1) / secs;
        std::fprintf(stderr, "\repoch %lld/%lld [%5lld/%lld] %6.1f batches/s %7.0f images/s  loss %.4f  ETA %4.0fs ",
                     (long long)epoch + 1, (long long)epochs, (long long)b + 1, (long long)loader.batches(), rate,
                     seen / secs, loss_sum / seen, (loader.batches() - b - 1) / rate);
      }
    }
    const double epoch_seconds = std::chrono::duration<double>(clock::now() - start).count();
    const Evaluation e = evaluate(*model, test);
    std::fprintf(stderr, "\n");
    std::printf("epoch %lld: train loss %.4f, test loss %.4f, test accuracy %.2f%% (%.1f s, lr %.2e)\n",
                (long long)epoch + 1, loss_sum / seen, e.loss, 100 * e.accuracy, epoch_seconds, opt->lr());
    std::fflush(stdout);
    const std::string row = fmt("{\"epoch\": %.0f, \"train_loss\": %.6f, \"test_loss\": %.6f, ", epoch + 1,
                                loss_sum / seen, e.loss) +
                            fmt("\"test_accuracy\": %.6f, \"epoch_seconds\": %.3f, \"lr\": %.6g, ", e.accuracy,
                                epoch_seconds, opt->lr()) +
                            fmt("\"rss_mib\": %.1f, \"tensor_mib\": %.1f}", resident_mib(),
                                memory_stats().current_bytes / (1024.0 * 1024.0));
    rows.push_back(row);
    if (!args.get("metrics").empty()) {
      std::ofstream m(args.get("metrics"), std::ios::app);
      if (!m) throw std::runtime_error("cannot write metrics to '" + args.get("metrics") + "'");
      m << row << "\n";
    }
    if (!args.get("checkpoint").empty()) {
      save_checkpoint(args.get("checkpoint"), *model, opt.get(),
                      {{"epoch", std::to_string(epoch + 1)}, {"seed", std::to_string(seed)}, {"model", "fashion_cnn"}});
    }
  }
  if (!rows.empty()) {
    for (size_t i = 0; i < rows.size(); ++i) curve << (i ? ", " : "") << rows[i];
    curve << "]}";
    std::printf("%s\n", write_plot("curves", curve.str(), args.get("plot")).c_str());
  }
  return 0;
}

int run_eval(const std::vector<std::string>& argv) {
  Args args("eval", "Evaluates a checkpoint of the default CNN on the Fashion-MNIST test set: accuracy and the\n"
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
  std::printf("test accuracy %.2f%% (%lld images), test loss %.4f\n\nconfusion matrix (rows: true class, columns: "
              "predicted)\n%14s", 100 * e.accuracy, (long long)test.size(), e.loss, "");
  for (int c = 0; c < 10; ++c) std::printf("%6d", c);
  std::printf("\n");
  for (int r = 0; r < 10; ++r) {
    std::printf("%d %-12s", r, kClasses[r]);
    for (int c = 0; c < 10; ++c) std::printf("%6lld", (long long)e.confusion[static_cast<size_t>(r)][static_cast<size_t>(c)]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace tinytorch::cli

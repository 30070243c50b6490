#include "training_state.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "tinytorch/errors.hpp"
#include "tinytorch/random.hpp"

namespace tinytorch::cli {
namespace {

constexpr const char* kFormat = "tinytorch training state 2";

std::string hex_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);  // exact: a resumed sum continues bit for bit
  return buf;
}

class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& m, const std::string& path) : m_(m), path_(path) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw DataError("'" + path_ + "': cannot resume: metadata '" + key + "' " + why);
  }
  const std::string& text(const std::string& key) const {
    auto it = m_.find(key);
    if (it == m_.end()) fail(key, "is missing (a checkpoint not written by `tinytorch train`, or by an older version)");
    return it->second;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const std::string& s = text(key);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi ||
        !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) {
      fail(key, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + s + "'");
    }
    return v;
  }
  double finite_nonnegative(const std::string& key) const {
    const std::string& s = text(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v) || v < 0)
      fail(key, "must be a finite number >= 0, got '" + s + "'");
    return v;
  }

 private:
  const std::map<std::string, std::string>& m_;
  const std::string& path_;
};

}  // namespace

std::string new_run_id() {
  std::random_device rd;
  const uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::map<std::string, std::string> training_metadata(const TrainingState& s, const RunConfig& run) {
  Json history = Json::array();
  for (const auto& row : s.history) history.push_back(row);
  return {{"model", "fashion_cnn"},
          {"training_state", kFormat},
          {"seed", std::to_string(run.seed)},
          {"batch_size", std::to_string(run.batch_size)},
          {"train_size", std::to_string(run.train_size)},
          {"run_id", s.run_id},
          {"epoch", std::to_string(s.epoch)},
          {"batch", std::to_string(s.batch)},
          {"loss_sum", hex_double(s.loss_sum)},
          {"seen", std::to_string(s.seen)},
          {"generator", s.generator},
          {"history", json_text(history)}};
}

TrainingState parse_training_metadata(const std::map<std::string, std::string>& metadata, const RunConfig& run,
                                      int64_t optimizer_steps, const std::string& path) {
  const MetadataReader r(metadata, path);
  if (r.text("model") != "fashion_cnn")
    r.fail("model", "is '" + r.text("model") + "', not the default CNN (fashion_cnn)");
  if (r.text("training_state") != kFormat)
    r.fail("training_state", "is '" + r.text("training_state") + "', expected '" + kFormat + "'");
  const int64_t seed = r.integer("seed", 0, INT64_MAX);
  if (static_cast<uint64_t>(seed) != run.seed) {
    r.fail("seed", "is " + std::to_string(seed) + " but this run has --seed " + std::to_string(run.seed) +
                       ": resume with the seed the run started with");
  }
  if (r.integer("batch_size", 1, INT64_MAX) != run.batch_size) {
    r.fail("batch_size", "is " + r.text("batch_size") + " but this run has --batch " + std::to_string(run.batch_size));
  }
  if (r.integer("train_size", 1, INT64_MAX) != run.train_size) {
    r.fail("train_size", "is " + r.text("train_size") + " but this run trains on " + std::to_string(run.train_size) +
                             " examples (--limit and --data must match)");
  }
  TrainingState s;
  s.run_id = r.text("run_id");
  if (s.run_id.size() != 16 || s.run_id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    r.fail("run_id", "must be 16 hex digits, got '" + s.run_id + "'");
  }
  s.epoch = r.integer("epoch", 0, run.epochs);
  const int64_t batches = run.batches_per_epoch();
  s.batch = r.integer("batch", 0, s.epoch == run.epochs ? 0 : batches - 1);
  s.seen = r.integer("seen", 0, run.train_size);
  if (s.seen != s.batch * run.batch_size) {
    r.fail("seen", "is " + std::to_string(s.seen) + " but " + std::to_string(s.batch) + " batches of " +
                       std::to_string(run.batch_size) + " were trained");
  }
  s.loss_sum = r.finite_nonnegative("loss_sum");
  if (s.batch == 0 && s.loss_sum != 0) r.fail("loss_sum", "must be 0 at the start of an epoch");
  if (optimizer_steps != s.epoch * batches + s.batch) {
    r.fail("optimizer_steps", "is " + std::to_string(optimizer_steps) + " but the run trained " +
                                  std::to_string(s.epoch * batches + s.batch) + " batches");
  }
  s.generator = r.text("generator");
  Generator check;
  try {
    check.set_state(s.generator);
  } catch (const DataError& e) {
    r.fail("generator", std::string("is not a generator state: ") + e.what());
  }
  const auto history = Json::parse(r.text("history"), nullptr, false);
  if (history.is_discarded() || !history.is_array() || static_cast<int64_t>(history.size()) != s.epoch) {
    r.fail("history", "must be a JSON array of one row per finished epoch (" + std::to_string(s.epoch) + ")");
  }
  for (size_t i = 0; i < history.size(); ++i) {
    const auto& row = history[i];
    if (!row.is_object() || !row.contains("epoch") || !row["epoch"].is_number_integer() ||
        row["epoch"].get<int64_t>() != static_cast<int64_t>(i) + 1) {
      r.fail("history", "row " + std::to_string(i) + " is not the metrics of epoch " + std::to_string(i + 1));
    }
    s.history.push_back(row);
  }
  return s;
}

}  // namespace tinytorch::cli

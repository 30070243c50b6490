// The state of a `tinytorch train` run beyond its tensors: where it stands (epoch, batch, the
// partial loss), the dropout generator, and the metrics of finished epochs. It is kept in the
// checkpoint's metadata, so that a run killed at any moment resumes from its last save exactly
// as if it had never stopped (the data order and augmentation are functions of the seed, epoch
// and batch index; see DataLoader).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json.hpp"

namespace tinytorch::cli {

// What a resumed run must share with the run that saved the checkpoint.
struct RunConfig {
  uint64_t seed = 0;
  int64_t epochs = 0;
  int64_t batch_size = 0;
  int64_t train_size = 0;  // examples per epoch
  int64_t batches_per_epoch() const { return (train_size + batch_size - 1) / batch_size; }
};

struct TrainingState {
  std::string run_id;         // tells this run's lines in a shared metrics file from others'
  int64_t epoch = 0;          // epochs finished
  int64_t batch = 0;          // batches finished in the current epoch (0 at an epoch boundary)
  double loss_sum = 0;        // the sum of per-example training losses over those batches
  int64_t seen = 0;           // the examples in them
  std::string generator;      // the default generator's state (dropout) after them
  std::vector<Json> history;  // one metrics row per finished epoch
};

std::map<std::string, std::string> training_metadata(const TrainingState& state, const RunConfig& run);

// Reads the state back from a checkpoint's metadata and checks it against the run: every field
// present, of its type and range, and consistent (the batch inside the epoch, `seen` matching the
// batches, one history row per finished epoch, `optimizer_steps` equal to the batches trained,
// the same seed, batch size and training-set size). DataError naming `path` and the field.
TrainingState parse_training_metadata(const std::map<std::string, std::string>& metadata, const RunConfig& run,
                                      int64_t optimizer_steps, const std::string& path);

// A new run's id: 16 hex digits from the system's random source.
std::string new_run_id();

}  // namespace tinytorch::cli

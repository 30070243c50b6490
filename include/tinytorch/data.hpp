// Data: the IDX (MNIST-format) reader, gzip through zlib, and a seeded DataLoader.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tinytorch/errors.hpp"
#include "tinytorch/random.hpp"
#include "tinytorch/tensor.hpp"

namespace tinytorch {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

// Reads an IDX image file (magic 0x00000803) or label file (0x00000801), gzip-compressed or
// not. Checks the magic number, the dimensions and that the data is exactly as long as they say.
IdxImages read_idx_images(const std::string& path);
std::vector<int64_t> read_idx_labels(const std::string& path);

struct Dataset {
  Tensor images;                // [N, 1, H, W], normalized: (pixel / 255 - mean) / std
  std::vector<int64_t> labels;  // [N]
  float pad_value = 0.0f;       // a blank pixel, normalized (what augmentation shifts in)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// The train or test split of an MNIST-format folder (train-images-idx3-ubyte.gz, ...), at most
// `limit` examples (0: all). Fashion-MNIST's statistics by default.
Dataset load_mnist_folder(const std::string& folder, bool train, int64_t limit = 0, float mean = 0.2860f,
                          float std = 0.3530f);
// Images and labels that must agree in count; DataError otherwise.
Dataset make_dataset(Tensor images, std::vector<int64_t> labels, float pad_value = 0.0f);

// Batches of a dataset in a seeded order (the same seed and epoch give the same batches), with
// optional augmentation: random shifts of up to `crop_padding` pixels (zero-filled) and random
// horizontal flips. Each batch's order and augmentation are a function of (seed, epoch, batch
// index) alone, so training can resume at any batch exactly. The loader keeps its own copy of
// the dataset (the images tensor shares its storage), so it may outlive the Dataset it was
// built from.
class DataLoader {
 public:
  DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed = 0, int64_t crop_padding = 0,
             bool flip = false);
  int64_t batches() const;          // per epoch (the last one may be short)
  void start_epoch(int64_t epoch);  // reshuffles for this epoch
  std::pair<Tensor, std::vector<int64_t>> batch(int64_t index) const;

 private:
  Dataset data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  int64_t crop_padding_;
  bool flip_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace tinytorch

// The IDX reader and the MNIST-format dataset loader. zlib's gzread reads gzip and plain files
// alike.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "tinytorch/data.hpp"
#include "tinytorch/file_io.hpp"

namespace tinytorch {
namespace {

constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 31;  // 2 GiB: far beyond any MNIST-format file

uint32_t big_endian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A gzip (or plain) stream over a regular file, closed on every path out.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    const int fd = open_regular_file(path, std::numeric_limits<uint64_t>::max(), nullptr);
    file_ = gzdopen(fd, "rb");
    if (!file_) {
      ::close(fd);
      throw DataError("cannot open '" + path + "': " + std::strerror(errno));
    }
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to `size` bytes; fewer only at the end of the stream.
  size_t read(uint8_t* out, size_t size) {
    size_t got = 0;
    while (got < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - got, 1u << 30));
      const int n = gzread(file_, out + got, chunk);
      if (n < 0) {
        int code = 0;
        throw DataError("'" + path_ + "' is not a readable gzip or IDX file: " + gzerror(file_, &code));
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

// Reads and validates the header (magic 0x0000 08 ndim, then ndim big-endian dimensions) and
// then exactly the payload the dimensions declare. The declared size is checked against the
// limit before anything is allocated, and the payload grows only as bytes actually arrive, so
// a small file that declares gigabytes costs no memory.
std::vector<uint8_t> read_idx(const std::string& path, int ndim, const char* kind, std::vector<int64_t>& dims) {
  GzReader in(path);
  uint8_t header[16];
  const size_t header_size = 4 + 4 * static_cast<size_t>(ndim);
  const size_t got = in.read(header, header_size);
  if (got < 4) throw DataError("'" + path + "': too short for an IDX header (" + std::to_string(got) + " bytes)");
  const uint32_t expected_magic = 0x00000800u | static_cast<uint32_t>(ndim);
  const uint32_t magic = big_endian(header);
  if (magic != expected_magic) {
    char seen[16], want[16];
    std::snprintf(seen, sizeof seen, "0x%08x", magic);
    std::snprintf(want, sizeof want, "0x%08x", expected_magic);
    throw DataError("'" + path + "': magic number " + seen + " is not that of an IDX " + kind + " file (" + want + ")");
  }
  if (got < header_size) throw DataError("'" + path + "': truncated in its header");
  uint64_t total = 1;
  dims.clear();
  for (int d = 0; d < ndim; ++d) {
    const uint32_t n = big_endian(header + 4 + 4 * d);
    if (n == 0 || n > (1u << 30)) {
      throw DataError("'" + path + "': dimension " + std::to_string(d) + " is " + std::to_string(n));
    }
    total *= n;
    if (total > kMaxIdxBytes) {
      throw DataError("'" + path + "': its dimensions describe more than 2 GiB of data: not an MNIST-format file");
    }
    dims.push_back(n);
  }
  std::vector<uint8_t> payload;
  constexpr size_t kChunk = size_t{16} << 20;
  while (payload.size() < total) {
    const size_t before = payload.size();
    payload.resize(before + std::min<size_t>(kChunk, total - before));
    const size_t n = in.read(payload.data() + before, payload.size() - before);
    if (n < payload.size() - before) {
      throw DataError("'" + path + "': expected " + std::to_string(total) + " bytes of data after the header, found " +
                      std::to_string(before + n) + " (truncated)");
    }
  }
  uint8_t extra;
  if (in.read(&extra, 1) != 0) {
    throw DataError("'" + path + "': more than the " + std::to_string(total) + " bytes of data its header declares");
  }
  return payload;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  std::vector<int64_t> dims;
  IdxImages out;
  out.pixels = read_idx(path, 3, "image", dims);
  out.count = dims[0], out.rows = dims[1], out.cols = dims[2];
  return out;
}

std::vector<int64_t> read_idx_labels(const std::string& path) {
  std::vector<int64_t> dims;
  const std::vector<uint8_t> bytes = read_idx(path, 1, "label", dims);
  return std::vector<int64_t>(bytes.begin(), bytes.end());
}

Dataset make_dataset(Tensor images, std::vector<int64_t> labels, float pad_value) {
  if (images.dim() != 4 || images.size(0) != static_cast<int64_t>(labels.size())) {
    throw DataError("dataset: " + std::to_string(labels.size()) + " labels do not match images of shape " +
                    shape_to_string(images.shape()));
  }
  return Dataset{std::move(images), std::move(labels), pad_value};
}

Dataset load_mnist_folder(const std::string& folder, bool train, int64_t limit, float mean, float std) {
  const std::string prefix = folder + "/" + (train ? "train" : "t10k");
  const IdxImages images = read_idx_images(prefix + "-images-idx3-ubyte.gz");
  std::vector<int64_t> labels = read_idx_labels(prefix + "-labels-idx1-ubyte.gz");
  if (static_cast<int64_t>(labels.size()) != images.count) {
    throw DataError("'" + prefix + "-labels-idx1-ubyte.gz' has " + std::to_string(labels.size()) + " labels for " +
                    std::to_string(images.count) + " images");
  }
  for (int64_t label : labels) {
    if (label > 9) {
      throw DataError("'" + prefix + "-labels-idx1-ubyte.gz': label " + std::to_string(label) + " is not in 0..9");
    }
  }
  const int64_t n = limit > 0 ? std::min(limit, images.count) : images.count;
  labels.resize(static_cast<size_t>(n));
  Tensor t = Tensor::empty({n, 1, images.rows, images.cols});
  const int64_t per = images.rows * images.cols;
  float* p = t.data_to_write();
  for (int64_t i = 0; i < n * per; ++i) p[i] = (images.pixels[static_cast<size_t>(i)] / 255.0f - mean) / std;
  return make_dataset(std::move(t), std::move(labels), (0.0f - mean) / std);
}

DataLoader::DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed, int64_t crop_padding,
                       bool flip)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), crop_padding_(crop_padding), flip_(flip) {
  if (batch_size < 1) throw ShapeError("DataLoader: batch_size must be positive, got " + std::to_string(batch_size));
  if (crop_padding < 0) throw ShapeError("DataLoader: crop_padding must be >= 0");
  if (data.size() == 0) throw DataError("DataLoader: the dataset is empty");
  if (!data.images.defined() || data.images.dim() != 4 || data.images.size(0) != data.size()) {
    throw DataError("DataLoader: expected images of shape [N, C, H, W] with N = " + std::to_string(data.size()) +
                    " labels, got " + (data.images.defined() ? shape_to_string(data.images.shape()) : "no images"));
  }
  start_epoch(0);
}

int64_t DataLoader::batches() const { return (data_.size() + batch_size_ - 1) / batch_size_; }

void DataLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  order_.resize(static_cast<size_t>(data_.size()));
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
  if (!shuffle_) return;
  Generator gen(seed_ * 1000003 + static_cast<uint64_t>(epoch));
  for (size_t i = order_.size() - 1; i > 0; --i) {  // Fisher-Yates
    const size_t j = static_cast<size_t>(gen.next_u64() % (i + 1));
    std::swap(order_[i], order_[j]);
  }
}

std::pair<Tensor, std::vector<int64_t>> DataLoader::batch(int64_t index) const {
  if (index < 0 || index >= batches()) {
    throw IndexError("DataLoader: batch " + std::to_string(index) + " of " + std::to_string(batches()));
  }
  const int64_t begin = index * batch_size_, count = std::min(batch_size_, data_.size() - begin);
  const Shape& s = data_.images.shape();
  const int64_t C = s[1], H = s[2], W = s[3], per = C * H * W;
  Tensor x = Tensor::empty({count, C, H, W});  // [count, C, H, W]
  std::vector<int64_t> y(static_cast<size_t>(count));
  Generator gen(seed_ * 7919 + static_cast<uint64_t>(epoch_) * 104729 + static_cast<uint64_t>(index));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t src = order_[static_cast<size_t>(begin + i)];
    y[static_cast<size_t>(i)] = data_.labels[static_cast<size_t>(src)];
    const float* from = data_.images.data() + src * per;
    float* to = x.data_to_write() + i * per;
    if (crop_padding_ == 0 && !flip_) {
      std::memcpy(to, from, static_cast<size_t>(per) * sizeof(float));
      continue;
    }
    // A random crop of the image padded by p on each side (a shift of up to p, filled with a
    // blank pixel), then maybe a mirror image.
    const int64_t span = 2 * crop_padding_ + 1;
    const int64_t dy = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(span)) - crop_padding_;
    const int64_t dx = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(span)) - crop_padding_;
    const bool mirror = flip_ && (gen.next_u64() & 1);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const int64_t sh = h + dy, sw0 = (mirror ? W - 1 - w : w) + dx;
          to[(c * H + h) * W + w] =
              (sh >= 0 && sh < H && sw0 >= 0 && sw0 < W) ? from[(c * H + sh) * W + sw0] : data_.pad_value;
        }
  }
  return {x, y};
}

}  // namespace tinytorch

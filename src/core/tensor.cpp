// Tensor: storage, factories, views and printing. See tensor.hpp for the model.
#include "tinytorch/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <mutex>
#include <new>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include "core/autograd_internal.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/runtime.hpp"

namespace tinytorch {

int64_t checked_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw ShapeError("invalid shape " + shape_to_string(shape) + ": sizes must be >= 0");
  }
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) {
      throw ShapeError("shape " + shape_to_string(shape) + " has more elements than an int64 can count");
    }
  }
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

namespace {

constexpr size_t kAlignment = 64;

// reshape/view: the gradient takes the input's shape back.
struct ReshapeBackward : autograd::Node {
  Shape input_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(input_shape)}; }
};

// operator[]: the gradient is zero but for row i.
struct SelectBackward : autograd::Node {
  Shape input_shape;
  int64_t index = 0;
  const char* name() const override { return "SelectBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor out = Tensor::zeros(input_shape);
    out[index].copy_(g);
    return {out};
  }
};

// Large blocks are kept for reuse when their tensors die: training allocates the same activation
// and gradient sizes every step, and fresh pages from the kernel (a page fault each) cost more
// than the work on small layers. Bounded; small blocks go straight back to malloc.
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10, kMaxCached = size_t{256} << 20;

  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, bytes);
    if (!p) {
      release_all();  // out of memory: give the cache back and try once more
      p = std::aligned_alloc(kAlignment, bytes);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }

  void put(void* p, size_t bytes) {
    if (bytes >= kMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCached) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

std::atomic<int64_t> live_bytes{0}, peak_bytes{0};

void count_allocation(int64_t bytes) {
  const int64_t now = live_bytes.fetch_add(bytes) + bytes;
  int64_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
}

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive static destructors
  return *cache;
}

std::shared_ptr<Storage> allocate(int64_t numel) {
  auto storage = std::make_shared<Storage>();
  storage->size = numel;
  if (numel == 0) return storage;
  // numel * 4 overflowing size_t, or simply too large, is an allocation failure.
  if (static_cast<uint64_t>(numel) > (SIZE_MAX - kAlignment) / sizeof(float)) throw std::bad_alloc();
  size_t bytes = static_cast<size_t>(numel) * sizeof(float);
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = block_cache().get(bytes);
  count_allocation(static_cast<int64_t>(bytes));
  storage->data = static_cast<float*>(p);
  storage->owner = std::shared_ptr<void>(p, [bytes](void* q) {
    live_bytes.fetch_sub(static_cast<int64_t>(bytes));
    block_cache().put(q, bytes);
  });
  return storage;
}

}  // namespace

MemoryStats memory_stats() { return {live_bytes.load(), peak_bytes.load()}; }
void reset_peak_memory() { peak_bytes.store(live_bytes.load()); }

namespace {}  // namespace

Tensor Tensor::empty(Shape shape) {
  auto impl = std::make_shared<Impl>();
  impl->numel = checked_numel(shape);
  impl->shape = std::move(shape);
  impl->storage = allocate(impl->numel);
  return Tensor(std::move(impl));
}

Tensor::Tensor(Shape shape) : Tensor(zeros(std::move(shape))) {}

Tensor::Tensor(Shape shape, std::vector<float> values) {
  const int64_t n = checked_numel(shape);
  if (static_cast<int64_t>(values.size()) != n) {
    throw ShapeError("Tensor: shape " + shape_to_string(shape) + " needs " + std::to_string(n) + " values, got " +
                     std::to_string(values.size()));
  }
  *this = empty(std::move(shape));
  std::copy(values.begin(), values.end(), data());
}

Tensor Tensor::zeros(Shape shape) { return full(std::move(shape), 0.0f); }
Tensor Tensor::ones(Shape shape) { return full(std::move(shape), 1.0f); }

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(int64_t end) { return arange(0.0, static_cast<double>(end), 1.0); }

Tensor Tensor::arange(double start, double end, double step) {
  if (step == 0.0 || !std::isfinite(step) || !std::isfinite(start) || !std::isfinite(end)) {
    throw ShapeError("arange: start, end and step must be finite and step nonzero");
  }
  const double count = std::ceil((end - start) / step);
  if (count > 9.0e15) throw ShapeError("arange: too many elements");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor t = empty({n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(start + step * static_cast<double>(i));
  return t;
}

Tensor Tensor::randn(Shape shape, Generator& gen) {
  Tensor t = empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = gen.normal();
  return t;
}

Tensor Tensor::rand(Shape shape, Generator& gen) {
  Tensor t = empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = gen.uniform();
  return t;
}

Tensor Tensor::from_blob(float* data, Shape shape, std::shared_ptr<void> owner) {
  auto impl = std::make_shared<Impl>();
  impl->numel = checked_numel(shape);
  if (data == nullptr && impl->numel > 0) {
    throw ArgumentError("Tensor::from_blob: data is null for a tensor of shape " + shape_to_string(shape));
  }
  impl->shape = std::move(shape);
  impl->storage = std::make_shared<Storage>();
  impl->storage->data = data;
  impl->storage->size = impl->numel;
  impl->storage->owner = std::move(owner);
  return Tensor(std::move(impl));
}

void Tensor::throw_undefined() { throw std::invalid_argument("Tensor: this tensor is undefined (holds no data)"); }

const std::shared_ptr<Storage>& Tensor::storage() const { return impl().storage; }

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  if (d < -n || d >= n) {
    throw IndexError("Tensor::size: dimension " + std::to_string(d) + " is out of range for a " + std::to_string(n) +
                     "D tensor");
  }
  return shape()[static_cast<size_t>(d < 0 ? d + n : d)];
}

int64_t Tensor::flat_index(std::initializer_list<int64_t> index) const {
  const Shape& s = shape();
  if (index.size() != s.size()) {
    throw IndexError("Tensor::at: expected " + std::to_string(s.size()) + " indices for shape " + shape_to_string(s) +
                     ", got " + std::to_string(index.size()));
  }
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : index) {
    const int64_t n = s[d];
    if (i < -n || i >= n) {
      throw IndexError("Tensor::at: index " + std::to_string(i) + " is out of range for dimension " +
                       std::to_string(d) + " of size " + std::to_string(n));
    }
    flat = flat * n + (i < 0 ? i + n : i);
    ++d;
  }
  return flat;
}

float& Tensor::at(std::initializer_list<int64_t> index) { return data()[flat_index(index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const { return data()[flat_index(index)]; }

float Tensor::item() const {
  if (numel() != 1) {
    throw ShapeError("Tensor::item: expected a tensor with one element, got shape " + shape_to_string(shape()));
  }
  return data()[0];
}

Tensor Tensor::operator[](int64_t i) const {
  const Impl& self = impl();
  if (self.shape.empty()) throw IndexError("Tensor[]: cannot index a 0-dimensional tensor");
  const int64_t n = self.shape[0];
  if (i < -n || i >= n) {
    throw IndexError("Tensor[]: index " + std::to_string(i) + " is out of range for dimension 0 of size " +
                     std::to_string(n));
  }
  if (i < 0) i += n;
  auto impl = std::make_shared<Impl>();
  impl->storage = self.storage;
  impl->shape = Shape(self.shape.begin() + 1, self.shape.end());
  impl->numel = n == 0 ? 0 : self.numel / n;
  impl->offset = self.offset + i * impl->numel;
  impl->autograd.reset();
  Tensor out(std::move(impl));
  if (autograd::needs_grad({this})) {
    auto node = std::make_shared<SelectBackward>();
    node->input_shape = self.shape;
    node->index = i;
    node->inputs = {*this};
    attach_grad_fn(out, node);
  }
  return out;
}

Tensor Tensor::reshape(Shape shape) const {
  const Impl& self = impl();
  int64_t known = 1;
  int inferred = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0) throw ShapeError("reshape: only one dimension can be -1, got " + shape_to_string(shape));
      inferred = static_cast<int>(d);
    } else if (shape[d] < 0) {
      throw ShapeError("reshape: invalid size " + std::to_string(shape[d]) + " in " + shape_to_string(shape));
    } else if (__builtin_mul_overflow(known, shape[d], &known)) {
      throw ShapeError("reshape: shape " + shape_to_string(shape) + " has more elements than an int64 can count");
    }
  }
  if (inferred >= 0) {
    if (known == 0 || self.numel % known != 0) {
      throw ShapeError("reshape: shape " + shape_to_string(shape) + " is invalid for input of size " +
                       std::to_string(self.numel));
    }
    shape[static_cast<size_t>(inferred)] = self.numel / known;
  } else if (known != self.numel) {
    throw ShapeError("reshape: shape " + shape_to_string(shape) + " is invalid for input of size " +
                     std::to_string(self.numel));
  }
  auto impl = std::make_shared<Impl>(self);
  impl->shape = std::move(shape);
  impl->autograd.reset();  // a view is a new node of the graph, not the same tensor
  Tensor out(std::move(impl));
  if (autograd::needs_grad({this})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->input_shape = self.shape;
    node->inputs = {*this};
    attach_grad_fn(out, node);
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape());
  if (numel() > 0) std::memcpy(t.data(), data(), static_cast<size_t>(numel()) * sizeof(float));
  return t;
}

void Tensor::fill_(float value) { std::fill_n(data(), numel(), value); }

void Tensor::copy_(const Tensor& src) {
  if (src.numel() != numel()) {
    throw ShapeError("copy_: source has " + std::to_string(src.numel()) + " elements, destination " +
                     std::to_string(numel()));
  }
  if (numel() > 0) std::memmove(data(), src.data(), static_cast<size_t>(numel()) * sizeof(float));
}

bool Tensor::allclose(const Tensor& other, double rtol, double atol) const {
  if (shape() != other.shape()) return false;
  const float* a = data();
  const float* b = other.data();
  for (int64_t i = 0; i < numel(); ++i) {
    const double x = a[i], y = b[i];
    if (std::isinf(x) || std::isinf(y)) {
      if (x != y) return false;
      continue;
    }
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) return false;  // NaN fails here
  }
  return true;
}

bool Tensor::equal(const Tensor& other) const {
  return shape() == other.shape() &&
         (numel() == 0 || std::memcmp(data(), other.data(), static_cast<size_t>(numel()) * sizeof(float)) == 0);
}

namespace {

// Prints dims recursively like numpy, eliding the middle of long dimensions.
void print_dim(std::ostream& os, const float* p, const Shape& shape, size_t d, int64_t stride, int indent) {
  const int64_t n = shape[d];
  const int64_t edge = 3;
  const bool elide = n > 2 * edge;
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (elide && i == edge) {
      os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent + 1), ' '));
      i = n - edge;
    }
    if (d + 1 == shape.size()) {
      os << p[i];
    } else {
      print_dim(os, p + i * stride, shape, d + 1, shape[d + 1] == 0 ? 0 : stride / shape[d + 1], indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(static_cast<size_t>(indent + 1), ' '));
  }
  os << ']';
}

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << std::setprecision(4);
  os << "tensor(";
  if (shape().empty()) {
    os << data()[0];
  } else {
    const int64_t inner = shape()[0] == 0 ? 0 : numel() / shape()[0];
    print_dim(os, data(), shape(), 0, inner, 7);
  }
  os << ", shape=" << shape_to_string(shape()) << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace tinytorch

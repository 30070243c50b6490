// Tensor: storage, factories, views and printing. See tensor.hpp for the model.
#include "tinytorch/tensor.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <list>
#include <mutex>
#include <new>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include "core/autograd_internal.hpp"
#include "core/broadcast.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/memory_plan.hpp"
#include "kernels/strided.hpp"
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

// The sizes multiplied with empty dims counted as 1, as PyTorch does: (0, 2^40, 2^40) holds no
// element, but its strides would overflow, so it is refused like a shape whose count does.
Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    if (__builtin_mul_overflow(stride, std::max<int64_t>(shape[d], 1), &stride)) {
      throw ShapeError("shape " + shape_to_string(shape) + " has more elements than an int64 can count");
    }
  }
  return strides;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return "bool";
    case DType::Int64:
      return "int64";
    case DType::Float32:
      break;
  }
  return "float32";
}

size_t element_size(DType dtype) {
  return visit_dtype(dtype, [](auto tag) { return sizeof(tag); });
}

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = size_t{2} << 20;

// A fresh block from the system. Blocks of 2 MiB and more start on a 2 MiB boundary and ask the
// kernel for transparent huge pages (Linux's default THP mode, "madvise", gives them only when
// asked): their first touch then faults once per 2 MiB instead of once per 4 KiB page. A block
// too large for the cache below is fresh on every call, and its page faults cost more than the
// layer that fills it: 8x463x134x134 -> 1852 depthwise 1x1 (a 1 GiB output) took 537 ms, ONNX
// Runtime 64 (see docs/PERFORMANCE.md).
void* system_block(size_t bytes) {
  if (bytes < kHugePage || kAddressSanitizer) return std::aligned_alloc(kAlignment, bytes);
  // Mapped directly, so that freeing returns the pages at once: from the heap, a freed block of
  // this size stays in the process (glibc raises its mmap threshold after the first such free).
  const size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const size_t head = (kHugePage - start % kHugePage) % kHugePage;  // bytes before the boundary
  char* p = static_cast<char*>(raw) + head;
  if (head > 0) munmap(raw, head);
  munmap(p + size, kHugePage - head);  // and the rest after the block
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // advice only: a kernel without THP ignores it
#endif
  return p;
}

void system_free(void* p, size_t bytes) {
  if (bytes < kHugePage || kAddressSanitizer) {
    std::free(p);
  } else {
    munmap(p, (bytes + kHugePage - 1) / kHugePage * kHugePage);
  }
}

// What the block cache below keeps at most: a sixteenth of the machine's memory, from 256 MiB to
// 1 GiB. A training step of ResNet-18 or MobileNetV2 at batch 32 (96x96 images) frees more than
// 256 MiB of blocks before it allocates them again: with 256 MiB the rest came fresh from the
// kernel on every step, page faults and zeroed pages included (10% and 35% of the step; the
// process's peak resident set is the same either way, docs/PERFORMANCE.md).
size_t block_cache_limit() {
  static const size_t limit = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const size_t ram = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
    return std::clamp(ram / 16, size_t{256} << 20, size_t{1} << 30);
  }();
  return limit;
}

// Large blocks are kept for reuse when their tensors die: training allocates the same activation
// and gradient sizes every step, and fresh pages from the kernel (a page fault each) cost more
// than the work on small layers. Bounded (block_cache_limit, least recently freed out first);
// small blocks go straight back to malloc.
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;

  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = by_size_.find(bytes);
      if (it != by_size_.end() && !it->second.empty()) {
        const auto block = it->second.back();  // the most recently freed of this size
        it->second.pop_back();
        void* p = block->second;
        lru_.erase(block);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = system_block(bytes);
    if (!p) {
      release_all();  // out of memory: give the cache back and try once more
      p = system_block(bytes);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }

  // Keeps the block; when the cache is full, the least recently freed blocks go back to the
  // system to make room, so that the sizes a loop frees and takes again stay cached whatever it
  // did before (a full cache that refused new blocks mapped and faulted them in on every call).
  void put(void* p, size_t bytes) {
    if (bytes < kMinBytes || bytes > block_cache_limit()) return system_free(p, bytes);
    std::vector<std::pair<size_t, void*>> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      lru_.emplace_front(bytes, p);
      by_size_[bytes].push_back(lru_.begin());
      cached_ += bytes;
      while (cached_ > block_cache_limit()) {
        const auto oldest = std::prev(lru_.end());
        auto& same = by_size_[oldest->first];
        same.erase(std::find(same.begin(), same.end(), oldest));  // the oldest of its size: near the front
        cached_ -= oldest->first;
        evicted.push_back(*oldest);
        lru_.erase(oldest);
      }
    }
    for (const auto& [size, block] : evicted) system_free(block, size);
  }

 private:
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [bytes, p] : lru_) system_free(p, bytes);
    lru_.clear();
    by_size_.clear();
    cached_ = 0;
  }

  using Blocks = std::list<std::pair<size_t, void*>>;  // (bytes, block), most recently freed first
  std::mutex mutex_;
  Blocks lru_;
  std::unordered_map<size_t, std::vector<Blocks::iterator>> by_size_;  // oldest first
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

// A block from the heap (the cache, else the system); freeing it puts it back in the cache, or
// returns it to the system at once when `cache_on_free` is false.
HeapBlock heap_block(size_t bytes, bool cache_on_free) {
  void* p = block_cache().get(bytes);
  return {p, std::shared_ptr<void>(p, [bytes, cache_on_free](void* q) {
            if (cache_on_free) {
              block_cache().put(q, bytes);
            } else {
              system_free(q, bytes);
            }
          })};
}

std::shared_ptr<Storage> allocate(int64_t numel, DType dtype) {
  auto storage = std::make_shared<Storage>();
  if (numel == 0) return storage;
  // numel * size overflowing size_t, or simply too large, is an allocation failure.
  const size_t item = element_size(dtype);
  if (static_cast<uint64_t>(numel) > (SIZE_MAX - kAlignment) / item) throw std::bad_alloc();
  size_t bytes = static_cast<size_t>(numel) * item;
  storage->bytes = static_cast<int64_t>(bytes);
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  HeapBlock block = memory_plan_detail::allocate(bytes, &heap_block);  // a memory plan's run, or the heap
  count_allocation(static_cast<int64_t>(bytes));
  storage->data = block.data;
  storage->owner = std::shared_ptr<void>(block.data, [inner = std::move(block.owner), bytes](void*) mutable {
    live_bytes.fetch_sub(static_cast<int64_t>(bytes));
    inner.reset();
  });
  return storage;
}

}  // namespace

MemoryStats memory_stats() { return {live_bytes.load(), peak_bytes.load()}; }
void reset_peak_memory() { peak_bytes.store(live_bytes.load()); }

Tensor Tensor::empty(Shape shape, DType dtype) {
  auto impl = std::make_shared<Impl>();
  impl->numel = checked_numel(shape);
  impl->strides = contiguous_strides(shape);
  impl->shape = std::move(shape);
  impl->dtype = dtype;
  impl->storage = allocate(impl->numel, dtype);
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
  std::copy(values.begin(), values.end(), data_to_write());
}

Tensor Tensor::int64(Shape shape, const std::vector<int64_t>& values) {
  const int64_t n = checked_numel(shape);
  if (static_cast<int64_t>(values.size()) != n) {
    throw ShapeError("Tensor: shape " + shape_to_string(shape) + " needs " + std::to_string(n) + " values, got " +
                     std::to_string(values.size()));
  }
  Tensor t = empty(std::move(shape), DType::Int64);
  std::copy(values.begin(), values.end(), t.ptr_to_write<int64_t>());
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) { return full(std::move(shape), 0.0, dtype); }
Tensor Tensor::ones(Shape shape, DType dtype) { return full(std::move(shape), 1.0, dtype); }
Tensor Tensor::full(Shape shape, float value) { return full(std::move(shape), double{value}, DType::Float32); }

Tensor Tensor::full(Shape shape, double value, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  t.fill_(value, dtype);
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
  float* p = t.data_to_write();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(start + step * static_cast<double>(i));
  return t;
}

Tensor Tensor::randn(Shape shape, Generator& gen) {
  Tensor t = empty(std::move(shape));
  float* p = t.data_to_write();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal();
  return t;
}

Tensor Tensor::rand(Shape shape, Generator& gen) {
  Tensor t = empty(std::move(shape));
  float* p = t.data_to_write();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform();
  return t;
}

Tensor Tensor::from_blob(float* data, Shape shape, std::shared_ptr<void> owner) {
  Shape strides = contiguous_strides(shape);
  return from_blob(data, std::move(shape), std::move(strides), DType::Float32, std::move(owner));
}

Tensor Tensor::from_blob(void* data, Shape shape, Shape strides, DType dtype, std::shared_ptr<void> owner) {
  auto impl = std::make_shared<Impl>();
  impl->numel = checked_numel(shape);
  if (data == nullptr && impl->numel > 0) {
    throw ArgumentError("Tensor::from_blob: data is null for a tensor of shape " + shape_to_string(shape));
  }
  if (strides.size() != shape.size()) {
    throw ShapeError("Tensor::from_blob: " + std::to_string(strides.size()) + " strides for shape " +
                     shape_to_string(shape));
  }
  impl->contiguous = impl->numel <= 1 || strides == contiguous_strides(shape);
  impl->strides = impl->contiguous ? contiguous_strides(shape) : std::move(strides);
  impl->shape = std::move(shape);
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>();
  impl->storage->expose();  // the caller's memory: written where tinytorch cannot see
  impl->storage->data = data;
  impl->storage->bytes = impl->numel * static_cast<int64_t>(element_size(dtype));
  impl->storage->owner = std::move(owner);
  return Tensor(std::move(impl));
}

void Tensor::throw_undefined() { throw std::invalid_argument("Tensor: this tensor is undefined (holds no data)"); }

void Tensor::throw_not_dense_float() const {
  if (dtype() != DType::Float32) {
    throw DTypeError(std::string("expected a float32 tensor, got ") + dtype_name(dtype()) +
                     " (convert it with .float() or to(DType::Float32))");
  }
  throw ArgumentError("expected a contiguous tensor, got a strided view of shape " + shape_to_string(shape()) +
                      " (call contiguous() first)");
}

void Tensor::throw_dtype_mismatch(DType wanted) const {
  throw DTypeError(std::string("expected a ") + dtype_name(wanted) + " tensor, got " + dtype_name(dtype()));
}

uint64_t Storage::next_version() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

const void* Tensor::read_raw_data() const {
  const Impl& i = impl();
  if (!i.storage->data) return nullptr;
  return static_cast<const char*>(i.storage->data) + i.offset * static_cast<int64_t>(element_size(i.dtype));
}

void* Tensor::raw_data() const {
  impl().storage->expose();
  return const_cast<void*>(read_raw_data());
}

void* Tensor::raw_data_to_write() const {
  impl().storage->advance();
  return const_cast<void*>(read_raw_data());
}

const std::shared_ptr<Storage>& Tensor::storage() const {
  impl().storage->expose();
  return impl().storage;
}

Tensor Tensor::make_view(Shape shape, Shape strides, int64_t offset) const {
  const Impl& self = impl();
  auto impl = std::make_shared<Impl>();
  impl->storage = self.storage;
  impl->offset = offset;
  impl->numel = checked_numel(shape);
  impl->dtype = self.dtype;
  impl->contiguous = impl->numel <= 1 || strides == contiguous_strides(shape);
  impl->strides = impl->contiguous ? contiguous_strides(shape) : std::move(strides);
  impl->shape = std::move(shape);
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  if (d < -n || d >= n) {
    throw IndexError("Tensor::size: dimension " + std::to_string(d) + " is out of range for a " + std::to_string(n) +
                     "D tensor");
  }
  return shape()[static_cast<size_t>(d < 0 ? d + n : d)];
}

// The element offset (from the first element) of a full index, bounds-checked.
int64_t Tensor::flat_index(std::initializer_list<int64_t> index) const {
  const Shape& s = shape();
  if (index.size() != s.size()) {
    throw IndexError("Tensor::at: expected " + std::to_string(s.size()) + " indices for shape " + shape_to_string(s) +
                     ", got " + std::to_string(index.size()));
  }
  int64_t offset = 0;
  size_t d = 0;
  for (int64_t i : index) {
    const int64_t n = s[d];
    if (i < -n || i >= n) {
      throw IndexError("Tensor::at: index " + std::to_string(i) + " is out of range for dimension " +
                       std::to_string(d) + " of size " + std::to_string(n));
    }
    offset += (i < 0 ? i + n : i) * strides()[d];
    ++d;
  }
  return offset;
}

float& Tensor::at(std::initializer_list<int64_t> index) { return data_ptr<float>()[flat_index(index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const { return read_ptr<float>()[flat_index(index)]; }

double Tensor::element(int64_t flat) const {
  const Impl& self = impl();
  if (flat < 0 || flat >= self.numel) {
    throw IndexError("Tensor::element: index " + std::to_string(flat) + " is out of range for " +
                     std::to_string(self.numel) + " elements");
  }
  int64_t offset = 0;
  for (size_t d = self.shape.size(); d-- > 0;) {
    offset += flat % self.shape[d] * self.strides[d];
    flat /= self.shape[d];
  }
  return visit_dtype(self.dtype, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(read_ptr<T>()[offset]);
  });
}

float Tensor::item() const {
  if (numel() != 1) {
    throw ShapeError("Tensor::item: expected a tensor with one element, got shape " + shape_to_string(shape()));
  }
  return static_cast<float>(element(0));
}

Tensor Tensor::operator[](int64_t i) const {
  if (dim() == 0) throw IndexError("Tensor[]: cannot index a 0-dimensional tensor");
  return select(0, i);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype());
  t.copy_(*this);
  return t;
}

void Tensor::fill_(float value) { fill_(double{value}, dtype()); }

void Tensor::fill_(double value, DType as) {
  (void)as;  // the value is converted to this tensor's dtype
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(value);
    T* base = ptr_to_write<T>();
    const auto loop = kernels::plan_strided_loop<1>(shape(), {&strides()});
    kernels::for_each_run(loop, 0, numel(), [&](auto off, int64_t n, auto step) {
      for (int64_t i = 0; i < n; ++i) base[off[0] + i * step[0]] = v;
    });
  });
}

void Tensor::copy_(const Tensor& src) {
  if (src.numel() == numel() && src.shape() != shape() && src.is_contiguous() && is_contiguous()) {
    copy_(src.reshape(shape()));  // the old contract: any source with as many elements
    return;
  }
  Tensor from = src;
  if (src.storage_id() == storage_id() && !(src.strides() == strides() && src.storage_offset() == storage_offset())) {
    from = src.clone();  // overlapping views: read from a copy
  }
  const Shape from_strides = broadcast_strides(from, shape(), "copy_");
  visit_dtype(dtype(), [&](auto to_tag) {
    using To = decltype(to_tag);
    To* out = ptr_to_write<To>();
    visit_dtype(from.dtype(), [&](auto from_tag) {
      using From = decltype(from_tag);
      const From* in = from.read_ptr<From>();
      const auto loop = kernels::plan_strided_loop<2>(shape(), {&strides(), &from_strides});
      kernels::for_each_run(loop, 0, numel(), [&](auto off, int64_t n, auto step) {
        for (int64_t i = 0; i < n; ++i) out[off[0] + i * step[0]] = static_cast<To>(in[off[1] + i * step[1]]);
      });
    });
  });
}

bool Tensor::allclose(const Tensor& other, double rtol, double atol) const {
  if (shape() != other.shape()) return false;
  for (int64_t i = 0; i < numel(); ++i) {
    const double x = element(i), y = other.element(i);
    if (std::isinf(x) || std::isinf(y)) {
      if (x != y) return false;
      continue;
    }
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) return false;  // NaN fails here
  }
  return true;
}

bool Tensor::equal(const Tensor& other) const {
  if (shape() != other.shape() || dtype() != other.dtype()) return false;
  const Tensor a = contiguous(), b = other.contiguous();
  return numel() == 0 ||
         std::memcmp(a.read_raw_data(), b.read_raw_data(), static_cast<size_t>(numel()) * element_size(dtype())) == 0;
}

namespace {

void print_element(std::ostream& os, const Tensor& t, int64_t flat) {
  const double v = t.element(flat);
  if (t.dtype() == DType::Bool) {
    os << (v != 0.0 ? "True" : "False");
  } else if (t.dtype() == DType::Int64) {
    os << static_cast<int64_t>(v);
  } else {
    os << static_cast<float>(v);
  }
}

// Prints dims recursively like numpy, eliding the middle of long dimensions. `flat` is the
// row-major index of the first element of this block.
void print_dim(std::ostream& os, const Tensor& t, int64_t flat, size_t d, int64_t block, int indent) {
  const Shape& shape = t.shape();
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
      print_element(os, t, flat + i);
    } else {
      const int64_t inner = shape[d + 1] == 0 ? 0 : block / shape[d + 1];
      print_dim(os, t, flat + i * block, d + 1, inner, indent + 1);
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
    print_element(os, *this, 0);
  } else {
    const int64_t block = shape()[0] == 0 ? 0 : numel() / shape()[0];
    print_dim(os, *this, 0, 0, block, 7);
  }
  os << ", shape=" << shape_to_string(shape());
  if (dtype() != DType::Float32) os << ", dtype=" << dtype_name(dtype());
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace tinytorch

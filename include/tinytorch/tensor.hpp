// Tensor: an N-dimensional float32 array, row-major (C order), always contiguous.
//
// A Tensor is a handle: copying it shares the same tensor (as in PyTorch); clone() copies data.
// Views (reshape, view, operator[]) are new tensors over the same storage. Storage is 64-byte
// aligned, or borrowed from a caller (from_blob) who keeps it alive through an owner handle: the
// Python module uses that to share memory with numpy without copying.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tinytorch/random.hpp"

namespace tinytorch {

using Shape = std::vector<int64_t>;

// Element types, in type-promotion order: an op on two dtypes computes in the later one
// (bool < int64 < float32), as PyTorch does within these three.
enum class DType : uint8_t { Bool, Int64, Float32 };
const char* dtype_name(DType dtype);  // "bool", "int64", "float32" (numpy's names)
size_t element_size(DType dtype);     // bytes per element
template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::Float32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::Int64;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::Bool;
}
inline bool is_floating(DType dtype) { return dtype == DType::Float32; }
// The dtype two operands compute in: the later of the two in the promotion order.
inline DType promote_types(DType a, DType b) { return a > b ? a : b; }

namespace autograd {
struct Node;
struct Meta;
}  // namespace autograd

// Number of elements of a shape. Throws ShapeError for a negative size or when the product
// overflows int64.
int64_t checked_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "(2, 3)" as Python prints a tuple
Shape contiguous_strides(const Shape& shape);     // row-major strides, in elements

// What tinytorch knows about writes to a storage, so that what it keeps prepared from a weight
// (ops/prepared_weights.hpp) is reused without comparing the weight again. tinytorch's own ops
// write through the *_to_write accessors below, which advance `version` (to a value no storage
// had before) as they take the pointer and never keep it past their call: while a storage is not
// `exposed`, an unchanged version means unchanged contents. A pointer handed out to write through
// with no such promise - data(), data_ptr(), raw_data(), storage(), numpy and DLPack views, memory
// from outside (from_blob) - marks the storage exposed for good: its contents are compared then.
struct Storage {
  void* data = nullptr;
  int64_t bytes = 0;
  std::shared_ptr<void> owner;  // frees (or keeps alive) the memory behind data
  std::atomic<uint64_t> version{next_version()};
  std::atomic<bool> exposed{false};

  static uint64_t next_version();  // a fresh value, never 0
  void advance() { version.store(next_version(), std::memory_order_relaxed); }
  void expose() { exposed.store(true, std::memory_order_relaxed); }
  // The version, or 0 when anything may have written the memory unseen.
  uint64_t known_version() const {
    return exposed.load(std::memory_order_relaxed) ? 0 : version.load(std::memory_order_relaxed);
  }
};

class Tensor {
 public:
  Tensor() = default;                              // undefined: holds no tensor (an absent bias, say)
  explicit Tensor(Shape shape);                    // float32 zeros
  Tensor(Shape shape, std::vector<float> values);  // values in row-major order

  static Tensor zeros(Shape shape, DType dtype = DType::Float32);
  static Tensor ones(Shape shape, DType dtype = DType::Float32);
  static Tensor full(Shape shape, float value);
  static Tensor full(Shape shape, double value, DType dtype);  // value converted as static_cast does
  static Tensor arange(int64_t end);
  static Tensor arange(double start, double end, double step = 1.0);
  static Tensor randn(Shape shape, Generator& gen = default_generator());
  static Tensor rand(Shape shape, Generator& gen = default_generator());
  static Tensor empty(Shape shape, DType dtype = DType::Float32);        // uninitialised, contiguous
  static Tensor int64(Shape shape, const std::vector<int64_t>& values);  // an int64 tensor
  // Wraps memory the caller owns: `owner` is kept alive as long as any view of it.
  static Tensor from_blob(float* data, Shape shape, std::shared_ptr<void> owner);
  // The same for any dtype and layout: strides in elements (any sign, 0 for broadcast dims). The
  // caller vouches that every element lies in its block.
  static Tensor from_blob(void* data, Shape shape, Shape strides, DType dtype, std::shared_ptr<void> owner);

  bool defined() const { return impl_ != nullptr; }
  DType dtype() const { return impl().dtype; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }  // in elements
  bool is_contiguous() const { return impl().contiguous; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return impl().numel; }
  // A float32, contiguous tensor's elements (see the top of this file). The pointer may be kept
  // and written through at any time: the storage is marked exposed (Storage, above), so what is
  // kept prepared from it is compared with it on every use. Reading through a const Tensor costs
  // nothing of the kind.
  float* data() {
    impl().storage->expose();
    return dense_float();
  }
  const float* data() const { return dense_float(); }
  // The first element as T (DTypeError unless T is the dtype); elements sit at strides() from it.
  // Marks the storage exposed, as data() does; read_ptr<T>() reads without.
  template <class T>
  T* data_ptr() const {
    impl().storage->expose();
    return first<T>();
  }
  template <class T>
  const T* read_ptr() const {
    return first<T>();
  }
  void* raw_data() const;                                   // the first element, untyped (marks exposed)
  const void* read_raw_data() const;                        // the same, to read
  int64_t storage_offset() const { return impl().offset; }  // in elements
  // The storage block this tensor views, shared with its views and whoever borrowed it (marks it
  // exposed: its memory can be written through it).
  const std::shared_ptr<Storage>& storage() const;
  const Storage* storage_id() const { return impl().storage.get(); }  // which block, to compare

  // For tinytorch's ops, which write a tensor within the call that asks and keep no pointer past
  // it: data(), data_ptr<T>() and raw_data() that advance the storage's version instead of
  // exposing it. Code that keeps the pointer, or hands it to code that may, wants data().
  float* data_to_write() {
    impl().storage->advance();
    return dense_float();
  }
  template <class T>
  T* ptr_to_write() const {
    impl().storage->advance();
    return first<T>();
  }
  void* raw_data_to_write() const;

  // Element access with bounds checks (IndexError). Negative indices count from the end.
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;
  float item() const;  // the value of a one-element tensor

  // A view of row i along dim 0: shape()[1:]. Shares storage.
  Tensor operator[](int64_t i) const;
  // The same elements in a new shape; one size may be -1 (inferred). A view of a contiguous
  // tensor; reshape copies a strided one, view() refuses it (ShapeError), as PyTorch does.
  Tensor reshape(Shape shape) const;
  Tensor view(Shape shape) const;
  // Strided views (tensor_views.cpp). Dims may be negative (counting from the end).
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  // Elements start, start + step, ... < stop along dim, clamped to the size as Python slices are.
  Tensor slice(int64_t dim, int64_t start, int64_t stop, int64_t step = 1) const;
  Tensor expand(const Shape& shape) const;  // size-1 dims repeated (stride 0); -1 keeps a size
  Tensor squeeze() const;                   // every size-1 dim dropped
  Tensor squeeze(int64_t dim) const;        // that dim, if its size is 1
  Tensor unsqueeze(int64_t dim) const;      // a size-1 dim inserted at dim (in [-dim()-1, dim()])
  // This tensor if contiguous, else a contiguous copy (differentiable).
  Tensor contiguous() const;
  // A copy in another dtype (this tensor when it already has it). float -> int truncates toward
  // zero, anything -> bool is != 0. Differentiable between float dtypes only.
  Tensor to(DType dtype) const;
  Tensor clone() const;  // a contiguous copy, differentiable
  void fill_(float value);
  void fill_(double value, DType as);  // any dtype: value converted to it
  // Copies values in: src's shape must broadcast to this one (dtypes converted). Writes through
  // views. Not recorded by autograd.
  void copy_(const Tensor& src);

  // True if |a - b| <= atol + rtol * |b| everywhere and the shapes match (NaNs never match).
  bool allclose(const Tensor& other, double rtol = 1e-5, double atol = 1e-8) const;
  bool equal(const Tensor& other) const;  // same shape, dtype and bit-equal values
  // The i-th element in row-major order, converted to double (for printing and tests).
  double element(int64_t flat_index) const;

  std::string to_string() const;
  // True if both handles refer to the same tensor (not merely equal values).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  // The same for every handle of this tensor: a key for "is it the same tensor".
  const void* identity() const { return impl_.get(); }

  // --- autograd (see autograd.hpp) ---
  // Marks a leaf tensor (a parameter, an input) as needing its gradient. Returns *this.
  Tensor& set_requires_grad(bool on = true);
  bool requires_grad() const;  // a leaf that asked for it, or computed from one
  // The accumulated gradient of a leaf after backward() (undefined before), same shape.
  Tensor grad() const;
  void set_grad(const Tensor& grad);  // replace (or, with an undefined tensor, clear) it
  // The node that computed this tensor (null for leaves and outside autograd).
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  // Back-propagates from this tensor: a one-element tensor by default (gradient 1), or any shape
  // given the gradient of the same shape. Leaves' gradients accumulate, as in PyTorch; the graph
  // is freed afterwards.
  void backward(const Tensor& gradient = Tensor()) const;
  // The same data, cut from the graph.
  Tensor detach() const;

 private:
  struct Impl {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;  // elements from storage->data
    Shape shape;
    Shape strides;  // elements
    int64_t numel = 0;
    DType dtype = DType::Float32;
    bool contiguous = true;                    // strides are the row-major ones of shape
    std::shared_ptr<autograd::Meta> autograd;  // requires_grad, grad, grad_fn; null when unused
  };
  friend struct autograd::Meta;
  friend void attach_grad_fn(Tensor& output, std::shared_ptr<autograd::Node> node);
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  const Impl& impl() const {
    if (!impl_) throw_undefined();
    return *impl_;
  }
  [[noreturn]] static void throw_undefined();
  [[noreturn]] void throw_not_dense_float() const;
  [[noreturn]] void throw_dtype_mismatch(DType wanted) const;
  float* dense_float() const {
    const Impl& i = impl();
    if (i.dtype != DType::Float32 || !i.contiguous) throw_not_dense_float();
    return i.storage->data ? static_cast<float*>(i.storage->data) + i.offset : nullptr;
  }
  template <class T>
  T* first() const {
    const Impl& i = impl();
    if (i.dtype != dtype_of<T>()) throw_dtype_mismatch(dtype_of<T>());
    return i.storage->data ? static_cast<T*>(i.storage->data) + i.offset : nullptr;
  }
  // A view of this tensor's storage with another geometry (no autograd record).
  Tensor make_view(Shape shape, Shape strides, int64_t offset) const;
  friend Tensor make_strided_view(const Tensor&, Shape, Shape, int64_t);
  int64_t flat_index(std::initializer_list<int64_t> index) const;

  std::shared_ptr<Impl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace tinytorch

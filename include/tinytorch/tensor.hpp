// Tensor: an N-dimensional float32 array, row-major (C order), always contiguous.
//
// A Tensor is a handle: copying it shares the same tensor (as in PyTorch); clone() copies data.
// Views (reshape, view, operator[]) are new tensors over the same storage. Storage is 64-byte
// aligned, or borrowed from a caller (from_blob) who keeps it alive through an owner handle: the
// Python module uses that to share memory with numpy without copying.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tinytorch/random.hpp"

namespace tinytorch {

using Shape = std::vector<int64_t>;

namespace autograd {
struct Node;
struct Meta;
}  // namespace autograd

// Number of elements of a shape. Throws ShapeError for a negative size or when the product
// overflows int64.
int64_t checked_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "(2, 3)" as Python prints a tuple

struct Storage {
  float* data = nullptr;
  int64_t size = 0;             // elements
  std::shared_ptr<void> owner;  // frees (or keeps alive) the memory behind data
};

class Tensor {
 public:
  Tensor() = default;                              // undefined: holds no tensor (an absent bias, say)
  explicit Tensor(Shape shape);                    // zeros
  Tensor(Shape shape, std::vector<float> values);  // values in row-major order

  static Tensor zeros(Shape shape);
  static Tensor ones(Shape shape);
  static Tensor full(Shape shape, float value);
  static Tensor arange(int64_t end);
  static Tensor arange(double start, double end, double step = 1.0);
  static Tensor randn(Shape shape, Generator& gen = default_generator());
  static Tensor rand(Shape shape, Generator& gen = default_generator());
  static Tensor empty(Shape shape);  // uninitialised
  // Wraps memory the caller owns: `owner` is kept alive as long as any view of it.
  static Tensor from_blob(float* data, Shape shape, std::shared_ptr<void> owner);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return impl().numel; }
  float* data() {
    const Impl& i = impl();
    return i.storage->data ? i.storage->data + i.offset : nullptr;
  }
  const float* data() const { return const_cast<Tensor*>(this)->data(); }
  // The storage block this tensor views, shared with its views and whoever borrowed it.
  const std::shared_ptr<Storage>& storage() const;

  // Element access with bounds checks (IndexError). Negative indices count from the end.
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;
  float item() const;  // the value of a one-element tensor

  // A view of row i along dim 0: shape()[1:]. Shares storage.
  Tensor operator[](int64_t i) const;
  // Views with a new shape and the same elements; one size may be -1 (inferred).
  Tensor reshape(Shape shape) const;
  Tensor view(Shape shape) const { return reshape(std::move(shape)); }
  Tensor clone() const;
  void fill_(float value);
  void copy_(const Tensor& src);  // same numel; copies values

  // True if |a - b| <= atol + rtol * |b| everywhere and the shapes match (NaNs never match).
  bool allclose(const Tensor& other, double rtol = 1e-5, double atol = 1e-8) const;
  bool equal(const Tensor& other) const;  // same shape and bit-equal values

  std::string to_string() const;
  // True if both handles refer to the same tensor (not merely equal values).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

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
    int64_t numel = 0;
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
  int64_t flat_index(std::initializer_list<int64_t> index) const;

  std::shared_ptr<Impl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace tinytorch

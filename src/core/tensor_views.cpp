// Tensor's views (reshape, view, transpose, permute, select, slice, expand, squeeze, unsqueeze)
// and the copies that change layout or dtype (contiguous, to), each with its gradient rule.
//
// A view shares storage and only changes shape, strides and offset; its backward node routes the
// gradient back to the input's geometry (a transpose transposes it, a slice scatters it into
// zeros, an expand sums it over the repeated dims).
#include <algorithm>
#include <limits>
#include <numeric>

#include "core/autograd_internal.hpp"
#include "core/broadcast.hpp"
#include "core/trace.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/math.hpp"

namespace tinytorch {
namespace {

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  if (dim < -ndim || dim >= ndim) {
    throw IndexError(std::string(op) + ": dimension " + std::to_string(dim) + " is out of range for a " +
                     std::to_string(ndim) + "-D tensor (expected it in [" + std::to_string(-ndim) + ", " +
                     std::to_string(ndim - 1) + "])");
  }
  return dim < 0 ? dim + ndim : dim;
}

struct ReshapeBackward : autograd::Node {
  Shape input_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(input_shape)}; }
};

struct PermuteBackward : autograd::Node {
  std::vector<int64_t> inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.permute(inverse)}; }
};

// select and slice: the gradient lands in the selected part of zeros shaped like the input.
struct SliceBackward : autograd::Node {
  Shape input_shape;
  int64_t dim = 0, start = 0, stop = 0, step = 1;
  bool select = false;
  const char* name() const override { return select ? "SelectBackward" : "SliceBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor out = Tensor::zeros(input_shape);
    (select ? out.select(dim, start) : out.slice(dim, start, stop, step)).copy_(g);
    return {out};
  }
};

struct ExpandBackward : autograd::Node {
  Shape input_shape;
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {sum_to(g, input_shape)}; }
};

struct CopyBackward : autograd::Node {
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
};

// What a view is in ONNX's terms, for a trace: the node already holds it.
trace::Call view_call(const ReshapeBackward&, const Tensor&) { return {"Reshape", {}, {}, {}}; }

trace::Call view_call(const PermuteBackward& node, const Tensor&) {
  std::vector<int64_t> perm(node.inverse.size());
  for (size_t d = 0; d < perm.size(); ++d) perm[static_cast<size_t>(node.inverse[d])] = static_cast<int64_t>(d);
  return {"Transpose", {}, {}, {{"perm", perm}}};
}

trace::Call view_call(const SliceBackward& node, const Tensor&) {
  if (node.select) return {"Gather", {Tensor::int64({}, {node.start})}, {}, {{"axis", node.dim}}};
  const int64_t size = node.input_shape[static_cast<size_t>(node.dim)];
  if (node.start == 0 && node.stop == size && node.step == 1) return {"Identity", {}, {}, {}};
  // A slice to the end stays one for any size (the batch dim's, say).
  const int64_t stop = node.stop == size ? std::numeric_limits<int64_t>::max() : node.stop;
  auto one = [](int64_t v) { return Tensor::int64({1}, {v}); };
  return {"Slice", {one(node.start), one(stop), one(node.dim), one(node.step)}, {}, {}};
}

trace::Call view_call(const ExpandBackward&, const Tensor& out) {
  return {"Expand", {Tensor::int64({static_cast<int64_t>(out.dim())}, out.shape())}, {}, {}};
}

trace::Call view_call(const CopyBackward&, const Tensor&) { return {"Identity", {}, {}, {}}; }

template <class NodeT>
Tensor record_view(Tensor out, const Tensor& input, std::shared_ptr<NodeT> node) {
  trace::Op op;
  if (op.recording()) {
    trace::Call call = view_call(*node, out);
    call.inputs.insert(call.inputs.begin(), input);  // the viewed tensor, then the call's constants
    op.record(std::move(call.op), std::move(call.inputs), out, std::move(call.attrs));
  }
  if (!autograd::needs_grad({&input})) return out;
  node->inputs = {input};
  attach_grad_fn(out, std::move(node));
  return out;
}

std::shared_ptr<ReshapeBackward> reshape_node(const Tensor& input) {
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = input.shape();
  return node;
}

// The shape `shape` asks for, with its -1 resolved against numel.
Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t known = 1;
  int inferred = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0)
        throw ShapeError(std::string(op) + ": only one dimension can be -1, got " + shape_to_string(shape));
      inferred = static_cast<int>(d);
    } else if (shape[d] < 0) {
      throw ShapeError(std::string(op) + ": invalid size " + std::to_string(shape[d]) + " in " +
                       shape_to_string(shape));
    } else if (__builtin_mul_overflow(known, shape[d], &known)) {
      throw ShapeError(std::string(op) + ": shape " + shape_to_string(shape) +
                       " has more elements than an int64 can count");
    }
  }
  if (inferred >= 0) {
    if (known == 0 || numel % known != 0) {
      throw ShapeError(std::string(op) + ": shape " + shape_to_string(shape) + " is invalid for input of size " +
                       std::to_string(numel));
    }
    shape[static_cast<size_t>(inferred)] = numel / known;
  } else if (known != numel) {
    throw ShapeError(std::string(op) + ": shape " + shape_to_string(shape) + " is invalid for input of size " +
                     std::to_string(numel));
  }
  return shape;
}

}  // namespace

Tensor make_strided_view(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  return t.make_view(std::move(shape), std::move(strides), offset);
}

Tensor Tensor::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "reshape");
  if (!is_contiguous()) return contiguous().reshape(std::move(shape));
  Shape strides = contiguous_strides(shape);
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, reshape_node(*this));
}

Tensor Tensor::view(Shape shape) const {
  if (!is_contiguous()) {
    throw ShapeError("view: the tensor of shape " + shape_to_string(this->shape()) +
                     " is a strided view, so it cannot be viewed as another shape; use reshape() (which copies)");
  }
  return reshape(std::move(shape));
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  if (static_cast<int64_t>(dims.size()) != n) {
    throw ShapeError("permute: expected " + std::to_string(n) + " dims for a " + std::to_string(n) + "-D tensor, got " +
                     std::to_string(dims.size()));
  }
  Shape shape(dims.size()), strides(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute");
    if (inverse[static_cast<size_t>(d)] >= 0) {
      throw ShapeError("permute: dimension " + std::to_string(d) + " appears twice in the order given");
    }
    inverse[static_cast<size_t>(d)] = static_cast<int64_t>(i);
    shape[i] = this->shape()[static_cast<size_t>(d)];
    strides[i] = this->strides()[static_cast<size_t>(d)];
  }
  auto node = std::make_shared<PermuteBackward>();
  node->inverse = inverse;
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, node);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  const int64_t n = dim();
  if (n == 0) return *this;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<size_t>(wrap_dim(dim0, n, "transpose"))],
            order[static_cast<size_t>(wrap_dim(dim1, n, "transpose"))]);
  return permute(order);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  const int64_t d = wrap_dim(dim, this->dim(), "select");
  const int64_t size = shape()[static_cast<size_t>(d)];
  if (index < -size || index >= size) {
    throw IndexError("index " + std::to_string(index) + " is out of bounds for dimension " + std::to_string(d) +
                     " with size " + std::to_string(size));
  }
  if (index < 0) index += size;
  Shape shape = this->shape(), strides = this->strides();
  const int64_t offset = storage_offset() + index * strides[static_cast<size_t>(d)];
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  auto node = std::make_shared<SliceBackward>();
  node->input_shape = this->shape();
  node->dim = d, node->start = index, node->select = true;
  return record_view(make_view(std::move(shape), std::move(strides), offset), *this, node);
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t stop, int64_t step) const {
  const int64_t d = wrap_dim(dim, this->dim(), "slice");
  if (step <= 0) throw ShapeError("slice: step must be positive, got " + std::to_string(step));
  const int64_t size = shape()[static_cast<size_t>(d)];
  auto clamp = [size](int64_t i) { return std::clamp(i < 0 ? i + size : i, int64_t{0}, size); };
  start = clamp(start), stop = std::max(clamp(stop), start);
  Shape shape = this->shape(), strides = this->strides();
  const int64_t offset = storage_offset() + (start < size ? start * strides[static_cast<size_t>(d)] : 0);
  shape[static_cast<size_t>(d)] = (stop - start + step - 1) / step;
  strides[static_cast<size_t>(d)] *= step;
  auto node = std::make_shared<SliceBackward>();
  node->input_shape = this->shape();
  node->dim = d, node->start = start, node->stop = stop, node->step = step;
  return record_view(make_view(std::move(shape), std::move(strides), offset), *this, node);
}

Tensor Tensor::expand(const Shape& target) const {
  const Shape& from = shape();
  if (target.size() < from.size()) {
    throw ShapeError("expand: the shape " + shape_to_string(target) + " has fewer dims than the tensor's " +
                     shape_to_string(from));
  }
  const size_t lead = target.size() - from.size();
  Shape shape(target.size()), strides(target.size(), 0);
  for (size_t d = 0; d < target.size(); ++d) {
    const bool own = d >= lead;
    const int64_t size = own ? from[d - lead] : 1;
    const int64_t want = target[d] == -1 && own ? size : target[d];
    if (want < 0 || (size != want && size != 1)) {
      throw ShapeError("expand: the tensor of shape " + shape_to_string(from) + " cannot be expanded to " +
                       shape_to_string(target) + " (dimension " + std::to_string(d) + ")");
    }
    shape[d] = want;
    if (own && size == want) strides[d] = this->strides()[d - lead];
  }
  auto node = std::make_shared<ExpandBackward>();
  node->input_shape = from;
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, node);
}

Tensor Tensor::squeeze() const {
  Shape shape, strides;
  for (size_t d = 0; d < this->shape().size(); ++d) {
    if (this->shape()[d] == 1) continue;
    shape.push_back(this->shape()[d]);
    strides.push_back(this->strides()[d]);
  }
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, reshape_node(*this));
}

Tensor Tensor::squeeze(int64_t dim) const {
  if (this->dim() == 0) return *this;
  const int64_t d = wrap_dim(dim, this->dim(), "squeeze");
  if (shape()[static_cast<size_t>(d)] != 1) return *this;
  Shape shape = this->shape(), strides = this->strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, reshape_node(*this));
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  const int64_t d = wrap_dim(dim, this->dim() + 1, "unsqueeze");
  Shape shape = this->shape(), strides = this->strides();
  const size_t at = static_cast<size_t>(d);
  const int64_t stride = at < strides.size() ? strides[at] * shape[at] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return record_view(make_view(std::move(shape), std::move(strides), storage_offset()), *this, reshape_node(*this));
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return tinytorch::clone(*this);
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  trace::Op op;
  Tensor out = Tensor::empty(shape(), dtype);
  out.copy_(*this);
  if (op.recording()) {
    // ONNX's TensorProto element types: FLOAT 1, INT64 7, BOOL 9.
    const int64_t onnx_type = dtype == DType::Float32 ? 1 : dtype == DType::Int64 ? 7 : 9;
    op.record("Cast", {*this}, out, {{"to", onnx_type}});
  }
  return out;  // not differentiable: only float32 tensors carry gradients
}

Tensor clone(const Tensor& input) {
  Tensor out = input.clone();
  return record_view(out, input, std::make_shared<CopyBackward>());
}

}  // namespace tinytorch

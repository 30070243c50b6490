// Joining (cat, stack) and advanced indexing (index, index_put_, nonzero), with gradients.
//
// index follows PyTorch's (and NumPy's) rule: the integer index tensors broadcast to one shape B;
// an output element is named by a position in B and a position in the dims left unindexed. We
// gather in the order [B, rest] (each position in B picks a strided block of the rest) and then
// move B's dims to where the first indexed dim was, when the indexed dims are adjacent.
#include <numeric>

#include "core/autograd_internal.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/trace.hpp"
#include "ops/math_internal.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

struct CatBackward : autograd::Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> grads;
    int64_t at = 0;
    for (int64_t n : sizes) {
      grads.push_back(g.slice(dim, at, at + n));
      at += n;
    }
    return grads;
  }
};

// The geometry shared by index and index_put_.
struct IndexPlan {
  Shape index_shape;               // B: the broadcast shape of the index tensors
  std::vector<int64_t> offsets;    // per position in B: its element offset in the source
  Shape rest_shape, rest_strides;  // the unindexed dims
  size_t insert_at = 0;            // where B's dims go among the rest in the result
  Shape result_shape;
};

IndexPlan plan_index(const Tensor& a, const std::vector<Tensor>& indices, const char* op) {
  if (static_cast<int64_t>(indices.size()) > a.dim()) {
    throw IndexError(std::string(op) + ": too many indices (" + std::to_string(indices.size()) + ") for a " +
                     std::to_string(a.dim()) + "-D tensor");
  }
  IndexPlan p;
  std::vector<size_t> indexed;
  for (size_t d = 0; d < indices.size(); ++d) {
    if (!indices[d].defined()) continue;
    if (indices[d].dtype() != DType::Int64) {
      throw DTypeError(std::string(op) + ": index tensors must be int64, got " + dtype_name(indices[d].dtype()) +
                       " (convert a bool mask with nonzero())");
    }
    p.index_shape = indexed.empty() ? indices[d].shape() : broadcast_shapes(p.index_shape, indices[d].shape(), op);
    indexed.push_back(d);
  }
  if (indexed.empty()) throw ArgumentError(std::string(op) + ": expected at least one index tensor");
  const bool adjacent = indexed.back() - indexed.front() + 1 == indexed.size();
  for (size_t d = 0; d < static_cast<size_t>(a.dim()); ++d) {
    if (d < indices.size() && indices[d].defined()) continue;
    if (adjacent && d < indexed.front()) ++p.insert_at;
    p.rest_shape.push_back(a.shape()[d]);
    p.rest_strides.push_back(a.strides()[d]);
  }
  p.result_shape = p.rest_shape;
  p.result_shape.insert(p.result_shape.begin() + static_cast<int64_t>(p.insert_at), p.index_shape.begin(),
                        p.index_shape.end());
  const int64_t positions = checked_numel(p.index_shape);
  p.offsets.assign(static_cast<size_t>(positions), a.storage_offset());
  for (size_t d : indexed) {
    const Tensor idx = indices[d].expand(p.index_shape).contiguous();
    const int64_t* v = idx.read_ptr<int64_t>();
    const int64_t size = a.shape()[d];
    for (int64_t i = 0; i < positions; ++i) {
      int64_t k = v[i];
      if (k < -size || k >= size) {
        throw IndexError("index " + std::to_string(k) + " is out of bounds for dimension " + std::to_string(d) +
                         " with size " + std::to_string(size));
      }
      if (k < 0) k += size;
      p.offsets[static_cast<size_t>(i)] += k * a.strides()[d];
    }
  }
  return p;
}

// The permutation taking [B..., rest...] to the result's order, and back.
std::vector<int64_t> to_result_order(const IndexPlan& p) {
  const auto nb = static_cast<int64_t>(p.index_shape.size()), nr = static_cast<int64_t>(p.rest_shape.size());
  std::vector<int64_t> order;
  for (int64_t r = 0; r < static_cast<int64_t>(p.insert_at); ++r) order.push_back(nb + r);
  for (int64_t b = 0; b < nb; ++b) order.push_back(b);
  for (int64_t r = static_cast<int64_t>(p.insert_at); r < nr; ++r) order.push_back(nb + r);
  return order;
}

std::vector<int64_t> inverse_of(const std::vector<int64_t>& order) {
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
  return inverse;
}

struct IndexBackward : autograd::Node {
  std::vector<Tensor> indices;
  Shape input_shape;
  const char* name() const override { return "IndexBackward"; }
  void release() override { indices.clear(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor out = Tensor::zeros(input_shape);
    index_put_(out, indices, g, true);
    return {out};
  }
};

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ArgumentError("cat: expected a non-empty list of tensors");
  trace::Op op;
  const Tensor& first = tensors[0];
  const int64_t d = ops::wrap_dim(dim, first.dim(), "cat");
  if (first.dim() == 0) throw ShapeError("cat: zero-dimensional tensors cannot be concatenated (use stack)");
  DType dtype = first.dtype();
  Shape shape = first.shape();
  shape[static_cast<size_t>(d)] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    bool fits = t.dim() == first.dim();
    for (int64_t k = 0; fits && k < t.dim(); ++k) fits = k == d || t.size(k) == first.size(k);
    if (!fits) {
      throw ShapeError("cat: tensor " + std::to_string(i) + " has shape " + shape_to_string(t.shape()) +
                       ", which does not match " + shape_to_string(first.shape()) + " outside dimension " +
                       std::to_string(d));
    }
    dtype = promote_types(dtype, t.dtype());
    sizes.push_back(t.size(d));
    shape[static_cast<size_t>(d)] += t.size(d);
  }
  Tensor out = Tensor::empty(shape, dtype);
  int64_t at = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.detach().slice(d, at, at + sizes[i]).copy_(tensors[i]);
    at += sizes[i];
  }
  if (op.recording()) op.record("Concat", tensors, out, {{"axis", d}});
  bool record = false;
  for (const Tensor& t : tensors) record = record || autograd::needs_grad({&t});
  if (!record) return out;
  auto node = std::make_shared<CatBackward>();
  node->dim = d;
  node->sizes = sizes;
  node->inputs = tensors;
  attach_grad_fn(out, node);
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ArgumentError("stack: expected a non-empty list of tensors");
  const int64_t d = ops::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape()) {
      throw ShapeError("stack: expected tensors of one shape, got " + shape_to_string(tensors[0].shape()) + " and " +
                       shape_to_string(tensors[i].shape()) + " (tensor " + std::to_string(i) + ")");
    }
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

Tensor index(const Tensor& a, const std::vector<Tensor>& indices) {
  trace::Op trace_op;
  if (trace_op.recording()) {
    trace_op.refuse("indexing with a tensor (x[mask], x[indices])",
                    "its result's shape depends on the values; use slices, or leave the step outside the model");
  }
  const IndexPlan p = plan_index(a, indices, "index");
  Shape gathered_shape = p.index_shape;
  gathered_shape.insert(gathered_shape.end(), p.rest_shape.begin(), p.rest_shape.end());
  Tensor gathered = Tensor::empty(gathered_shape, a.dtype());  // [B..., rest...]
  const int64_t block = checked_numel(p.rest_shape);
  const auto loop = kernels::plan_strided_loop<1>(p.rest_shape, {&p.rest_strides});
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* base = static_cast<const T*>(a.storage_id()->data);
    T* out = gathered.ptr_to_write<T>();
    for (size_t i = 0; i < p.offsets.size(); ++i) {
      T* row = out + static_cast<int64_t>(i) * block;
      kernels::for_each_run(loop, 0, block, [&](auto off, int64_t n, auto step) {
        const T* from = base + p.offsets[i] + off[0];
        for (int64_t k = 0; k < n; ++k) *row++ = from[k * step[0]];
      });
    }
  });
  Tensor out = gathered.permute(to_result_order(p)).contiguous();
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<IndexBackward>();
  node->indices = indices;
  node->input_shape = a.shape();
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

void index_put_(Tensor& a, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate) {
  trace::Op trace_op;
  if (trace_op.recording())
    trace_op.refuse("an indexed assignment (x[mask] = v)", "the exporter records no in-place update");
  const IndexPlan p = plan_index(a, indices, "index_put_");
  // values, broadcast to the result's shape, read in the [B..., rest...] order.
  const Tensor ordered =
      values.detach().to(a.dtype()).expand(p.result_shape).permute(inverse_of(to_result_order(p))).contiguous();
  const int64_t block = checked_numel(p.rest_shape);
  const auto loop = kernels::plan_strided_loop<1>(p.rest_shape, {&p.rest_strides});
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* base = static_cast<T*>(a.storage()->data);
    const T* in = ordered.read_ptr<T>();
    for (size_t i = 0; i < p.offsets.size(); ++i) {
      const T* row = in + static_cast<int64_t>(i) * block;
      kernels::for_each_run(loop, 0, block, [&](auto off, int64_t n, auto step) {
        T* to = base + p.offsets[i] + off[0];
        for (int64_t k = 0; k < n; ++k, ++row) {
          if (accumulate) {
            to[k * step[0]] = static_cast<T>(to[k * step[0]] + *row);
          } else {
            to[k * step[0]] = *row;
          }
        }
      });
    }
  });
}

std::vector<Tensor> nonzero(const Tensor& a) {
  trace::Op trace_op;
  if (trace_op.recording()) trace_op.refuse("nonzero", "its result's shape depends on the values");
  const Tensor c = a.contiguous();
  std::vector<int64_t> flat;
  for (int64_t i = 0; i < c.numel(); ++i)
    if (c.element(i) != 0.0) flat.push_back(i);
  std::vector<Tensor> coords;
  const auto count = static_cast<int64_t>(flat.size());
  int64_t block = c.numel();
  for (int64_t d = 0; d < a.dim(); ++d) {
    Tensor t = Tensor::empty({count}, DType::Int64);
    const int64_t size = a.size(d);
    block = size == 0 ? 0 : block / size;
    int64_t* p = t.ptr_to_write<int64_t>();
    for (int64_t i = 0; i < count; ++i) p[i] = flat[static_cast<size_t>(i)] / block % size;
    coords.push_back(t);
  }
  return coords;
}

}  // namespace tinytorch

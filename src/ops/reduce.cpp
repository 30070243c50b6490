// Reductions over dims (sum, mean, amax, amin, max/min with indices, argmax/argmin), softmax and
// log_softmax along a dim, and sum_to (the gradient of a broadcast), with their gradients.
//
// One loop serves them all: for each output element, walk the reduced dims of the input in
// row-major order (a strided run at a time) and fold. Float sums accumulate in double in a fixed
// order (a contiguous run in eight interleaved sums, sum_run), so results do not depend on the
// thread count.
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd_internal.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/trace.hpp"
#include "ops/math_internal.hpp"
#include "tinytorch/autograd.hpp"
#include "tinytorch/functional.hpp"

namespace tinytorch {
namespace {

// The geometry of a reduction of `a` over `dims`.
struct ReducePlan {
  std::vector<bool> reduced;  // per input dim
  Shape kept_shape, kept_strides;
  Shape reduced_shape, reduced_strides;
  Shape keepdim_shape;  // the output with reduced dims left as 1
  Shape out_shape;      // as asked for (keepdim or not)
  int64_t count = 1;    // elements folded into each output
};

ReducePlan plan_reduce(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  ReducePlan p;
  const int64_t n = a.dim();
  p.reduced.assign(static_cast<size_t>(n), dims.empty());
  for (int64_t d : dims) {
    const auto at = static_cast<size_t>(ops::wrap_dim(d, n, op));
    if (n > 0 && p.reduced[at] && !dims.empty()) {
      throw ShapeError(std::string(op) + ": dimension " + std::to_string(at) + " appears more than once");
    }
    if (n > 0) p.reduced[at] = true;
  }
  for (size_t d = 0; d < static_cast<size_t>(n); ++d) {
    if (p.reduced[d]) {
      p.reduced_shape.push_back(a.shape()[d]);
      p.reduced_strides.push_back(a.strides()[d]);
      p.count *= a.shape()[d];
      p.keepdim_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.kept_shape.push_back(a.shape()[d]);
      p.kept_strides.push_back(a.strides()[d]);
      p.keepdim_shape.push_back(a.shape()[d]);
      p.out_shape.push_back(a.shape()[d]);
    }
  }
  return p;
}

// For each output o: fold(o, element_offsets...) via visit(o, base_offset) where the caller
// walks the reduced elements with for_each_reduced.
template <class Visit>
void for_each_output(const ReducePlan& p, int64_t outputs, Visit visit) {
  const auto kept = kernels::plan_strided_loop<1>(p.kept_shape, {&p.kept_strides});
  parallel_chunks(
      outputs,
      [&](int64_t begin, int64_t end) {
        int64_t o = begin;
        kernels::for_each_run(kept, begin, end, [&](auto off, int64_t n, auto step) {
          for (int64_t i = 0; i < n; ++i, ++o) visit(o, off[0] + i * step[0]);
        });
      },
      std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(p.count, 1)));
}

// Calls f(position, value) for the reduced elements under one output, in row-major order.
template <class T, class F>
void for_each_reduced(const ReducePlan& p, const T* base, F&& f) {
  const auto loop = kernels::plan_strided_loop<1>(p.reduced_shape, {&p.reduced_strides});
  int64_t position = 0;
  kernels::for_each_run(loop, 0, p.count, [&](auto off, int64_t n, auto step) {
    for (int64_t i = 0; i < n; ++i) f(position++, base[off[0] + i * step[0]]);
  });
}

// Whether each output's reduced elements are one contiguous run (the reduced dims, size-1 ones
// aside, are row-major with the last of stride 1): for_each_reduced's run then starts at the base.
bool reduced_contiguous(const ReducePlan& p) {
  int64_t expect = 1;
  for (size_t d = p.reduced_shape.size(); d-- > 0;) {
    if (p.reduced_shape[d] == 1) continue;
    if (p.reduced_strides[d] != expect) return false;
    expect *= p.reduced_shape[d];
  }
  return true;
}

struct SumBackward : autograd::Node {
  Shape input_shape, keepdim_shape;
  double divide = 1.0;
  const char* name() const override { return divide == 1.0 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor spread = g.reshape(keepdim_shape).expand(input_shape);
    return {divide == 1.0 ? spread.contiguous() : scale(spread, static_cast<float>(1.0 / divide))};
  }
};

// amax / amin: the gradient is shared evenly by the elements that equal the result.
struct ExtremumBackward : autograd::Node {
  Tensor input, out;  // out with keepdim
  std::vector<int64_t> dims;
  const char* name() const override { return "AmaxBackward"; }
  void release() override { input = out = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor hit = eq(input, out).to(DType::Float32);
    const Tensor ties = sum(hit, dims, true);
    return {mul(div(g.reshape(out.shape()), ties), hit)};
  }
};

// max / min along a dim: the gradient goes to the element the index names.
struct IndexedExtremumBackward : autograd::Node {
  Tensor indices;  // keepdim
  Shape input_shape;
  int64_t dim = 0;
  const char* name() const override { return "MaxBackward"; }
  void release() override { indices = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (input_shape.empty()) return {g};
    Shape line(input_shape.size(), 1);
    line[static_cast<size_t>(dim)] = input_shape[static_cast<size_t>(dim)];
    const Tensor positions = Tensor::arange(input_shape[static_cast<size_t>(dim)]).to(DType::Int64).reshape(line);
    return {where(eq(positions, indices), g.reshape(indices.shape()), scalar_tensor(0.0)).expand(input_shape)};
  }
};

Tensor sum_impl(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool average) {
  const char* op = average ? "mean" : "sum";
  if (average && a.dtype() != DType::Float32) {
    throw DTypeError(std::string("mean: expected a float32 tensor, got ") + dtype_name(a.dtype()) +
                     " (convert it with .float())");
  }
  const ReducePlan p = plan_reduce(a, dims, keepdim, op);
  if (average && p.count == 0) throw ShapeError("mean: the reduced dims are empty");
  const DType out_dtype = a.dtype() == DType::Float32 ? DType::Float32 : DType::Int64;
  Tensor out = Tensor::empty(p.out_shape, out_dtype);
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.read_ptr<T>();
    if constexpr (std::is_same_v<T, float>) {
      float* o = out.ptr_to_write<float>();
      const bool run = reduced_contiguous(p);
      for_each_output(p, out.numel(), [&](int64_t i, int64_t base) {
        double total = 0.0;
        if (run) {
          total = kernels::sum_run(x + base, p.count);
        } else {
          for_each_reduced(p, x + base, [&](int64_t, float v) { total += v; });
        }
        o[i] = static_cast<float>(average ? total / static_cast<double>(p.count) : total);
      });
    } else {
      int64_t* o = out.ptr_to_write<int64_t>();
      for_each_output(p, out.numel(), [&](int64_t i, int64_t base) {
        int64_t total = 0;
        for_each_reduced(p, x + base, [&](int64_t, T v) { total += static_cast<int64_t>(v); });
        o[i] = total;
      });
    }
  });
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<SumBackward>();
  node->input_shape = a.shape();
  node->keepdim_shape = p.keepdim_shape;
  node->divide = average ? static_cast<double>(p.count) : 1.0;
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

// The largest (or smallest) element under each output and its position among the reduced ones;
// NaN wins, as in PyTorch; the first one wins ties.
template <class T>
bool better(T candidate, T best, bool largest) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(best)) return false;
    if (std::isnan(candidate)) return true;
  }
  return largest ? best < candidate : candidate < best;
}

std::pair<Tensor, Tensor> extremum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool largest,
                                   bool want_values, const char* op) {
  const ReducePlan p = plan_reduce(a, dims, keepdim, op);
  if (p.count == 0) throw ShapeError(std::string(op) + ": the reduced dims are empty (no identity for it)");
  Tensor values = want_values ? Tensor::empty(p.out_shape, a.dtype()) : Tensor();
  Tensor indices = Tensor::empty(p.out_shape, DType::Int64);
  int64_t* idx = indices.ptr_to_write<int64_t>();
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.read_ptr<T>();
    T* vals = want_values ? values.ptr_to_write<T>() : nullptr;
    for_each_output(p, indices.numel(), [&](int64_t i, int64_t base) {
      T best{};
      int64_t where_best = -1;
      for_each_reduced(p, x + base, [&](int64_t position, T v) {
        if (where_best < 0 || better(v, best, largest)) best = v, where_best = position;
      });
      idx[i] = where_best;
      if (vals) vals[i] = best;
    });
  });
  return {values, indices};
}

// A reduction's dims as a trace records them: non-negative (the op has checked them already).
std::vector<int64_t> traced_axes(const Tensor& a, const std::vector<int64_t>& dims) {
  std::vector<int64_t> axes;
  axes.reserve(dims.size());
  for (int64_t d : dims) axes.push_back(ops::wrap_dim(d, std::max<int64_t>(a.dim(), 1), "reduce"));
  return axes;
}

// sum_impl, traced as ReduceSum or ReduceMean over `dims` (every dim when empty).
Tensor reduce_sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool average) {
  trace::Op op;
  Tensor out = sum_impl(a, dims, keepdim, average);
  if (op.recording()) {
    std::vector<trace::Attr> attrs{{"keepdims", int64_t{keepdim}}};
    const std::vector<int64_t> axes = traced_axes(a, dims);
    if (!axes.empty()) attrs.push_back({"axes", axes});
    op.record(average ? "ReduceMean" : "ReduceSum", {a}, out, std::move(attrs));
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& a) { return reduce_sum(a, {}, false, false); }
Tensor mean(const Tensor& a) {
  if (a.numel() == 0) throw ShapeError("mean: the tensor is empty");
  return reduce_sum(a, {}, false, true);
}
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_sum(a, dims, keepdim, false);
}
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_sum(a, dims, keepdim, true);
}

namespace {

// amax/amin and max/min along a dim, traced as ReduceMax/ReduceMin (and ArgMax/ArgMin).
void record_extremum(trace::Op& trace_op, const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool largest,
                     const Tensor& values, const Tensor& indices) {
  std::vector<trace::Attr> attrs{{"keepdims", int64_t{keepdim}}};
  const std::vector<int64_t> axes = traced_axes(a, dims);
  if (!axes.empty()) attrs.push_back({"axes", axes});
  trace_op.record(largest ? "ReduceMax" : "ReduceMin", {a}, values, attrs);
  if (indices.defined()) {
    trace_op.record(largest ? "ArgMax" : "ArgMin", {a}, indices,
                    {{"axis", axes.empty() ? int64_t{0} : axes[0]}, {"keepdims", int64_t{keepdim}}});
  }
}

Tensor amax_impl(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool largest) {
  const char* op = largest ? "amax" : "amin";
  trace::Op trace_op;
  Tensor out = extremum(a, dims, keepdim, largest, true, op).first;
  if (trace_op.recording()) record_extremum(trace_op, a, dims, keepdim, largest, out, Tensor());
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<ExtremumBackward>();
  node->input = a.detach();
  node->out = out.detach().reshape(plan_reduce(a, dims, true, op).keepdim_shape);
  node->dims = dims;
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

std::pair<Tensor, Tensor> indexed_extremum(const Tensor& a, int64_t dim, bool keepdim, bool largest) {
  const char* op = largest ? "max" : "min";
  const int64_t d = ops::wrap_dim(dim, a.dim(), op);
  trace::Op trace_op;
  auto [values, indices] = extremum(a, {d}, keepdim, largest, true, op);
  if (trace_op.recording()) record_extremum(trace_op, a, {d}, keepdim, largest, values, indices);
  if (autograd::needs_grad({&a})) {
    auto node = std::make_shared<IndexedExtremumBackward>();
    node->indices = indices.reshape(plan_reduce(a, {d}, true, op).keepdim_shape);
    node->input_shape = a.shape();
    node->dim = a.dim() == 0 ? 0 : d;
    node->inputs = {a};
    attach_grad_fn(values, node);
  }
  return {values, indices};
}

Tensor arg_extremum(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool largest) {
  const char* op = largest ? "argmax" : "argmin";
  trace::Op trace_op;
  if (trace_op.recording()) {
    if (!dim) trace_op.refuse(std::string(op) + " without a dim", "give the dim (argmax(x, 1))");
    Tensor out = extremum(a, {*dim}, keepdim, largest, false, op).second;
    trace_op.record(largest ? "ArgMax" : "ArgMin", {a}, out,
                    {{"axis", ops::wrap_dim(*dim, std::max<int64_t>(a.dim(), 1), op)}, {"keepdims", int64_t{keepdim}}});
    return out;
  }
  if (!dim) {
    Tensor flat = extremum(a.reshape({-1}), {0}, false, largest, false, op).second;
    return keepdim ? flat.reshape(Shape(static_cast<size_t>(a.dim()), 1)) : flat;
  }
  return extremum(a, {*dim}, keepdim, largest, false, op).second;
}

}  // namespace

Tensor amax(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return amax_impl(a, dims, keepdim, true);
}
Tensor amin(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return amax_impl(a, dims, keepdim, false);
}
std::pair<Tensor, Tensor> max(const Tensor& a, int64_t dim, bool keepdim) {
  return indexed_extremum(a, dim, keepdim, true);
}
std::pair<Tensor, Tensor> min(const Tensor& a, int64_t dim, bool keepdim) {
  return indexed_extremum(a, dim, keepdim, false);
}
Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return arg_extremum(a, dim, keepdim, true); }
Tensor argmin(const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  return arg_extremum(a, dim, keepdim, false);
}

namespace {

// log_softmax along any dim: that dim moved last, rows of the [rows, K] kernel, moved back.
Tensor log_softmax_value(const Tensor& a, int64_t dim) {
  const Tensor x = ops::dense_float(a);
  if (x.dim() == 0) return log_softmax(x.reshape({1})).reshape({});
  const int64_t d = ops::wrap_dim(dim, x.dim(), "log_softmax");
  const Tensor moved = x.transpose(d, -1);
  const Shape& moved_shape = moved.shape();
  const Tensor rows = moved.reshape({-1, moved_shape.back()});
  return log_softmax(rows).reshape(moved_shape).transpose(d, -1);
}

}  // namespace

Tensor log_softmax(const Tensor& a, int64_t dim) {
  trace::Op op;
  Tensor out = log_softmax_value(a, dim);
  if (op.recording())
    op.record("LogSoftmax", {a}, out, {{"axis", ops::wrap_dim(dim, std::max<int64_t>(a.dim(), 1), "log_softmax")}});
  return out;
}

Tensor softmax(const Tensor& a, int64_t dim) {
  trace::Op op;
  Tensor out = exp(log_softmax_value(a, dim));
  if (op.recording())
    op.record("Softmax", {a}, out, {{"axis", ops::wrap_dim(dim, std::max<int64_t>(a.dim(), 1), "softmax")}});
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const size_t lead = g.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t d = 0; d < g.shape().size(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) dims.push_back(static_cast<int64_t>(d));
  }
  if (dims.empty()) return g.reshape(shape);
  return sum(g, dims, true).reshape(shape);
}

}  // namespace tinytorch

// Elementwise arithmetic, comparisons, bitwise ops, where, and the unary functions, with NumPy
// broadcasting and dtype promotion (math.hpp), and their gradients side by side. The loops are
// ops/math_internal.hpp's binary_loop / unary_loop over strided operands; the per-element
// functions are the lambdas here. Their reference is the per-element double arithmetic of
// tests/cpp/test_tensor_math.cpp and PyTorch (tests/python/test_tensor_torch.py).
#include <cmath>
#include <limits>
#include <utility>

#include "core/autograd_internal.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/trace.hpp"
#include "kernels/activation.hpp"
#include "ops/math_internal.hpp"
#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace {

enum class Arith { Add, Sub, Mul, Div, FloorDiv, Remainder, Pow, Maximum, Minimum };

const char* arith_name(Arith op) {
  switch (op) {
    case Arith::Add:
      return "add";
    case Arith::Sub:
      return "sub";
    case Arith::Mul:
      return "mul";
    case Arith::Div:
      return "div";
    case Arith::FloorDiv:
      return "floor_divide";
    case Arith::Remainder:
      return "remainder";
    case Arith::Pow:
      return "pow";
    case Arith::Maximum:
      return "maximum";
    case Arith::Minimum:
      break;
  }
  return "minimum";
}

template <class T>
T floor_div(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::floor(x / y);
  } else {
    T q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return q;
  }
}

template <class T>
T python_remainder(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    T r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  } else {
    T r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  }
}

template <class T>
T int_pow(T base, T exponent) {
  T result = 1;
  while (exponent > 0) {
    if (exponent & 1) result = static_cast<T>(result * base);
    base = static_cast<T>(base * base);
    exponent >>= 1;
  }
  return result;
}

template <class T>
T nan_max(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
  }
  return x < y ? y : x;
}

template <class T>
T nan_min(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
  }
  return y < x ? y : x;
}

bool any_zero(const Tensor& t) {
  const Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (c.element(i) == 0.0) return true;
  return false;
}

bool any_negative(const Tensor& t) {
  const Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (c.element(i) < 0.0) return true;
  return false;
}

// The dtype an arithmetic op computes in.
DType arith_dtype(Arith op, const Tensor& a, const Tensor& b) {
  const DType t = promote_types(a.dtype(), b.dtype());
  if (op == Arith::Div) return DType::Float32;
  if (t == DType::Bool) {
    if (op == Arith::Sub) {
      throw DTypeError("sub: subtracting two bool tensors is not supported; use logical xor (^) instead");
    }
    if (op == Arith::FloorDiv || op == Arith::Remainder || op == Arith::Pow) return DType::Int64;
  }
  return t;
}

Tensor compute_arith(Arith op, const Tensor& a, const Tensor& b, DType dtype, const Shape& shape) {
  Tensor out = Tensor::empty(shape, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto f) { ops::binary_loop<T, T, T>(out, a, b, f); };
    switch (op) {
      case Arith::Add:
        return run([](T x, T y) { return static_cast<T>(x + y); });
      case Arith::Sub:
        return run([](T x, T y) { return static_cast<T>(x - y); });
      case Arith::Mul:
        return run([](T x, T y) { return static_cast<T>(x * y); });
      case Arith::Div:
        return run([](T x, T y) { return static_cast<T>(x / y); });
      case Arith::FloorDiv:
      case Arith::Remainder:
        if constexpr (!std::is_same_v<T, bool>) {  // bool operands are int64 by now (arith_dtype)
          if (op == Arith::FloorDiv) {
            run([](T x, T y) { return floor_div(x, y); });
          } else {
            run([](T x, T y) { return python_remainder(x, y); });
          }
        }
        return;
      case Arith::Pow:
        if constexpr (std::is_same_v<T, float>) {
          run([](T x, T y) { return std::pow(x, y); });
        } else if constexpr (!std::is_same_v<T, bool>) {
          run([](T x, T y) { return int_pow(x, y); });
        }
        return;
      case Arith::Maximum:
        return run([](T x, T y) { return nan_max(x, y); });
      case Arith::Minimum:
        return run([](T x, T y) { return nan_min(x, y); });
    }
  });
  return out;
}

struct ArithBackward : autograd::Node {
  Arith op = Arith::Add;
  Tensor a, b, out;  // float32, detached
  const char* name() const override { return arith_name(op); }
  void release() override { a = b = out = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    switch (op) {
      case Arith::Add:
        ga = g, gb = g;
        break;
      case Arith::Sub:
        ga = g, gb = neg(g);
        break;
      case Arith::Mul:
        ga = mul(g, b), gb = mul(g, a);
        break;
      case Arith::Div:
        ga = div(g, b), gb = neg(mul(g, div(out, b)));  // d(a/b)/db = -a/b^2 = -out/b
        break;
      case Arith::Remainder:
        ga = g, gb = neg(mul(g, floor_divide(a, b)));
        break;
      case Arith::Pow: {
        ga = mul(g, mul(b, pow(a, sub(b, scalar_tensor(1.0)))));
        // d(a^b)/db = a^b log a, taken as 0 where a == 0 and b >= 0 (as PyTorch does)
        const Tensor zero_base = bitwise_and(eq(a, scalar_tensor(0.0)), ge(b, scalar_tensor(0.0)));
        gb = where(zero_base, scalar_tensor(0.0), mul(g, mul(out, log(a))));
        break;
      }
      case Arith::Maximum:
      case Arith::Minimum: {
        // The gradient goes to the winner; ties split it in half, as PyTorch does.
        const Tensor a_wins = op == Arith::Maximum ? gt(a, b) : lt(a, b);
        const Tensor tie = eq(a, b);
        const Tensor half = scale(g, 0.5f), zero = scalar_tensor(0.0);
        ga = where(a_wins, g, where(tie, half, zero));
        gb = where(a_wins, zero, where(tie, half, g));
        break;
      }
      case Arith::FloorDiv:
        break;  // piecewise constant: never recorded
    }
    auto fit = [&](const Tensor& grad, const Tensor& input, size_t i) {
      if (!inputs[i].requires_grad() || !grad.defined()) return Tensor();
      return sum_to(grad.shape() == out.shape() ? grad : grad.expand(out.shape()), input.shape());
    };
    return {fit(ga, a, 0), fit(gb, b, 1)};
  }
};

Tensor arith_value(Arith op, const Tensor& a, const Tensor& b);

// The ONNX operator of an arithmetic op, or nullptr when ONNX has none with its meaning.
const char* arith_onnx(Arith op) {
  switch (op) {
    case Arith::Add:
      return "Add";
    case Arith::Sub:
      return "Sub";
    case Arith::Mul:
      return "Mul";
    case Arith::Div:
      return "Div";
    case Arith::Pow:
      return "Pow";
    case Arith::Maximum:
      return "Max";
    case Arith::Minimum:
      return "Min";
    case Arith::FloorDiv:
    case Arith::Remainder:
      break;
  }
  return nullptr;
}

Tensor arith(Arith op, const Tensor& a, const Tensor& b) {
  trace::Op trace_op;
  if (trace_op.recording() && arith_onnx(op) == nullptr) {
    trace_op.refuse(arith_name(op), "ONNX has no operator with Python's rounding");
  }
  Tensor out = arith_value(op, a, b);
  if (trace_op.recording()) trace_op.record(arith_onnx(op), {a, b}, out);
  return out;
}

Tensor arith_value(Arith op, const Tensor& a, const Tensor& b) {
  const DType dtype = arith_dtype(op, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), arith_name(op));
  const Tensor x = a.to(dtype), y = b.to(dtype);
  if (dtype != DType::Float32) {
    if ((op == Arith::FloorDiv || op == Arith::Remainder) && any_zero(y)) {
      throw ArgumentError(std::string(arith_name(op)) + ": integer division by zero");
    }
    if (op == Arith::Pow && any_negative(y)) {
      throw DTypeError("pow: integers to negative integer powers are not allowed (make the base float32)");
    }
  }
  Tensor out = compute_arith(op, x, y, dtype, shape);
  if (op == Arith::FloorDiv || !autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<ArithBackward>();
  node->op = op;
  node->a = x.detach(), node->b = y.detach(), node->out = out.detach();
  node->inputs = {a, b};
  attach_grad_fn(out, node);
  return out;
}

enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };

Tensor compare_value(Compare op, const Tensor& a, const Tensor& b);

Tensor compare(Compare op, const Tensor& a, const Tensor& b) {
  trace::Op trace_op;
  Tensor out = compare_value(op, a, b);
  if (trace_op.recording()) {
    static constexpr const char* kOnnx[] = {"Equal", "NotEqual", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
    trace_op.record(kOnnx[static_cast<int>(op)], {a, b}, out);  // NotEqual: Not(Equal) in the exporter
  }
  return out;
}

Tensor compare_value(Compare op, const Tensor& a, const Tensor& b) {
  const DType dtype = promote_types(a.dtype(), b.dtype());
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), "comparison"), DType::Bool);
  const Tensor x = a.to(dtype), y = b.to(dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto f) { ops::binary_loop<bool, T, T>(out, x, y, f); };
    switch (op) {
      case Compare::Eq:
        return run([](T p, T q) { return p == q; });
      case Compare::Ne:
        return run([](T p, T q) { return p != q; });
      case Compare::Lt:
        return run([](T p, T q) { return p < q; });
      case Compare::Le:
        return run([](T p, T q) { return p <= q; });
      case Compare::Gt:
        return run([](T p, T q) { return p > q; });
      case Compare::Ge:
        break;
    }
    run([](T p, T q) { return p >= q; });
  });
  return out;
}

enum class Bitwise { And, Or, Xor };

Tensor bitwise(Bitwise op, const Tensor& a, const Tensor& b) {
  trace::Op trace_op;
  if (trace_op.recording()) trace_op.refuse("a bitwise operator (&, |, ^)", "the exporter does not write it");
  const DType dtype = promote_types(a.dtype(), b.dtype());
  if (dtype == DType::Float32) {
    throw DTypeError("bitwise and/or/xor (&, |, ^) take bool or int64 tensors, got float32");
  }
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), "bitwise"), dtype);
  const Tensor x = a.to(dtype), y = b.to(dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      auto run = [&](auto f) { ops::binary_loop<T, T, T>(out, x, y, f); };
      if (op == Bitwise::And) run([](T p, T q) { return static_cast<T>(p & q); });
      if (op == Bitwise::Or) run([](T p, T q) { return static_cast<T>(p | q); });
      if (op == Bitwise::Xor) run([](T p, T q) { return static_cast<T>(p ^ q); });
    }
  });
  return out;
}

// --- unary -------------------------------------------------------------------------------------

enum class Unary { Neg, Abs, Exp, Log, Sqrt, Tanh, Sigmoid, Erf };

const char* unary_name(Unary op) {
  switch (op) {
    case Unary::Neg:
      return "neg";
    case Unary::Abs:
      return "abs";
    case Unary::Exp:
      return "exp";
    case Unary::Log:
      return "log";
    case Unary::Sqrt:
      return "sqrt";
    case Unary::Tanh:
      return "tanh";
    case Unary::Sigmoid:
      return "sigmoid";
    case Unary::Erf:
      break;
  }
  return "erf";
}

struct UnaryBackward : autograd::Node {
  Unary op = Unary::Neg;
  Tensor a, out;  // detached
  const char* name() const override { return unary_name(op); }
  void release() override { a = out = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor one = scalar_tensor(1.0);
    switch (op) {
      case Unary::Neg:
        return {neg(g)};
      case Unary::Abs:  // sign(a), 0 at 0
        return {
            mul(g, sub(gt(a, scalar_tensor(0.0)).to(DType::Float32), lt(a, scalar_tensor(0.0)).to(DType::Float32)))};
      case Unary::Exp:
        return {mul(g, out)};
      case Unary::Log:
        return {div(g, a)};
      case Unary::Sqrt:
        return {div(g, scale(out, 2.0f))};
      case Unary::Tanh:
        return {mul(g, sub(one, mul(out, out)))};
      case Unary::Sigmoid:
        return {mul(g, mul(out, sub(one, out)))};
      case Unary::Erf:
        break;
    }
    // d erf(a) = 2 / sqrt(pi) * exp(-a^2)
    return {mul(g, scale(exp(neg(mul(a, a))), static_cast<float>(2.0 / std::sqrt(M_PI))))};
  }
};

Tensor unary_value(Unary op, const Tensor& a);

Tensor unary(Unary op, const Tensor& a) {
  trace::Op trace_op;
  Tensor out = unary_value(op, a);
  if (trace_op.recording()) {
    static constexpr const char* kOnnx[] = {"Neg", "Abs", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Erf"};
    trace_op.record(kOnnx[static_cast<int>(op)], {a}, out);
  }
  return out;
}

Tensor unary_value(Unary op, const Tensor& a) {
  const bool keeps_dtype = op == Unary::Neg || op == Unary::Abs;
  if (op == Unary::Neg && a.dtype() == DType::Bool) {
    throw DTypeError("neg: negating a bool tensor is not supported; use logical not (~) instead");
  }
  const Tensor x = keeps_dtype ? a : a.to(DType::Float32);
  Tensor out = Tensor::empty(a.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto f) { ops::unary_loop<T, T>(out, x, f); };
    if constexpr (std::is_same_v<T, float>) {
      switch (op) {
        case Unary::Neg:
          return run([](float v) { return -v; });
        case Unary::Abs:
          return run([](float v) { return std::fabs(v); });
        case Unary::Exp:
          return run([](float v) { return std::exp(v); });
        case Unary::Log:
          return run([](float v) { return std::log(v); });
        case Unary::Sqrt:
          return run([](float v) { return std::sqrt(v); });
        case Unary::Tanh:
          return run([](float v) { return std::tanh(v); });
        case Unary::Sigmoid:  // the polynomial exp (2 ulp): expf kept the loop scalar, 6x slower
        {
          const Tensor dense = x.contiguous();
          const float* in = dense.data();
          float* o = out.data_to_write();
          return parallel_chunks(out.numel(), [&](int64_t b, int64_t e) {
            kernels::pointwise_forward(kernels::Pointwise::Sigmoid, o + b, in + b, e - b);
          });
        }
        case Unary::Erf:
          break;
      }
      run([](float v) { return std::erf(v); });
    } else if constexpr (std::is_same_v<T, int64_t>) {
      if (op == Unary::Neg) run([](int64_t v) { return -v; });
      if (op == Unary::Abs) run([](int64_t v) { return v < 0 ? -v : v; });
    } else {
      run([](bool v) { return v; });  // abs of bool
    }
  });
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<UnaryBackward>();
  node->op = op;
  node->a = x.detach(), node->out = out.detach();
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

struct ScaleBackward : autograd::Node {
  float factor = 1.0f;
  const char* name() const override { return "ScaleBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {scale(g, factor)}; }
};

struct WhereBackward : autograd::Node {
  Tensor cond;
  const char* name() const override { return "WhereBackward"; }
  void release() override { cond = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor zero = scalar_tensor(0.0);
    std::vector<Tensor> grads(3);
    if (inputs[1].requires_grad()) grads[1] = sum_to(where(cond, g, zero), inputs[1].shape());
    if (inputs[2].requires_grad()) grads[2] = sum_to(where(cond, zero, g), inputs[2].shape());
    return grads;
  }
};

// The gradient passes where min <= x <= max (NaN: nowhere), in one loop over the saved input: as
// a bool mask built in the forward pass (two comparisons and an and) and a where() it took five
// passes and two tensors per call (MobileNetV2 trains through 35 ReLU6).
struct ClampBackward : autograd::Node {
  Tensor x;  // the input, dense float32
  float lo = 0.0f, hi = 0.0f;
  const char* name() const override { return "ClampBackward"; }
  void release() override { x = Tensor(); }
  std::vector<Tensor> backward(const Tensor& g_arg) override {
    const Tensor g = ops::dense_float(g_arg);
    Tensor dx = Tensor::empty(x.shape());
    const float *in = std::as_const(x).data(), *dy = std::as_const(g).data();
    float* d = dx.data_to_write();
    parallel_chunks(dx.numel(), [d, in, dy, l = lo, h = hi](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {  // branch free (both loads made): a select the compiler vectorizes
        const float v = in[i], gv = dy[i];
        d[i] = v >= l && v <= h ? gv : 0.0f;
      }
    });
    return {dx};
  }
};

}  // namespace

Tensor scalar_tensor(double value, DType dtype) { return Tensor::full({}, value, dtype); }

Tensor add(const Tensor& a, const Tensor& b) { return arith(Arith::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return arith(Arith::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return arith(Arith::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return arith(Arith::Div, a, b); }
Tensor floor_divide(const Tensor& a, const Tensor& b) { return arith(Arith::FloorDiv, a, b); }
Tensor remainder(const Tensor& a, const Tensor& b) { return arith(Arith::Remainder, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return arith(Arith::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return arith(Arith::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return arith(Arith::Minimum, a, b); }

Tensor eq(const Tensor& a, const Tensor& b) { return compare(Compare::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(Compare::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(Compare::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(Compare::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(Compare::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(Compare::Ge, a, b); }

Tensor bitwise_and(const Tensor& a, const Tensor& b) { return bitwise(Bitwise::And, a, b); }
Tensor bitwise_or(const Tensor& a, const Tensor& b) { return bitwise(Bitwise::Or, a, b); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b) { return bitwise(Bitwise::Xor, a, b); }

Tensor bitwise_not(const Tensor& a) {
  if (a.dtype() == DType::Float32) throw DTypeError("bitwise not (~) takes a bool or int64 tensor, got float32");
  trace::Op trace_op;
  if (trace_op.recording() && a.dtype() != DType::Bool) {
    trace_op.refuse("bitwise not (~) of an int64 tensor", "the exporter writes only the logical not of bools");
  }
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  if (a.dtype() == DType::Bool) {
    ops::unary_loop<bool, bool>(out, a, [](bool v) { return !v; });
  } else {
    ops::unary_loop<int64_t, int64_t>(out, a, [](int64_t v) { return ~v; });
  }
  if (trace_op.recording()) trace_op.record("Not", {a}, out);
  return out;
}

Tensor neg(const Tensor& a) { return unary(Unary::Neg, a); }
Tensor abs(const Tensor& a) { return unary(Unary::Abs, a); }
Tensor exp(const Tensor& a) { return unary(Unary::Exp, a); }
Tensor log(const Tensor& a) { return unary(Unary::Log, a); }
Tensor sqrt(const Tensor& a) { return unary(Unary::Sqrt, a); }
Tensor tanh(const Tensor& a) { return unary(Unary::Tanh, a); }
Tensor sigmoid(const Tensor& a) { return unary(Unary::Sigmoid, a); }
Tensor erf(const Tensor& a) { return unary(Unary::Erf, a); }

Tensor scale(const Tensor& a, float factor) {
  trace::Op trace_op;
  const Tensor x = ops::dense_float(a);
  Tensor out = Tensor::empty(x.shape());
  ops::unary_loop<float, float>(out, x, [factor](float v) { return v * factor; });
  if (trace_op.recording()) trace_op.record("Mul", {a, Tensor::full({}, factor)}, out);
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<ScaleBackward>();
  node->factor = factor;
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (cond.dtype() != DType::Bool) {
    throw DTypeError(std::string("where: expected a bool condition, got ") + dtype_name(cond.dtype()));
  }
  trace::Op trace_op;
  const DType dtype = promote_types(a.dtype(), b.dtype());
  const Shape shape = broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  const Tensor x = a.to(dtype), y = b.to(dtype);
  Tensor out = Tensor::empty(shape, dtype);
  const Shape sc = broadcast_strides(cond, shape, "where"), sx = broadcast_strides(x, shape, "where"),
              sy = broadcast_strides(y, shape, "where");
  const auto loop = kernels::plan_strided_loop<4>(shape, {&out.strides(), &sc, &sx, &sy});
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.ptr_to_write<T>();
    const bool* c = cond.read_ptr<bool>();
    const T *p = x.read_ptr<T>(), *q = y.read_ptr<T>();
    parallel_chunks(
        out.numel(),
        [&](int64_t begin, int64_t end) {
          kernels::for_each_run(loop, begin, end, [&](auto off, int64_t n, auto step) {
            for (int64_t i = 0; i < n; ++i) {
              o[off[0] + i] = c[off[1] + i * step[1]] ? p[off[2] + i * step[2]] : q[off[3] + i * step[3]];
            }
          });
        },
        ops::kElementwiseGrain);
  });
  if (trace_op.recording()) trace_op.record("Where", {cond, a, b}, out);
  if (!autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<WhereBackward>();
  node->cond = cond.detach();
  node->inputs = {cond, a, b};
  attach_grad_fn(out, node);
  return out;
}

Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max) {
  if (!min && !max) throw ArgumentError("clamp: give min, max or both");
  trace::Op trace_op;
  const double lo = min.value_or(-std::numeric_limits<double>::infinity());
  const double hi = max.value_or(std::numeric_limits<double>::infinity());
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  if (a.dtype() == DType::Float32) {
    // The bounds in float, as PyTorch converts them to a float tensor's type; v < l is false for
    // a NaN, which passes through both selects (vmaxps and vminps keep their second operand).
    // The branchy double compare it replaces ran 20x slower than relu on random data.
    const float l = static_cast<float>(lo), h = static_cast<float>(hi);
    ops::unary_loop<float, float>(out, a, [l, h](float v) {
      const float r = v < l ? l : v;
      return r > h ? h : r;
    });
  } else {
    visit_dtype(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      ops::unary_loop<T, T>(out, a, [lo, hi](T v) {
        const double d = static_cast<double>(v);
        if (std::isnan(d)) return v;
        return d < lo ? static_cast<T>(lo) : (d > hi ? static_cast<T>(hi) : v);
      });
    });
  }
  if (trace_op.recording()) {
    auto bound = [&](std::optional<double> v) { return v ? Tensor::full({}, *v, a.dtype()) : Tensor(); };
    trace_op.record("Clip", {a, bound(min), bound(max)}, out);
  }
  if (!autograd::needs_grad({&a})) return out;
  auto node = std::make_shared<ClampBackward>();
  node->x = ops::dense_float(a).detach();
  node->lo = static_cast<float>(lo), node->hi = static_cast<float>(hi);
  node->inputs = {a};
  attach_grad_fn(out, node);
  return out;
}

}  // namespace tinytorch

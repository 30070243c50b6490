// Tensor's operators and math methods (math.hpp), and the same ops as module functions
// (tinytorch.exp, tinytorch.cat, ...). Scalars and arrays on either side of an operator become
// tensors (`operand`): Python numbers keep their kind, so int64 * 2 stays int64 and int64 * 0.5
// is float32, as in PyTorch.
#include "bindings.hpp"

namespace tinytorch::python {
namespace {

using Binary = tt::Tensor (*)(const tt::Tensor&, const tt::Tensor&);

// x op= y: in place when autograd allows it (the result is copied into x's memory, so views see
// it); on a tensor that is part of a graph, the result replaces x (Python rebinds the name), so
// gradients stay right. A leaf that requires grad is refused, as PyTorch does.
py::object inplace(const py::object& self_object, const tt::Tensor& result) {
  tt::Tensor& self = self_object.cast<tt::Tensor&>();
  if (tt::is_grad_enabled() && self.requires_grad()) {
    if (self.grad_fn() == nullptr) {
      throw py::value_error(
          "a leaf tensor that requires grad cannot be changed in place; wrap the update in "
          "`with tinytorch.no_grad():` (as optimizers do)");
    }
    return py::cast(result);
  }
  if (tt::promote_types(self.dtype(), result.dtype()) != self.dtype()) {
    throw py::type_error(std::string("in-place op: the result is ") + tt::dtype_name(result.dtype()) +
                         " and cannot be stored in a " + tt::dtype_name(self.dtype()) + " tensor");
  }
  if (result.shape() != self.shape()) {
    throw py::value_error("in-place op: the result has shape " + tt::shape_to_string(result.shape()) +
                          ", which does not fit the tensor's " + tt::shape_to_string(self.shape()));
  }
  self.copy_(result);
  return self_object;  // the same Python object: `t += 1` keeps every name for t
}

template <Binary F>
void bind_operator(py::class_<tt::Tensor>& c, const char* name, const char* reflected, const char* inplace_name) {
  c.def(
      name, [](const tt::Tensor& a, py::handle b) { return F(a, operand(b)); }, py::is_operator());
  if (reflected) {
    c.def(
        reflected, [](const tt::Tensor& a, py::handle b) { return F(operand(b), a); }, py::is_operator());
  }
  if (inplace_name) {
    c.def(
        inplace_name,
        [](const py::object& a, py::handle b) { return inplace(a, F(a.cast<const tt::Tensor&>(), operand(b))); },
        py::is_operator());
  }
}

template <Binary F>
void bind_method(py::class_<tt::Tensor>& c, const char* name) {
  c.def(
      name, [](const tt::Tensor& a, py::handle b) { return F(a, operand(b)); }, "other"_a);
}

void bind_operators(py::class_<tt::Tensor>& c) {
  bind_operator<tt::add>(c, "__add__", "__radd__", "__iadd__");
  bind_operator<tt::sub>(c, "__sub__", "__rsub__", "__isub__");
  bind_operator<tt::mul>(c, "__mul__", "__rmul__", "__imul__");
  bind_operator<tt::div>(c, "__truediv__", "__rtruediv__", "__itruediv__");
  bind_operator<tt::floor_divide>(c, "__floordiv__", "__rfloordiv__", "__ifloordiv__");
  bind_operator<tt::remainder>(c, "__mod__", "__rmod__", "__imod__");
  bind_operator<tt::pow>(c, "__pow__", "__rpow__", "__ipow__");
  bind_operator<tt::matmul>(c, "__matmul__", "__rmatmul__", nullptr);
  bind_operator<tt::bitwise_and>(c, "__and__", "__rand__", "__iand__");
  bind_operator<tt::bitwise_or>(c, "__or__", "__ror__", "__ior__");
  bind_operator<tt::bitwise_xor>(c, "__xor__", "__rxor__", "__ixor__");
  bind_operator<tt::eq>(c, "__eq__", nullptr, nullptr);
  bind_operator<tt::ne>(c, "__ne__", nullptr, nullptr);
  bind_operator<tt::lt>(c, "__lt__", nullptr, nullptr);
  bind_operator<tt::le>(c, "__le__", nullptr, nullptr);
  bind_operator<tt::gt>(c, "__gt__", nullptr, nullptr);
  bind_operator<tt::ge>(c, "__ge__", nullptr, nullptr);
  c.def("__neg__", &tt::neg)
      .def("__pos__", [](const tt::Tensor& a) { return a; })
      .def("__abs__", &tt::abs)
      .def("__invert__", &tt::bitwise_not)
      // __eq__ returns a tensor, so hashing goes by identity, as torch.Tensor's does.
      .def("__hash__", [](py::handle self) { return py::hash(py::int_(reinterpret_cast<uintptr_t>(self.ptr()))); });
}

void bind_math_methods(py::class_<tt::Tensor>& c) {
  bind_method<tt::add>(c, "add");
  bind_method<tt::sub>(c, "sub");
  bind_method<tt::mul>(c, "mul");
  bind_method<tt::div>(c, "div");
  bind_method<tt::pow>(c, "pow");
  bind_method<tt::matmul>(c, "matmul");
  bind_method<tt::maximum>(c, "maximum");
  bind_method<tt::minimum>(c, "minimum");
  bind_method<tt::eq>(c, "eq");
  bind_method<tt::ne>(c, "ne");
  bind_method<tt::lt>(c, "lt");
  bind_method<tt::le>(c, "le");
  bind_method<tt::gt>(c, "gt");
  bind_method<tt::ge>(c, "ge");
  c.def("neg", &tt::neg)
      .def("abs", &tt::abs)
      .def("exp", &tt::exp)
      .def("log", &tt::log)
      .def("sqrt", &tt::sqrt)
      .def("tanh", &tt::tanh)
      .def("sigmoid", &tt::sigmoid)
      .def("erf", &tt::erf)
      .def("relu", &tt::relu)
      .def(
          "softmax", [](const tt::Tensor& a, int64_t dim) { return tt::softmax(a, dim); }, "dim"_a = -1)
      .def(
          "log_softmax", [](const tt::Tensor& a, int64_t dim) { return tt::log_softmax(a, dim); }, "dim"_a = -1)
      .def(
          "clamp",
          [](const tt::Tensor& a, std::optional<double> lo, std::optional<double> hi) { return tt::clamp(a, lo, hi); },
          "min"_a = py::none(), "max"_a = py::none())
      .def(
          "masked_fill",
          [](const tt::Tensor& a, const tt::Tensor& mask, py::handle value) {
            return tt::where(mask, operand(value).to(a.dtype()), a);
          },
          "mask"_a, "value"_a)
      .def(
          "_sum", [](const tt::Tensor& a, py::handle dim, bool keepdim) { return tt::sum(a, to_dims(dim), keepdim); },
          "dim"_a = py::none(), "keepdim"_a = false)
      .def(
          "_mean", [](const tt::Tensor& a, py::handle dim, bool keepdim) { return tt::mean(a, to_dims(dim), keepdim); },
          "dim"_a = py::none(), "keepdim"_a = false)
      .def(
          "amax", [](const tt::Tensor& a, py::handle dim, bool keepdim) { return tt::amax(a, to_dims(dim), keepdim); },
          "dim"_a = py::none(), "keepdim"_a = false)
      .def(
          "amin", [](const tt::Tensor& a, py::handle dim, bool keepdim) { return tt::amin(a, to_dims(dim), keepdim); },
          "dim"_a = py::none(), "keepdim"_a = false)
      .def("_max_dim", &tt::max, "dim"_a, "keepdim"_a = false)
      .def("_min_dim", &tt::min, "dim"_a, "keepdim"_a = false)
      .def("argmax", &tt::argmax, "dim"_a = py::none(), "keepdim"_a = false)
      .def("argmin", &tt::argmin, "dim"_a = py::none(), "keepdim"_a = false);
}

std::vector<tt::Tensor> tensor_list(const py::iterable& items, const char* op) {
  std::vector<tt::Tensor> out;
  for (py::handle h : items) out.push_back(operand(h));
  if (out.empty()) throw py::value_error(std::string(op) + ": expected a non-empty sequence of tensors");
  return out;
}

// One index per leading dim: None for a full slice, else an int64 tensor.
std::vector<tt::Tensor> index_list(const py::sequence& items) {
  std::vector<tt::Tensor> out;
  for (py::handle h : items) out.push_back(h.is_none() ? tt::Tensor() : h.cast<tt::Tensor>());
  return out;
}

tt::Tensor filled(py::args size, double value, py::handle dtype, bool requires_grad, tt::DType fallback) {
  tt::Tensor t = tt::Tensor::full(to_shape(size, "size"), value, to_dtype(dtype).value_or(fallback));
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

tt::Tensor sampled(tt::Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

void bind_functions(py::module_& m) {
  m.def(
      "add", [](py::handle a, py::handle b) { return tt::add(operand(a), operand(b)); }, "a + b, broadcasting.");
  m.def(
      "sub", [](py::handle a, py::handle b) { return tt::sub(operand(a), operand(b)); }, "a - b, broadcasting.");
  m.def(
      "mul", [](py::handle a, py::handle b) { return tt::mul(operand(a), operand(b)); }, "a * b, broadcasting.");
  m.def(
      "div", [](py::handle a, py::handle b) { return tt::div(operand(a), operand(b)); },
      "a / b (true division: float32).");
  m.def(
      "pow", [](py::handle a, py::handle b) { return tt::pow(operand(a), operand(b)); }, "a ** b, broadcasting.");
  m.def(
      "matmul", [](py::handle a, py::handle b) { return tt::matmul(operand(a), operand(b)); },
      "a @ b with numpy.matmul's rules (1-D operands, broadcast batch dims).");
  m.def(
      "maximum", [](py::handle a, py::handle b) { return tt::maximum(operand(a), operand(b)); },
      "The larger of a and b, elementwise (NaN wins).");
  m.def(
      "minimum", [](py::handle a, py::handle b) { return tt::minimum(operand(a), operand(b)); },
      "The smaller of a and b, elementwise (NaN wins).");
  m.def(
      "where",
      [](py::handle c, py::handle a, py::handle b) {
        return tt::where(operand(c).to(tt::DType::Bool), operand(a), operand(b));
      },
      "condition"_a, "input"_a, "other"_a, "condition ? input : other, elementwise, all three broadcast.");
  m.def("exp", &tt::exp, "input"_a, "e ** x, elementwise (float32).");
  m.def("log", &tt::log, "input"_a, "The natural logarithm, elementwise (float32).");
  m.def("sqrt", &tt::sqrt, "input"_a, "The square root, elementwise (float32).");
  m.def("abs", &tt::abs, "input"_a, "|x|, elementwise (keeps the dtype).");
  m.def("tanh", &tt::tanh, "input"_a, "The hyperbolic tangent, elementwise (float32).");
  m.def("sigmoid", &tt::sigmoid, "input"_a, "1 / (1 + exp(-x)), elementwise (float32).");
  m.def("erf", &tt::erf, "input"_a, "The error function, elementwise (float32).");
  m.def(
      "clamp",
      [](const tt::Tensor& a, std::optional<double> lo, std::optional<double> hi) { return tt::clamp(a, lo, hi); },
      "input"_a, "min"_a = py::none(), "max"_a = py::none(),
      "Limits values to [min, max] (either may be None); the gradient passes where min <= x <= max.");
  m.def(
      "cat", [](const py::iterable& ts, int64_t dim) { return tt::cat(tensor_list(ts, "cat"), dim); }, "tensors"_a,
      "dim"_a = 0, "Joins tensors end to end along dim (their other dims must match).");
  m.def(
      "stack", [](const py::iterable& ts, int64_t dim) { return tt::stack(tensor_list(ts, "stack"), dim); },
      "tensors"_a, "dim"_a = 0, "Stacks tensors of one shape along a new dim.");
  m.def("_index", [](const tt::Tensor& a, const py::sequence& idx) { return tt::index(a, index_list(idx)); });
  m.def("_index_put", [](tt::Tensor& a, const py::sequence& idx, py::handle values) {
    tt::index_put_(a, index_list(idx), operand(values));
  });
  m.def("_nonzero", &tt::nonzero, "input"_a, "The int64 coordinates of the nonzero elements, one tensor per dim.");
  m.def(
      "zeros",
      [](py::args size, py::handle dtype, bool rg) { return filled(size, 0.0, dtype, rg, tt::DType::Float32); },
      "dtype"_a = py::none(), "requires_grad"_a = false,
      "Zeros of the given size (ints or one tuple), float32 unless dtype says otherwise.");
  m.def(
      "ones", [](py::args size, py::handle dtype, bool rg) { return filled(size, 1.0, dtype, rg, tt::DType::Float32); },
      "dtype"_a = py::none(), "requires_grad"_a = false,
      "Ones of the given size (ints or one tuple), float32 unless dtype says otherwise.");
  m.def(
      "randn", [](py::args size, bool rg) { return sampled(tt::Tensor::randn(to_shape(size, "size")), rg); },
      "requires_grad"_a = false, "Standard normal samples from the global generator (tinytorch.manual_seed).");
  m.def(
      "rand", [](py::args size, bool rg) { return sampled(tt::Tensor::rand(to_shape(size, "size")), rg); },
      "requires_grad"_a = false, "Uniform samples in [0, 1) from the global generator.");
  m.def(
      "full",
      [](py::handle size, py::handle value, py::handle dtype, bool rg) {
        const tt::Tensor v = operand(value);  // full((2, 2), 7) is int64, as in PyTorch
        const auto shape = py::reinterpret_borrow<py::args>(py::make_tuple(size));
        return filled(shape, v.element(0), dtype, rg, v.dtype());
      },
      "size"_a, "fill_value"_a, "dtype"_a = py::none(), "requires_grad"_a = false,
      "A tensor of `size` filled with fill_value, of its dtype (int64 for an int) unless given.");
}

}  // namespace

void bind_tensor_math(py::module_& m) {
  auto c = py::reinterpret_borrow<py::class_<tt::Tensor>>(m.attr("Tensor"));
  bind_operators(c);
  bind_math_methods(c);
  bind_functions(m);
}

}  // namespace tinytorch::python

// Tensor: construction, numpy views, properties, views and dtype conversions, and the autograd
// fields; the no-grad switch. The operators and math methods are in bind_tensor_math.cpp, and
// the Python side (indexing, size(), pickling, numpy ufuncs) in tinytorch/_tensor.py.
#include "bindings.hpp"

namespace tinytorch::python {
namespace {

tt::Tensor make_tensor(py::handle data, py::handle dtype, bool requires_grad) {
  tt::Tensor t = tensor_from_object(data, to_dtype(dtype));
  if (requires_grad) {
    t = t.detach();  // a new leaf over the same memory, so the source is left as it was
    t.set_requires_grad(true);
  }
  return t;
}

// A Python number of the tensor's kind.
py::object item_of(const tt::Tensor& t) {
  if (t.numel() != 1) {
    throw py::value_error("item(): expected a tensor with one element, got shape " + tt::shape_to_string(t.shape()));
  }
  const double v = t.element(0);
  switch (t.dtype()) {
    case tt::DType::Bool:
      return py::bool_(v != 0.0);
    case tt::DType::Int64:
      return py::int_(*t.contiguous().data_ptr<int64_t>());
    case tt::DType::Float32:
      break;
  }
  return py::float_(v);
}

void bind_views(py::class_<tt::Tensor>& c) {
  c.def(
       "reshape", [](const tt::Tensor& t, py::args shape) { return t.reshape(to_shape(shape, "reshape")); },
       "The same elements in a new shape (one size may be -1): a view when the tensor is contiguous.")
      .def(
          "view", [](const tt::Tensor& t, py::args shape) { return t.view(to_shape(shape, "view")); },
          "A view with a new shape; a strided tensor must be made contiguous() first.")
      .def("flatten", &tt::flatten, "start_dim"_a = 0, "end_dim"_a = -1)
      .def(
          "squeeze",
          [](const tt::Tensor& t, py::object dim) {
            return dim.is_none() ? t.squeeze() : t.squeeze(to_int64(dim, "dim"));
          },
          "dim"_a = py::none())
      .def("unsqueeze", &tt::Tensor::unsqueeze, "dim"_a)
      .def(
          "transpose",
          [](const tt::Tensor& t, py::object d0, py::object d1) {
            // No dims: the last two, as upstream TinyTorch's transpose() does.
            if (d0.is_none() && d1.is_none()) return t.dim() < 2 ? t : t.transpose(-2, -1);
            return t.transpose(to_int64(d0, "dim0"), to_int64(d1, "dim1"));
          },
          "dim0"_a = py::none(), "dim1"_a = py::none())
      .def("permute", [](const tt::Tensor& t, py::args dims) { return t.permute(to_shape(dims, "permute")); })
      .def_property_readonly(
          "T",
          [](const tt::Tensor& t) {
            std::vector<int64_t> order(static_cast<size_t>(t.dim()));
            for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
            return t.permute(order);
          },
          "The dims reversed (the transpose of a matrix).")
      .def("expand", [](const tt::Tensor& t, py::args sizes) { return t.expand(to_shape(sizes, "expand")); })
      .def("expand_as", [](const tt::Tensor& t, const tt::Tensor& other) { return t.expand(other.shape()); })
      .def("select", &tt::Tensor::select, "dim"_a, "index"_a)
      .def("_slice", &tt::Tensor::slice, "dim"_a, "start"_a, "stop"_a, "step"_a)
      .def("contiguous", &tt::Tensor::contiguous)
      .def("is_contiguous", &tt::Tensor::is_contiguous)
      .def(
          "stride",
          [](const tt::Tensor& t, py::object dim) -> py::object {
            if (dim.is_none()) return shape_tuple(t.strides());
            return py::int_(
                t.strides()[static_cast<size_t>(t.dim() == 0 ? 0 : (to_int64(dim, "dim") + t.dim()) % t.dim())]);
          },
          "dim"_a = py::none(), "Strides in elements, as torch.Tensor.stride().")
      .def("storage_offset", &tt::Tensor::storage_offset)
      .def("_identity", [](const tt::Tensor& t) { return reinterpret_cast<uintptr_t>(t.identity()); });
}

void bind_dtypes(py::class_<tt::Tensor>& c) {
  c.def_property_readonly(
       "dtype", [](const tt::Tensor& t) { return py::dtype(numpy_name(t.dtype())); },
       "numpy's dtype object: float32, int64 or bool (tinytorch.float32 is numpy.dtype('float32')).")
      .def(
          "to", [](const tt::Tensor& t, py::handle dtype) { return t.to(*to_dtype(dtype)); }, "dtype"_a,
          "A copy in another dtype (the tensor itself if it has it).")
      .def(
          "type", [](const tt::Tensor& t, py::handle dtype) { return t.to(*to_dtype(dtype)); }, "dtype"_a)
      .def(
          "astype", [](const tt::Tensor& t, py::handle dtype) { return t.to(*to_dtype(dtype)); }, "dtype"_a)
      .def("float", [](const tt::Tensor& t) { return t.to(tt::DType::Float32); })
      .def("long", [](const tt::Tensor& t) { return t.to(tt::DType::Int64); })
      .def("int", [](const tt::Tensor& t) { return t.to(tt::DType::Int64); })
      .def("bool", [](const tt::Tensor& t) { return t.to(tt::DType::Bool); })
      .def("is_floating_point", [](const tt::Tensor& t) { return tt::is_floating(t.dtype()); })
      .def("element_size", [](const tt::Tensor& t) { return tt::element_size(t.dtype()); })
      .def_property_readonly("itemsize", [](const tt::Tensor& t) { return tt::element_size(t.dtype()); })
      .def_property_readonly(
          "nbytes", [](const tt::Tensor& t) { return static_cast<int64_t>(tt::element_size(t.dtype())) * t.numel(); });
}

void bind_autograd_fields(py::class_<tt::Tensor>& c) {
  c.def_property(
       "requires_grad", &tt::Tensor::requires_grad, [](tt::Tensor& t, bool on) { t.set_requires_grad(on); },
       "Whether backward() computes a gradient for this tensor (settable on leaves).")
      .def(
          "requires_grad_", [](tt::Tensor& t, bool on) { return t.set_requires_grad(on); }, "requires_grad"_a = true)
      .def_property_readonly("is_leaf", [](const tt::Tensor& t) { return t.grad_fn() == nullptr; })
      .def_property(
          "grad", [](const tt::Tensor& t) { return tensor_or_none(t.grad()); },
          [](tt::Tensor& t, py::object g) { t.set_grad(g.is_none() ? tt::Tensor() : tensor_from_object(g)); })
      .def_property_readonly(
          "grad_fn",
          [](const tt::Tensor& t) -> py::object {
            return t.grad_fn() ? py::object(py::str(t.grad_fn()->name())) : py::object(py::none());
          },
          "The name of the op that computed this tensor, or None for a leaf.")
      .def(
          "backward",
          [](const tt::Tensor& t, py::object gradient, py::object retain_graph) {
            if (!retain_graph.is_none() && retain_graph.cast<bool>()) {
              throw py::value_error("backward: retain_graph=True is not supported; run the forward pass again");
            }
            const tt::Tensor g = gradient.is_none() ? tt::Tensor() : tensor_from_object(gradient);
            py::gil_scoped_release release;
            t.backward(g);
          },
          "gradient"_a = py::none(), "retain_graph"_a = py::none())
      .def("detach", &tt::Tensor::detach, "The same memory, cut from the graph.")
      .def(
          "clone", [](const tt::Tensor& t) { return tt::clone(t); }, "A copy (differentiable).");
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<tt::Tensor> c(m, "Tensor", py::buffer_protocol(), R"doc(
An N-dimensional array over tinytorch's C++ core: float32 (what layers compute in), int64
(labels, indices) or bool (masks).

Tensor(data, dtype=None, requires_grad=False) takes a numpy array, a nested list of numbers, a
number, a Tensor, or a PyTorch tensor (through DLPack). Floats become float32, integers int64 and
bools bool, unless dtype says otherwise; memory is shared, not copied, where the source already
has the dtype. ``.data`` is a numpy view of the same memory.

    x = Tensor(np.random.randn(2, 3))         # float32
    y = Tensor([0, 2], dtype="int64")
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    loss = (x @ w).relu().sum()
    loss.backward()                           # w.grad: Tensor (3, 4))doc");
  c.def(py::init(&make_tensor), "data"_a, "dtype"_a = py::none(), "requires_grad"_a = false)
      .def_property(
          "data", &tensor_to_array,
          [](tt::Tensor& self, py::handle value) {
            const tt::Tensor t = tensor_from_object(value);
            if (t.shape() != self.shape()) {
              throw py::value_error("Tensor.data: expected shape " + tt::shape_to_string(self.shape()) + ", got " +
                                    tt::shape_to_string(t.shape()));
            }
            self.copy_(t);
          },
          "A numpy array sharing this tensor's memory. Assigning copies values of the same shape in.")
      .def_property_readonly("shape", [](const tt::Tensor& t) { return shape_tuple(t.shape()); })
      .def_property_readonly("ndim", &tt::Tensor::dim)
      .def("dim", &tt::Tensor::dim)
      .def("numel", &tt::Tensor::numel)
      .def("numpy", &tensor_to_array, "The data as a numpy array (shared, not copied).")
      .def(
          "__array__",
          [](const tt::Tensor& t, py::object dtype, py::object) {
            py::array a = tensor_to_array(t);
            return dtype.is_none() ? py::object(a) : py::object(a.attr("astype")(dtype));
          },
          "dtype"_a = py::none(), "copy"_a = py::none())
      .def("item", &item_of, "The value of a one-element tensor as a Python float, int or bool.")
      .def("tolist", [](const tt::Tensor& t) { return tensor_to_array(t).attr("tolist")(); })
      .def("allclose", &tt::Tensor::allclose, "other"_a, "rtol"_a = 1e-5, "atol"_a = 1e-8)
      .def("equal", &tt::Tensor::equal, "other"_a)
      .def("__len__",
           [](const tt::Tensor& t) {
             if (t.dim() == 0) throw py::type_error("len() of a 0-d tensor");
             return t.size(0);
           })
      .def("__repr__", &tt::Tensor::to_string)
      .def(
          "fill_",
          [](tt::Tensor& t, double v) -> tt::Tensor& {
            t.fill_(v, t.dtype());
            return t;
          },
          "value"_a)
      .def("zero_",
           [](tt::Tensor& t) -> tt::Tensor& {
             t.fill_(0.0, t.dtype());
             return t;
           })
      .def(
          "copy_",
          [](tt::Tensor& t, py::handle src) -> tt::Tensor& {
            t.copy_(tensor_from_object(src));
            return t;
          },
          "src"_a)
      .def_buffer([](tt::Tensor& t) {
        const auto item = static_cast<py::ssize_t>(tt::element_size(t.dtype()));
        std::vector<py::ssize_t> strides(t.strides().size());
        for (size_t d = 0; d < strides.size(); ++d) strides[d] = t.strides()[d] * item;
        const std::string format = t.dtype() == tt::DType::Float32 ? py::format_descriptor<float>::format()
                                   : t.dtype() == tt::DType::Int64 ? py::format_descriptor<int64_t>::format()
                                                                   : py::format_descriptor<bool>::format();
        return py::buffer_info(t.raw_data(), item, format, t.dim(),
                               std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()), strides);
      });
  bind_views(c);
  bind_dtypes(c);
  bind_autograd_fields(c);
  // numpy arrays and lists are accepted wherever a Tensor is expected.
  py::implicitly_convertible<py::array, tt::Tensor>();
  py::implicitly_convertible<py::list, tt::Tensor>();

  py::class_<tt::NoGradGuard>(m, "_NoGradGuard").def(py::init<>());
  py::class_<tt::EnableGradGuard>(m, "_EnableGradGuard").def(py::init<>());
  m.def("is_grad_enabled", &tt::is_grad_enabled, "Whether ops record the graph on this thread (False under no_grad).");
}

}  // namespace tinytorch::python

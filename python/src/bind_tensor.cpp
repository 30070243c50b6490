// Tensor: numpy interop, autograd fields, arithmetic; and the no-grad switch.
#include "bindings.hpp"

namespace tinytorch::python {

void bind_tensor(py::module_& m) {
  py::class_<tt::Tensor>(m, "Tensor", py::buffer_protocol(), R"doc(
An N-dimensional float32 tensor over tinytorch's C++ core.

Tensor(data) takes a numpy array, a nested list of numbers or a number. A C-contiguous, writeable
float32 array is shared, not copied; anything else is converted to float32. ``.data`` is a numpy
view of the same memory: writes through it change the tensor.)doc")
      .def(py::init(&tensor_from_object), "data"_a)
      .def_property(
          "data", &tensor_to_array,
          [](tt::Tensor& self, py::handle value) {
            tt::Tensor t = tensor_from_object(value);
            if (t.shape() != self.shape()) {
              throw py::value_error("Tensor.data: expected shape " + tt::shape_to_string(self.shape()) + ", got " +
                                    tt::shape_to_string(t.shape()));
            }
            self.copy_(t);
          },
          "A numpy array sharing this tensor's memory. Assigning copies values of the same shape in.")
      .def_property_readonly("shape", [](const tt::Tensor& t) { return shape_tuple(t.shape()); })
      .def_property_readonly("size", &tt::Tensor::numel, "Number of elements (numpy's size).")
      .def_property_readonly("ndim", &tt::Tensor::dim)
      .def_property_readonly("dtype", [](const tt::Tensor&) { return py::dtype::of<float>(); })
      .def("numpy", &tensor_to_array, "The data as a numpy array (shared, not copied).")
      .def(
          "__array__",
          [](const tt::Tensor& t, py::object dtype) {
            py::array a = tensor_to_array(t);
            return dtype.is_none() ? py::object(a) : py::object(a.attr("astype")(dtype));
          },
          "dtype"_a = py::none())
      .def("reshape",
           [](const tt::Tensor& t, py::args shape) {
             py::sequence s = (shape.size() == 1 && !is_int(shape[0])) ? py::reinterpret_borrow<py::sequence>(shape[0])
                                                                       : py::sequence(shape);
             return t.reshape(s.cast<tt::Shape>());
           })
      .def("clone", &tt::Tensor::clone)
      .def("item", &tt::Tensor::item)
      .def("allclose", &tt::Tensor::allclose, "other"_a, "rtol"_a = 1e-5, "atol"_a = 1e-8)
      .def("__len__",
           [](const tt::Tensor& t) {
             if (t.dim() == 0) throw py::type_error("len() of a 0-d tensor");
             return t.size(0);
           })
      .def("__repr__", &tt::Tensor::to_string)
      .def_buffer([](tt::Tensor& t) {
        std::vector<py::ssize_t> strides(static_cast<size_t>(t.dim()));
        py::ssize_t stride = sizeof(float);
        for (int64_t d = t.dim() - 1; d >= 0; --d) {
          strides[static_cast<size_t>(d)] = stride;
          stride *= t.shape()[static_cast<size_t>(d)];
        }
        return py::buffer_info(t.data(), std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()), strides);
      })
      .def_property(
          "requires_grad", &tt::Tensor::requires_grad, [](tt::Tensor& t, bool on) { t.set_requires_grad(on); },
          "Whether backward() computes a gradient for this tensor (settable on leaves).")
      .def(
          "requires_grad_", [](tt::Tensor& t, bool on) { return t.set_requires_grad(on); }, "requires_grad"_a = true)
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
          [](const tt::Tensor& t, py::object gradient) {
            const tt::Tensor g = gradient.is_none() ? tt::Tensor() : tensor_from_object(gradient);
            py::gil_scoped_release release;
            t.backward(g);
          },
          "gradient"_a = py::none())
      .def("detach", &tt::Tensor::detach)
      .def("sum", [](const tt::Tensor& t) { return tt::sum(t); })
      .def("mean", [](const tt::Tensor& t) { return tt::mean(t); })
      .def(
          "__add__", [](const tt::Tensor& a, const tt::Tensor& b) { return a + b; }, py::is_operator())
      .def(
          "__sub__", [](const tt::Tensor& a, const tt::Tensor& b) { return a - b; }, py::is_operator())
      .def(
          "__mul__", [](const tt::Tensor& a, const tt::Tensor& b) { return a * b; }, py::is_operator())
      .def(
          "__mul__", [](const tt::Tensor& a, float f) { return a * f; }, py::is_operator())
      .def(
          "__rmul__", [](const tt::Tensor& a, float f) { return a * f; }, py::is_operator())
      .def("__neg__", [](const tt::Tensor& a) { return a * -1.0f; })
      .def_static(
          "zeros", [](const tt::Shape& s) { return tt::Tensor::zeros(s); }, "shape"_a)
      .def_static(
          "ones", [](const tt::Shape& s) { return tt::Tensor::ones(s); }, "shape"_a)
      .def_static(
          "randn", [](const tt::Shape& s) { return tt::Tensor::randn(s); }, "shape"_a);
  // numpy arrays and lists are accepted wherever a Tensor is expected.
  py::implicitly_convertible<py::array, tt::Tensor>();
  py::implicitly_convertible<py::list, tt::Tensor>();

  py::class_<tt::NoGradGuard>(m, "_NoGradGuard").def(py::init<>());
  m.def("is_grad_enabled", &tt::is_grad_enabled);
}

}  // namespace tinytorch::python

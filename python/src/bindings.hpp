// Shared by the binding files: numpy <-> Tensor conversion, argument conversion with PyTorch's
// conventions, and the trampoline that lets Python subclass Module.
//
// Tensors share memory with numpy both ways: Tensor(array) wraps a C-contiguous, writeable float32
// array without copying (other arrays are converted to float32 first, which copies), and
// Tensor.data is a numpy view of the tensor's storage. Layer calls release the GIL.
// C++ ArgumentError (ShapeError, DataError, ...) becomes ValueError, IndexError stays IndexError,
// IOError becomes OSError, std::bad_alloc MemoryError; a wrong Python type is a TypeError.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>

#include "tinytorch/tinytorch.hpp"

namespace tinytorch::python {

namespace py = pybind11;
namespace tt = tinytorch;
using namespace pybind11::literals;

inline std::string type_name_of(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

// --- numpy <-> Tensor -------------------------------------------------------------------------

// Wraps a C-contiguous float32 array without copying; the tensor keeps the array alive.
inline tt::Tensor tensor_from_array(py::array_t<float, py::array::c_style> array) {
  tt::Shape shape(array.shape(), array.shape() + array.ndim());
  // The owner drops its reference with the GIL held, whichever thread frees the tensor last.
  auto* keep = new py::object(array);
  std::shared_ptr<void> owner(keep, [](void* p) {
    if (!Py_IsInitialized()) return;  // interpreter gone: leak rather than touch it
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return tt::Tensor::from_blob(array.mutable_data(), std::move(shape), std::move(owner));
}

// Tensor(x): a numpy array, a (nested) list or tuple of numbers, a number, or a Tensor.
inline tt::Tensor tensor_from_object(py::handle obj) {
  if (py::isinstance<tt::Tensor>(obj)) return obj.cast<tt::Tensor>();
  py::module_ np = py::module_::import("numpy");
  const bool acceptable = py::isinstance<py::array>(obj) || py::isinstance<py::list>(obj) ||
                          py::isinstance<py::tuple>(obj) || py::isinstance<py::int_>(obj) ||
                          py::isinstance<py::float_>(obj) || py::isinstance(obj, np.attr("generic"));
  if (!acceptable || py::isinstance<py::str>(obj)) {
    throw py::type_error("Tensor: expected a numpy array, a nested list of numbers or a number, got " +
                         type_name_of(obj));
  }
  py::array source;
  try {
    source = np.attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    throw py::type_error("Tensor: cannot read " + type_name_of(obj) + " as an array of numbers: " + e.what());
  }
  const char kind = source.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
    throw py::type_error("Tensor: expected real numbers (float, int or bool), got an array of dtype " +
                         std::string(py::str(source.dtype())));
  }
  // Shares memory when the array already is C-contiguous, writeable float32; converts otherwise.
  const bool shareable =
      source.dtype().is(py::dtype::of<float>()) && (source.flags() & py::array::c_style) && source.writeable();
  py::array_t<float, py::array::c_style> array =
      shareable
          ? py::array_t<float, py::array::c_style>::ensure(source)
          : py::array_t<float, py::array::c_style>(np.attr("array")(source, "dtype"_a = "float32", "order"_a = "C"));
  return tensor_from_array(array);
}

// A numpy view of the tensor's storage; the array keeps the storage alive.
inline py::array tensor_to_array(const tt::Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  auto* keep = new std::shared_ptr<tt::Storage>(t.storage());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<tt::Storage>*>(p); });
  return py::array_t<float>(shape, const_cast<float*>(t.data()), base);
}

inline py::tuple shape_tuple(const tt::Shape& s) {
  py::tuple out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
  return out;
}

// --- argument conversion ----------------------------------------------------------------------

// An integer: a Python int or anything with __index__ (numpy's integer scalars), not a bool.
inline bool is_int(py::handle h) {
  if (py::isinstance<py::bool_>(h) || py::isinstance<py::float_>(h)) return false;
  if (py::isinstance<py::int_>(h)) return true;
  if (!PyIndex_Check(h.ptr())) return false;
  const std::string type = py::str(py::type::of(h).attr("__name__"));
  return type != "bool_" && type != "bool";  // numpy's bool scalar
}

// The integer's value; one outside int64 is a ValueError that says so (not a bare RuntimeError).
inline int64_t to_int64(py::handle h, const char* what) {
  const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(h.ptr()));
  if (!value) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0) {
    throw py::value_error(std::string(what) + " must fit in a signed 64-bit integer, got " +
                          std::string(py::str(py::object(value))));
  }
  return v;
}

// A thread count: any Python integer, checked against [1, kMaxThreads] before it is narrowed to int
// (so 2**40 is the same ValueError as 0, not a TypeError).
inline int thread_count(py::handle h, const char* what) {
  if (!is_int(h)) throw py::type_error(std::string(what) + ": expected an int, got " + type_name_of(h));
  const int64_t n = to_int64(h, what);
  if (n < 1 || n > tt::kMaxThreads) {
    throw py::value_error(std::string(what) + ": expected a thread count in [1, " + std::to_string(tt::kMaxThreads) +
                          "], got " + std::to_string(n));
  }
  return static_cast<int>(n);
}

// An int or a pair of ints, as PyTorch takes kernel_size, stride, padding and dilation.
inline tt::Size2 to_size2(py::handle h, const char* what) {
  if (is_int(h)) return tt::Size2(to_int64(h, what));
  if ((py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) && py::len(h) == 2) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(h);
    if (is_int(s[0]) && is_int(s[1])) return tt::Size2(to_int64(s[0], what), to_int64(s[1], what));
  }
  if (py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) {
    throw py::value_error(std::string(what) + " must be an int or a pair of ints, got " + std::string(py::repr(h)));
  }
  throw py::type_error(std::string(what) + " must be an int or a pair of ints, got " + type_name_of(h));
}

inline std::optional<tt::Size2> to_optional_size2(py::handle h, const char* what) {
  if (h.is_none()) return std::nullopt;
  return to_size2(h, what);
}

inline tt::Padding2d to_padding(py::handle h) {
  if (py::isinstance<py::str>(h)) return tt::Padding2d(h.cast<std::string>());
  return tt::Padding2d(to_size2(h, "padding"));
}

inline py::tuple size2_tuple(tt::Size2 s) { return py::make_tuple(s.h, s.w); }

inline py::object padding_object(const tt::Padding2d& p) {
  if (p.mode == tt::Padding2d::Mode::Valid) return py::str("valid");
  if (p.mode == tt::Padding2d::Mode::Same) return py::str("same");
  return size2_tuple({p.h, p.w});
}

inline py::object tensor_or_none(const tt::Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

// Replaces a parameter by a tensor of the same shape (so the layer stays consistent), under the
// module's lock: a forward running on another thread without the GIL sees the old or the new
// tensor whole (Module::replace_parameter).
inline void set_parameter(tt::Module& module, const char* name, py::handle value) {
  module.replace_parameter(name, tensor_from_object(value));
}

// Lets Python subclasses of Module define forward (and a name).
class PyModule : public tt::Module {
 public:
  tt::Tensor forward(const tt::Tensor& input) override {
    PYBIND11_OVERRIDE_PURE(tt::Tensor, tt::Module, forward, input);
  }
  std::string type_name() const override {
    py::gil_scoped_acquire gil;
    return type_name_of(py::cast(this));
  }
};

using release_gil = py::call_guard<py::gil_scoped_release>;

// The binding functions, one per area, called in the order of the Python package.
void bind_runtime(py::module_& m);      // threads, conv2d algorithm settings, weight cache (backends)
void bind_tensor(py::module_& m);       // Tensor and autograd switches
void bind_module_base(py::module_& m);  // Module, Sequential
void bind_layers(py::module_& m);       // Linear, ReLU, Conv2D, Flatten, BatchNorm2d, Dropout, models
void bind_pooling(py::module_& m);      // MaxPool2D, AvgPool2D
void bind_functional(py::module_& m);   // conv2d, linear, pooling, losses as functions
void bind_optim(py::module_& m);        // optimizers and schedules
void bind_data(py::module_& m);         // datasets, DataLoader, checkpoints

}  // namespace tinytorch::python

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

inline const char* numpy_name(tt::DType d) { return tt::dtype_name(d); }  // numpy's names are ours

// The tinytorch dtype of a numpy dtype name ("float32", "int64", "bool"), or nullopt.
inline std::optional<tt::DType> dtype_from_numpy(const py::dtype& d) {
  if (d.is(py::dtype::of<float>())) return tt::DType::Float32;
  if (d.is(py::dtype::of<int64_t>())) return tt::DType::Int64;
  if (d.is(py::dtype::of<bool>())) return tt::DType::Bool;
  return std::nullopt;
}

// The dtype a numpy array becomes: floats -> float32, integers -> int64, bool -> bool.
inline tt::DType target_dtype(const py::array& a, const std::string& who) {
  switch (a.dtype().kind()) {
    case 'f':
      return tt::DType::Float32;
    case 'i':
    case 'u':
      return tt::DType::Int64;
    case 'b':
      return tt::DType::Bool;
    default:
      break;
  }
  throw py::type_error(who + ": expected real numbers (float, int or bool), got an array of dtype " +
                       std::string(py::str(a.dtype())));
}

// Wraps a numpy array of one of tinytorch's dtypes without copying (any strides that are whole
// elements); the tensor keeps the array alive. A read-only or misaligned array is copied.
inline tt::Tensor tensor_from_array(py::array array) {
  const auto dtype = dtype_from_numpy(array.dtype());
  const auto item = static_cast<py::ssize_t>(array.itemsize());
  bool shareable = dtype.has_value() && array.writeable() &&
                   reinterpret_cast<uintptr_t>(array.data()) % static_cast<uintptr_t>(item) == 0;
  for (py::ssize_t d = 0; shareable && d < array.ndim(); ++d) shareable = array.strides(d) % item == 0;
  if (!shareable) {
    py::module_ np = py::module_::import("numpy");
    const char* name = numpy_name(dtype.value_or(tt::DType::Float32));
    array = np.attr("array")(array, "dtype"_a = name, "order"_a = "C");
    return tensor_from_array(array);
  }
  tt::Shape shape(array.shape(), array.shape() + array.ndim());
  tt::Shape strides(static_cast<size_t>(array.ndim()));
  for (py::ssize_t d = 0; d < array.ndim(); ++d) strides[static_cast<size_t>(d)] = array.strides(d) / item;
  // The owner drops its reference with the GIL held, whichever thread frees the tensor last.
  auto* keep = new py::object(array);
  std::shared_ptr<void> owner(keep, [](void* p) {
    if (!Py_IsInitialized()) return;  // interpreter gone: leak rather than touch it
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return tt::Tensor::from_blob(array.mutable_data(), std::move(shape), std::move(strides), *dtype, std::move(owner));
}

tt::Tensor tensor_from_dlpack(py::handle obj);  // bind_interop.cpp

// Tensor(x): a numpy array, a (nested) list or tuple of numbers, a number, a Tensor, or anything
// with __dlpack__ (a PyTorch tensor) or __array__. Floats become float32, integers int64, bools
// bool, unless `dtype` says otherwise. Memory is shared where the source already has the dtype.
inline tt::Tensor tensor_from_object(py::handle obj, std::optional<tt::DType> dtype = std::nullopt) {
  if (py::isinstance<tt::Tensor>(obj)) {
    const tt::Tensor& t = obj.cast<const tt::Tensor&>();
    return dtype ? t.to(*dtype) : t;
  }
  py::module_ np = py::module_::import("numpy");
  const bool is_array = py::isinstance<py::array>(obj);
  if (!is_array && !py::isinstance<py::str>(obj) && py::hasattr(obj, "__dlpack__") &&
      py::hasattr(obj, "__dlpack_device__")) {
    const tt::Tensor t = tensor_from_dlpack(obj);
    return dtype ? t.to(*dtype) : t;
  }
  const bool acceptable = is_array || py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj) ||
                          py::isinstance<py::int_>(obj) || py::isinstance<py::float_>(obj) ||
                          py::isinstance(obj, np.attr("generic")) || py::hasattr(obj, "__array__");
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
  const tt::DType natural = target_dtype(source, "Tensor");  // refuses strings and objects
  const tt::DType want = dtype.value_or(natural);
  const auto have = dtype_from_numpy(source.dtype());
  if (!have || *have != want) source = np.attr("asarray")(source, "dtype"_a = numpy_name(want));
  return tensor_from_array(source);
}

// A numpy view of the tensor's memory (same strides); the array keeps the storage alive.
inline py::array tensor_to_array(const tt::Tensor& t) {
  const auto item = static_cast<py::ssize_t>(tt::element_size(t.dtype()));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(t.strides().size());
  for (size_t d = 0; d < strides.size(); ++d) strides[d] = t.strides()[d] * item;
  auto* keep = new std::shared_ptr<tt::Storage>(t.storage());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<tt::Storage>*>(p); });
  void* data = t.raw_data();
  static float empty_slot = 0.0f;  // numpy wants a non-null pointer even for no elements
  return py::array(py::dtype(numpy_name(t.dtype())), shape, strides, data ? data : &empty_slot, base);
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
  // numpy arrays and tensors have __index__ too (for one element), but are not ints here.
  if (!PyIndex_Check(h.ptr()) || py::isinstance<py::array>(h) || py::isinstance<tt::Tensor>(h)) return false;
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

// A dtype argument: "float32" / "int64" / "bool" (and "float", "long", "int"), a numpy dtype or
// scalar type, or Python's float / int / bool. nullopt for None.
inline std::optional<tt::DType> to_dtype(py::handle h) {
  if (h.is_none()) return std::nullopt;
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyFloat_Type)) return tt::DType::Float32;
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyLong_Type)) return tt::DType::Int64;
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyBool_Type)) return tt::DType::Bool;
  if (py::isinstance<py::str>(h)) {
    const std::string name = h.cast<std::string>();
    if (name == "float32" || name == "float") return tt::DType::Float32;
    if (name == "int64" || name == "long" || name == "int") return tt::DType::Int64;
    if (name == "bool") return tt::DType::Bool;
    throw py::type_error("dtype: expected 'float32', 'int64' or 'bool', got '" + name + "'");
  }
  py::dtype d;
  try {
    d = py::dtype::from_args(py::reinterpret_borrow<py::object>(h));
  } catch (py::error_already_set&) {
    throw py::type_error("dtype: expected float32, int64 or bool, got " + std::string(py::repr(h)));
  }
  if (auto found = dtype_from_numpy(d)) return found;
  throw py::type_error("dtype: tinytorch tensors are float32, int64 or bool; got " + std::string(py::str(d)) +
                       " (convert the array first, or let Tensor() convert it: floats become float32, integers "
                       "int64)");
}

// The other operand of an arithmetic op: a Tensor, or a Python or numpy number (a 0-d tensor of
// its kind: bool, int64, float32), or anything Tensor() takes.
inline tt::Tensor operand(py::handle h) {
  if (py::isinstance<tt::Tensor>(h)) return h.cast<tt::Tensor>();
  if (py::isinstance<py::bool_>(h)) return tt::scalar_tensor(h.cast<bool>() ? 1.0 : 0.0, tt::DType::Bool);
  if (is_int(h)) {
    tt::Tensor t = tt::Tensor::empty({}, tt::DType::Int64);
    *t.data_ptr<int64_t>() = to_int64(h, "an integer operand");
    return t;
  }
  if (py::isinstance<py::float_>(h)) return tt::scalar_tensor(h.cast<double>(), tt::DType::Float32);
  return tensor_from_object(h);
}

// dims given as None (all), an int, or a sequence of ints.
inline std::vector<int64_t> to_dims(py::handle h) {
  if (h.is_none()) return {};
  if (is_int(h)) return {to_int64(h, "dim")};
  if (py::isinstance<py::sequence>(h) && !py::isinstance<py::str>(h)) {
    std::vector<int64_t> dims;
    for (py::handle d : py::reinterpret_borrow<py::sequence>(h)) {
      if (!is_int(d)) throw py::type_error("dim: expected ints, got " + type_name_of(d));
      dims.push_back(to_int64(d, "dim"));
    }
    return dims;
  }
  throw py::type_error("dim: expected an int, a tuple of ints or None, got " + type_name_of(h));
}

// A shape given as separate ints (t.reshape(2, 3)) or as one sequence (t.reshape((2, 3))).
inline tt::Shape to_shape(const py::args& args, const char* what) {
  py::sequence s =
      (args.size() == 1 && !is_int(args[0])) ? py::reinterpret_borrow<py::sequence>(args[0]) : py::sequence(args);
  tt::Shape shape;
  for (py::handle d : s) {
    if (!is_int(d)) throw py::type_error(std::string(what) + ": expected ints, got " + type_name_of(d));
    shape.push_back(to_int64(d, what));
  }
  return shape;
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
void bind_tensor(py::module_& m);       // Tensor: construction, numpy, views, autograd fields
void bind_tensor_math(py::module_& m);  // Tensor operators and math methods, and the same as functions
void bind_interop(py::module_& m);      // DLPack in and out
void bind_module_base(py::module_& m);  // Module, Sequential
void bind_layers(py::module_& m);       // Linear, ReLU, Conv2D, Flatten, BatchNorm2d, Dropout, models
void bind_pooling(py::module_& m);      // MaxPool2D, AvgPool2D
void bind_functional(py::module_& m);   // conv2d, linear, pooling, losses as functions
void bind_optim(py::module_& m);        // optimizers and schedules
void bind_data(py::module_& m);         // datasets, DataLoader, checkpoints
void bind_onnx(py::module_& m);         // ONNX import and export
void bind_distributed(py::module_& m);  // MPI collectives, the gradient reducer

}  // namespace tinytorch::python

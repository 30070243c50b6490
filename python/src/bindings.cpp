// tinytorch._tinytorch: the Python extension over the C++ core (pybind11).
//
// Tensors share memory with numpy both ways: Tensor(array) wraps a C-contiguous, writeable float32
// array without copying (other arrays are converted to float32 first, which copies), and
// Tensor.data is a numpy view of the tensor's storage. Layer calls release the GIL.
// C++ ShapeError/std::invalid_argument become ValueError, IndexError stays IndexError,
// std::bad_alloc becomes MemoryError; a wrong Python type is a TypeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>

#include <string>

#include "tinytorch/tinytorch.hpp"

namespace py = pybind11;
namespace tt = tinytorch;
using namespace pybind11::literals;

namespace {

std::string type_name_of(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

// --- numpy <-> Tensor -------------------------------------------------------------------------

// Wraps a C-contiguous float32 array without copying; the tensor keeps the array alive.
tt::Tensor tensor_from_array(py::array_t<float, py::array::c_style> array) {
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
tt::Tensor tensor_from_object(py::handle obj) {
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
  const bool shareable = source.dtype().is(py::dtype::of<float>()) &&
                         (source.flags() & py::array::c_style) && source.writeable();
  py::array_t<float, py::array::c_style> array =
      shareable ? py::array_t<float, py::array::c_style>::ensure(source)
                : py::array_t<float, py::array::c_style>(np.attr("array")(source, "dtype"_a = "float32", "order"_a = "C"));
  return tensor_from_array(array);
}

// A numpy view of the tensor's storage; the array keeps the storage alive.
py::array tensor_to_array(const tt::Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  auto* keep = new std::shared_ptr<tt::Storage>(t.storage());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<tt::Storage>*>(p); });
  return py::array_t<float>(shape, const_cast<float*>(t.data()), base);
}

py::tuple shape_tuple(const tt::Shape& s) {
  py::tuple out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
  return out;
}

// --- argument conversion ----------------------------------------------------------------------

// An integer: a Python int or anything with __index__ (numpy's integer scalars), not a bool.
bool is_int(py::handle h) {
  if (py::isinstance<py::bool_>(h) || py::isinstance<py::float_>(h)) return false;
  if (py::isinstance<py::int_>(h)) return true;
  if (!PyIndex_Check(h.ptr())) return false;
  const std::string type = py::str(py::type::of(h).attr("__name__"));
  return type != "bool_" && type != "bool";  // numpy's bool scalar
}

// The integer's value; one outside int64 is a ValueError that says so (not a bare RuntimeError).
int64_t to_int64(py::handle h, const char* what) {
  const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(h.ptr()));
  if (!value) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0) {
    throw py::value_error(std::string(what) + " must fit in a signed 64-bit integer, got " + std::string(py::str(py::object(value))));
  }
  return v;
}

// An int or a pair of ints, as PyTorch takes kernel_size, stride, padding and dilation.
tt::Size2 to_size2(py::handle h, const char* what) {
  if (is_int(h)) return tt::Size2(to_int64(h, what));
  if ((py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) && py::len(h) == 2) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(h);
    if (is_int(s[0]) && is_int(s[1])) return tt::Size2(to_int64(s[0], what), to_int64(s[1], what));
  }
  if (py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) {
    throw py::value_error(std::string(what) + " must be an int or a pair of ints, got " +
                          std::string(py::repr(h)));
  }
  throw py::type_error(std::string(what) + " must be an int or a pair of ints, got " + type_name_of(h));
}

std::optional<tt::Size2> to_optional_size2(py::handle h, const char* what) {
  if (h.is_none()) return std::nullopt;
  return to_size2(h, what);
}

tt::Padding2d to_padding(py::handle h) {
  if (py::isinstance<py::str>(h)) return tt::Padding2d(h.cast<std::string>());
  return tt::Padding2d(to_size2(h, "padding"));
}

py::tuple size2_tuple(tt::Size2 s) { return py::make_tuple(s.h, s.w); }

py::object padding_object(const tt::Padding2d& p) {
  if (p.mode == tt::Padding2d::Mode::Valid) return py::str("valid");
  if (p.mode == tt::Padding2d::Mode::Same) return py::str("same");
  return size2_tuple({p.h, p.w});
}

py::object tensor_or_none(const tt::Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

// Replaces a parameter by a tensor of the same shape (so the layer stays consistent), under the
// module's lock: a forward running on another thread without the GIL sees the old or the new
// tensor whole (Module::replace_parameter).
void set_parameter(tt::Module& module, const char* name, py::handle value) {
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

}  // namespace

PYBIND11_MODULE(_tinytorch, m) {
  m.doc() = "tinytorch's C++ core";
  m.attr("__version__") = tt::kVersion;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tt::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const tt::IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  m.def("set_num_threads", &tt::set_num_threads, "n"_a, "Threads for tinytorch's kernels (>= 1).");
  m.def("get_num_threads", &tt::get_num_threads);
  m.def("measure_fma_peak_gflops", &tt::measure_fma_peak_gflops, "threads"_a, "seconds"_a = 0.2,
        py::call_guard<py::gil_scoped_release>(), "This machine's FP32 FMA peak on `threads` threads, measured.");
  m.def("peak_isa", &tt::peak_isa);
  m.def("set_conv2d_algorithm", [](const std::string& name) { tt::set_conv2d_algorithm(tt::conv2d_algorithm_from_string(name)); },
        "name"_a, "Force a conv2d algorithm ('auto' restores the heuristic).");
  m.def("get_conv2d_algorithm", [] { return tt::to_string(tt::get_conv2d_algorithm()); });
  m.def("set_conv2d_autotune", &tt::set_conv2d_autotune, "enabled"_a,
        "Time the algorithms on each new shape and keep the fastest (like torch.backends.cudnn.benchmark).");
  m.def("get_conv2d_autotune", &tt::get_conv2d_autotune);
  m.def("clear_conv2d_autotune_cache", &tt::clear_conv2d_autotune_cache);
  m.def("conv2d_autotune_cache_size", &tt::conv2d_autotune_cache_size, "Shapes tuned so far.");
  m.def("set_weight_cache_bytes", &tt::set_weight_cache_bytes, "bytes"_a,
        "Budget for prepared weights kept between calls (0 turns the cache off).");
  m.def("get_weight_cache_bytes", &tt::get_weight_cache_bytes);
  m.def("weight_cache_held_bytes", &tt::weight_cache_held_bytes, "Bytes the weight cache holds now.");
  m.def("clear_weight_cache", &tt::clear_weight_cache);
  m.def("conv2d_algorithms", [] {
    std::vector<std::string> names;
    for (auto a : tt::all_conv2d_algorithms()) names.push_back(tt::to_string(a));
    return names;
  });
  m.def("select_conv2d_algorithm", [](const tt::Shape& input, const tt::Shape& weight, py::handle stride,
                                      py::handle padding, py::handle dilation, int64_t groups) {
    const tt::Conv2dOptions o{to_size2(stride, "stride"), to_padding(padding), to_size2(dilation, "dilation"), groups};
    return tt::to_string(tt::select_conv2d_algorithm(input, weight, o));
  }, "input_shape"_a, "weight_shape"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
  m.def("manual_seed", &tt::manual_seed, "seed"_a, "Seeds the generator behind weight init and randn/rand.");

  // --- Tensor ---
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
      .def("__array__", [](const tt::Tensor& t, py::object dtype) {
             py::array a = tensor_to_array(t);
             return dtype.is_none() ? py::object(a) : py::object(a.attr("astype")(dtype));
           }, "dtype"_a = py::none())
      .def("reshape", [](const tt::Tensor& t, py::args shape) {
             py::sequence s = (shape.size() == 1 && !is_int(shape[0])) ? py::reinterpret_borrow<py::sequence>(shape[0])
                                                                         : py::sequence(shape);
             return t.reshape(s.cast<tt::Shape>());
           })
      .def("clone", &tt::Tensor::clone)
      .def("item", &tt::Tensor::item)
      .def("allclose", &tt::Tensor::allclose, "other"_a, "rtol"_a = 1e-5, "atol"_a = 1e-8)
      .def("__len__", [](const tt::Tensor& t) {
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
      .def_property("requires_grad", &tt::Tensor::requires_grad,
                    [](tt::Tensor& t, bool on) { t.set_requires_grad(on); },
                    "Whether backward() computes a gradient for this tensor (settable on leaves).")
      .def("requires_grad_", [](tt::Tensor& t, bool on) { return t.set_requires_grad(on); }, "requires_grad"_a = true)
      .def_property("grad", [](const tt::Tensor& t) { return tensor_or_none(t.grad()); },
                    [](tt::Tensor& t, py::object g) { t.set_grad(g.is_none() ? tt::Tensor() : tensor_from_object(g)); })
      .def_property_readonly("grad_fn", [](const tt::Tensor& t) -> py::object {
        return t.grad_fn() ? py::object(py::str(t.grad_fn()->name())) : py::object(py::none());
      }, "The name of the op that computed this tensor, or None for a leaf.")
      .def("backward", [](const tt::Tensor& t, py::object gradient) {
        const tt::Tensor g = gradient.is_none() ? tt::Tensor() : tensor_from_object(gradient);
        py::gil_scoped_release release;
        t.backward(g);
      }, "gradient"_a = py::none())
      .def("detach", &tt::Tensor::detach)
      .def("sum", [](const tt::Tensor& t) { return tt::sum(t); })
      .def("mean", [](const tt::Tensor& t) { return tt::mean(t); })
      .def("__add__", [](const tt::Tensor& a, const tt::Tensor& b) { return a + b; }, py::is_operator())
      .def("__sub__", [](const tt::Tensor& a, const tt::Tensor& b) { return a - b; }, py::is_operator())
      .def("__mul__", [](const tt::Tensor& a, const tt::Tensor& b) { return a * b; }, py::is_operator())
      .def("__mul__", [](const tt::Tensor& a, float f) { return a * f; }, py::is_operator())
      .def("__rmul__", [](const tt::Tensor& a, float f) { return a * f; }, py::is_operator())
      .def("__neg__", [](const tt::Tensor& a) { return a * -1.0f; })
      .def_static("zeros", [](const tt::Shape& s) { return tt::Tensor::zeros(s); }, "shape"_a)
      .def_static("ones", [](const tt::Shape& s) { return tt::Tensor::ones(s); }, "shape"_a)
      .def_static("randn", [](const tt::Shape& s) { return tt::Tensor::randn(s); }, "shape"_a);
  // numpy arrays and lists are accepted wherever a Tensor is expected.
  py::implicitly_convertible<py::array, tt::Tensor>();
  py::implicitly_convertible<py::list, tt::Tensor>();

  // --- Module and the layers ---
  py::class_<tt::Module, PyModule, std::shared_ptr<tt::Module>>(m, "Module", py::dynamic_attr())
      .def(py::init<>())
      .def("forward", &tt::Module::forward, "input"_a)
      .def("__call__", [](py::object self, py::args args, py::kwargs kwargs) {
        return self.attr("forward")(*args, **kwargs);
      })
      .def("_own_parameters", [](const tt::Module& self) { return self.named_parameters(false); })
      .def("_own_buffers", [](const tt::Module& self) {
        // named_buffers() recurses into the C++ children; their buffers are gathered through _children.
        tt::NamedTensors own;
        for (auto& [name, t] : self.named_buffers())
          if (name.find('.') == std::string::npos) own.emplace_back(name, t);
        return own;
      })
      .def("_children", [](py::object self) {
        // The registered C++ children, as their existing Python objects where they have one.
        py::list out;
        for (const auto& [name, child] : self.cast<const tt::Module&>().named_children()) {
          out.append(py::make_tuple(name, py::cast(child, py::return_value_policy::reference_internal, self)));
        }
        return out;
      })
      .def("train", &tt::Module::train, "mode"_a = true)
      .def("eval", &tt::Module::eval)
      .def_property_readonly("training", &tt::Module::is_training)
      .def("__repr__", &tt::Module::repr);

  py::class_<tt::Sequential, tt::Module, std::shared_ptr<tt::Sequential>>(m, "Sequential")
      // keep_alive: the Python modules (and their Python halves) live as long as the Sequential.
      .def(py::init([](py::args modules) {
             auto s = std::make_shared<tt::Sequential>();
             for (py::handle h : modules) {
               if (!py::isinstance<tt::Module>(h)) throw py::type_error("Sequential: expected Modules, got " + type_name_of(h));
               s->add(h.cast<std::shared_ptr<tt::Module>>());
             }
             return s;
           }),
           py::keep_alive<1, 2>())
      .def("append", [](tt::Sequential& s, std::shared_ptr<tt::Module> m) { s.add(std::move(m)); }, py::keep_alive<1, 2>())
      .def("__len__", &tt::Sequential::size)
      .def("__getitem__", [](py::object self, size_t i) {
        // Return the very module that was added (its Python object when it has one).
        tt::Module& child = self.cast<tt::Sequential&>()[i];
        return py::cast(&child, py::return_value_policy::reference_internal, self);
      })
      .def("forward", &tt::Sequential::forward, "input"_a, release_gil());

  py::class_<tt::Linear, tt::Module, std::shared_ptr<tt::Linear>>(m, "Linear")
      .def(py::init<int64_t, int64_t, bool>(), "input_size"_a, "output_size"_a, "bias"_a = true)
      .def("forward", &tt::Linear::forward, "input"_a, release_gil())
      .def("__call__", &tt::Linear::forward, "input"_a, release_gil())
      .def_readonly("input_size", &tt::Linear::input_size)
      .def_readonly("output_size", &tt::Linear::output_size)
      .def_property("weight", [](const tt::Linear& l) { return l.weight; },
                    [](tt::Linear& l, py::handle v) { set_parameter(l, "weight", v); })
      .def_property("bias", [](const tt::Linear& l) { return tensor_or_none(l.bias); },
                    [](tt::Linear& l, py::handle v) { set_parameter(l, "bias", v); });

  py::class_<tt::ReLU, tt::Module, std::shared_ptr<tt::ReLU>>(m, "ReLU")
      .def(py::init<>())
      .def("forward", &tt::ReLU::forward, "input"_a, release_gil())
      .def("__call__", &tt::ReLU::forward, "input"_a, release_gil());

  py::class_<tt::Conv2D, tt::Module, std::shared_ptr<tt::Conv2D>>(m, "Conv2D")
      .def(py::init([](int64_t in_channels, int64_t out_channels, py::handle kernel_size, py::handle stride,
                       py::handle padding, py::handle dilation, int64_t groups, bool bias) {
             return std::make_shared<tt::Conv2D>(in_channels, out_channels, to_size2(kernel_size, "kernel_size"),
                                                 to_size2(stride, "stride"), to_padding(padding),
                                                 to_size2(dilation, "dilation"), groups, bias);
           }),
           "in_channels"_a, "out_channels"_a, "kernel_size"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1,
           "groups"_a = 1, "bias"_a = true)
      .def("forward", &tt::Conv2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::Conv2D::forward, "input"_a, release_gil())
      .def_readonly("in_channels", &tt::Conv2D::in_channels)
      .def_readonly("out_channels", &tt::Conv2D::out_channels)
      .def_property_readonly("kernel_size", [](const tt::Conv2D& c) { return size2_tuple(c.kernel_size); })
      .def_property_readonly("stride", [](const tt::Conv2D& c) { return size2_tuple(c.options.stride); })
      .def_property_readonly("padding", [](const tt::Conv2D& c) { return padding_object(c.options.padding); })
      .def_property_readonly("dilation", [](const tt::Conv2D& c) { return size2_tuple(c.options.dilation); })
      .def_property_readonly("groups", [](const tt::Conv2D& c) { return c.options.groups; })
      .def_property_readonly("use_bias", [](const tt::Conv2D& c) { return c.bias.defined(); })
      .def_property("weight", [](const tt::Conv2D& c) { return c.weight; },
                    [](tt::Conv2D& c, py::handle v) { set_parameter(c, "weight", v); })
      .def_property("bias", [](const tt::Conv2D& c) { return tensor_or_none(c.bias); },
                    [](tt::Conv2D& c, py::handle v) { set_parameter(c, "bias", v); });

  py::class_<tt::MaxPool2D, tt::Module, std::shared_ptr<tt::MaxPool2D>>(m, "MaxPool2D")
      // pool_size is the seed's name for kernel_size; either may be given.
      .def(py::init([](py::handle kernel_size, py::handle stride, py::handle padding, py::handle dilation,
                       bool ceil_mode, py::handle pool_size) {
             if (kernel_size.is_none() == pool_size.is_none()) {
               throw py::type_error("MaxPool2D: give kernel_size (or the seed's pool_size), exactly one of them");
             }
             py::handle kernel = kernel_size.is_none() ? pool_size : kernel_size;
             return std::make_shared<tt::MaxPool2D>(to_size2(kernel, "kernel_size"),
                                                    to_optional_size2(stride, "stride"), to_size2(padding, "padding"),
                                                    to_size2(dilation, "dilation"), ceil_mode);
           }),
           "kernel_size"_a = py::none(), "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1,
           "ceil_mode"_a = false, py::kw_only(), "pool_size"_a = py::none())
      .def("forward", &tt::MaxPool2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::MaxPool2D::forward, "input"_a, release_gil())
      .def_property_readonly("kernel_size", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly("pool_size", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly("stride", [](const tt::MaxPool2D& p) {
        return size2_tuple(p.options.stride.value_or(p.options.kernel_size));
      })
      .def_property_readonly("padding", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.padding); })
      .def_property_readonly("dilation", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.dilation); })
      .def_property_readonly("ceil_mode", [](const tt::MaxPool2D& p) { return p.options.ceil_mode; });

  py::class_<tt::AvgPool2D, tt::Module, std::shared_ptr<tt::AvgPool2D>>(m, "AvgPool2D")
      .def(py::init([](py::handle kernel_size, py::handle stride, py::handle padding, bool ceil_mode,
                       bool count_include_pad) {
             return std::make_shared<tt::AvgPool2D>(to_size2(kernel_size, "kernel_size"),
                                                    to_optional_size2(stride, "stride"), to_size2(padding, "padding"),
                                                    ceil_mode, count_include_pad);
           }),
           "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
           "count_include_pad"_a = true)
      .def("forward", &tt::AvgPool2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::AvgPool2D::forward, "input"_a, release_gil())
      .def_property_readonly("kernel_size", [](const tt::AvgPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly("stride", [](const tt::AvgPool2D& p) {
        return size2_tuple(p.options.stride.value_or(p.options.kernel_size));
      })
      .def_property_readonly("padding", [](const tt::AvgPool2D& p) { return size2_tuple(p.options.padding); })
      .def_property_readonly("ceil_mode", [](const tt::AvgPool2D& p) { return p.options.ceil_mode; })
      .def_property_readonly("count_include_pad", [](const tt::AvgPool2D& p) { return p.options.count_include_pad; });

  py::class_<tt::Flatten, tt::Module, std::shared_ptr<tt::Flatten>>(m, "Flatten")
      .def(py::init<int64_t, int64_t>(), "start_dim"_a = 1, "end_dim"_a = -1)
      .def("forward", &tt::Flatten::forward, "input"_a)
      .def("__call__", &tt::Flatten::forward, "input"_a)
      .def_readonly("start_dim", &tt::Flatten::start_dim)
      .def_readonly("end_dim", &tt::Flatten::end_dim);

  // --- functions ---
  m.def("flatten", &tt::flatten, "input"_a, "start_dim"_a = 0, "end_dim"_a = -1);
  m.def("relu", &tt::relu, "input"_a, release_gil());
  m.def("conv2d_naive", [](const tt::Tensor& input, const tt::Tensor& kernel, std::optional<float> bias) {
    py::gil_scoped_release release;
    return tt::conv2d_naive(input, kernel, bias);
  }, "input"_a, "kernel"_a, "bias"_a = py::none());
  m.def("conv2d", [](const tt::Tensor& input, const tt::Tensor& weight, std::optional<tt::Tensor> bias,
                     py::handle stride, py::handle padding, py::handle dilation, int64_t groups,
                     const std::string& algorithm) {
    const tt::Conv2dOptions o{to_size2(stride, "stride"), to_padding(padding), to_size2(dilation, "dilation"), groups};
    const tt::Conv2dAlgorithm a = tt::conv2d_algorithm_from_string(algorithm);
    py::gil_scoped_release release;
    return tt::conv2d_with(a, input, weight, bias.value_or(tt::Tensor()), o);
  }, "input"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1,
     "algorithm"_a = "auto", "conv2d like torch.nn.functional.conv2d; algorithm forces one ('auto': the heuristic).");
  m.def("linear", [](const tt::Tensor& input, const tt::Tensor& weight, std::optional<tt::Tensor> bias) {
    py::gil_scoped_release release;
    return tt::linear(input, weight, bias.value_or(tt::Tensor()));
  }, "input"_a, "weight"_a, "bias"_a = py::none());

  // --- autograd, more layers, optimizers, data, checkpoints ---
  py::class_<tt::NoGradGuard>(m, "_NoGradGuard").def(py::init<>());
  m.def("is_grad_enabled", &tt::is_grad_enabled);

  py::class_<tt::BatchNorm2d, tt::Module, std::shared_ptr<tt::BatchNorm2d>>(m, "BatchNorm2d")
      .def(py::init<int64_t, double, double, bool>(), "num_features"_a, "eps"_a = 1e-5, "momentum"_a = 0.1,
           "affine"_a = true)
      .def("forward", &tt::BatchNorm2d::forward, "input"_a, release_gil())
      .def("__call__", &tt::BatchNorm2d::forward, "input"_a, release_gil())
      .def_property_readonly("weight", [](const tt::BatchNorm2d& b) { return tensor_or_none(b.weight); })
      .def_property_readonly("bias", [](const tt::BatchNorm2d& b) { return tensor_or_none(b.bias); })
      .def_readonly("running_mean", &tt::BatchNorm2d::running_mean)
      .def_readonly("running_var", &tt::BatchNorm2d::running_var);
  py::class_<tt::Dropout, tt::Module, std::shared_ptr<tt::Dropout>>(m, "Dropout")
      .def(py::init<double>(), "p"_a = 0.5)
      .def("forward", &tt::Dropout::forward, "input"_a, release_gil())
      .def("__call__", &tt::Dropout::forward, "input"_a, release_gil())
      .def_readonly("p", &tt::Dropout::p);
  m.def("fashion_cnn", [] { return std::static_pointer_cast<tt::Sequential>(tt::make_fashion_cnn()); },
        "The default Fashion-MNIST CNN of `tinytorch train`.");

  py::class_<tt::Optimizer>(m, "Optimizer")
      .def("step", &tt::Optimizer::step, release_gil())
      .def("zero_grad", &tt::Optimizer::zero_grad)
      .def_property("lr", &tt::Optimizer::lr, &tt::Optimizer::set_lr)
      .def_property_readonly("steps", &tt::Optimizer::steps);
  py::class_<tt::SGD, tt::Optimizer>(m, "SGD")
      .def(py::init<std::vector<tt::Tensor>, double, double, double, bool>(), "params"_a, "lr"_a, "momentum"_a = 0.0,
           "weight_decay"_a = 0.0, "nesterov"_a = false);
  py::class_<tt::Adam, tt::Optimizer>(m, "Adam")
      .def(py::init([](std::vector<tt::Tensor> params, double lr, std::pair<double, double> betas, double eps,
                       double weight_decay) {
             return new tt::Adam(std::move(params), lr, betas.first, betas.second, eps, weight_decay, false);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8, "weight_decay"_a = 0.0);
  py::class_<tt::AdamW, tt::Adam>(m, "AdamW")
      .def(py::init([](std::vector<tt::Tensor> params, double lr, std::pair<double, double> betas, double eps,
                       double weight_decay) {
             return new tt::AdamW(std::move(params), lr, betas.first, betas.second, eps, weight_decay);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8, "weight_decay"_a = 1e-2);
  m.def("cosine_lr", &tt::cosine_lr, "base_lr"_a, "epoch"_a, "epochs"_a, "min_lr"_a = 0.0);
  m.def("step_lr", &tt::step_lr, "base_lr"_a, "epoch"_a, "step_size"_a, "gamma"_a);

  m.def("max_pool2d", [](const tt::Tensor& x, py::handle k, py::handle stride, py::handle padding, py::handle dilation,
                         bool ceil_mode) {
    const tt::MaxPool2dOptions o{to_size2(k, "kernel_size"), to_optional_size2(stride, "stride"),
                                 to_size2(padding, "padding"), to_size2(dilation, "dilation"), ceil_mode};
    py::gil_scoped_release release;
    return tt::max_pool2d(x, o);
  }, "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false);
  m.def("avg_pool2d", [](const tt::Tensor& x, py::handle k, py::handle stride, py::handle padding, bool ceil_mode,
                         bool count_include_pad) {
    const tt::AvgPool2dOptions o{to_size2(k, "kernel_size"), to_optional_size2(stride, "stride"),
                                 to_size2(padding, "padding"), ceil_mode, count_include_pad};
    py::gil_scoped_release release;
    return tt::avg_pool2d(x, o);
  }, "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
     "count_include_pad"_a = true);
  m.def("cross_entropy", [](const tt::Tensor& logits, std::vector<int64_t> targets) {
    py::gil_scoped_release release;
    return tt::cross_entropy(logits, targets);
  }, "logits"_a, "targets"_a, "Mean cross-entropy of logits (N, K) against class indices (N,).");
  m.def("log_softmax", &tt::log_softmax, "logits"_a);

  py::class_<tt::Dataset>(m, "Dataset")
      .def_readonly("images", &tt::Dataset::images)
      .def_readonly("labels", &tt::Dataset::labels)
      .def("__len__", &tt::Dataset::size);
  m.def("load_mnist_folder", &tt::load_mnist_folder, "folder"_a = "/usr/share/datasets/fashion-mnist",
        "train"_a = true, "limit"_a = 0, "mean"_a = 0.2860f, "std"_a = 0.3530f, release_gil());
  py::class_<tt::DataLoader>(m, "DataLoader")
      .def(py::init<const tt::Dataset&, int64_t, bool, uint64_t, int64_t, bool>(), "dataset"_a, "batch_size"_a,
           "shuffle"_a = true, "seed"_a = 0, "crop_padding"_a = 0, "flip"_a = false, py::keep_alive<1, 2>())
      .def("__len__", &tt::DataLoader::batches)
      .def("start_epoch", &tt::DataLoader::start_epoch, "epoch"_a)
      .def("batch", &tt::DataLoader::batch, "index"_a, release_gil());

  // The module's state comes as (name, Tensor) pairs gathered in Python (tinytorch/serialization.py),
  // so a Python subclass's attributes are saved and loaded like a C++ layer's.
  m.def("_save_checkpoint", [](const std::string& path, const tt::NamedTensors& state, const tt::Optimizer* opt,
                               std::map<std::string, std::string> metadata) {
    py::gil_scoped_release release;
    tt::save_checkpoint(path, state, opt, std::move(metadata));
  }, "path"_a, "state"_a, "optimizer"_a = nullptr, "metadata"_a = std::map<std::string, std::string>{});
  m.def("_load_checkpoint", [](const std::string& path, const tt::NamedTensors& state, tt::Optimizer* opt, bool strict) {
    py::gil_scoped_release release;
    return tt::load_checkpoint(path, state, opt, strict);
  }, "path"_a, "state"_a, "optimizer"_a = nullptr, "strict"_a = true);
  py::register_exception<tt::DataError>(m, "DataError", PyExc_ValueError);
}

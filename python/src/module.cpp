// tinytorch._tinytorch: the Python extension over the C++ core (pybind11). Each area is bound in
// its own file (bind_*.cpp); the shared conversions are in bindings.hpp.
#include "bindings.hpp"

namespace py = pybind11;
namespace tp = tinytorch::python;

PYBIND11_MODULE(_tinytorch, m) {
  m.doc() = "tinytorch's C++ core";
  m.attr("__version__") = tinytorch::kVersion;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tinytorch::DTypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const tinytorch::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const tinytorch::IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });
  // Order matters: a class is bound before the classes and functions that take it.
  tp::bind_runtime(m);
  tp::bind_tensor(m);
  tp::bind_tensor_math(m);
  tp::bind_interop(m);
  tp::bind_module_base(m);
  tp::bind_layers(m);
  tp::bind_pooling(m);
  tp::bind_functional(m);
  tp::bind_optim(m);
  tp::bind_data(m);
}

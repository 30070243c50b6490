// tinytorch._tinytorch: the Python extension over the C++ core (pybind11). Each area is bound in
// its own file (bind_*.cpp); the shared conversions are in bindings.hpp.
#include <string>

#include "bindings.hpp"

namespace py = pybind11;
namespace tp = tinytorch::python;

PYBIND11_MODULE(_tinytorch, m) {
  m.doc() = "tinytorch's C++ core";
  m.attr("__version__") = tinytorch::kVersion;
#if PYBIND11_VERSION_MAJOR == 2 && PYBIND11_VERSION_MINOR < 12
  // pybind11 before 2.12 reads NumPy's array descriptors with NumPy 1's layout: under NumPy 2 every
  // element size reads as 0 and the first array conversion dies of a division by zero. Refuse to
  // load instead (Debian 12's pybind11 2.10 builds this module for Debian's NumPy 1.24).
  {
    const std::string numpy = py::module_::import("numpy").attr("__version__").cast<std::string>();
    if (!numpy.empty() && numpy[0] >= '2' && numpy[1] == '.') {
      throw py::import_error(
          "tinytorch: this build of the module (pybind11 " PYBIND11_TOSTRING(
              PYBIND11_VERSION_MAJOR) "." PYBIND11_TOSTRING(PYBIND11_VERSION_MINOR) ") cannot read NumPy " +
          numpy +
          " arrays; install tinytorch with `pip install .` (which builds with pybind11 2.13) in this "
          "environment, or use NumPy < 2");
    }
  }
#endif

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
  tp::bind_onnx(m);
  tp::bind_distributed(m);
}

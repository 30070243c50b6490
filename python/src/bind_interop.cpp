// DLPack: zero-copy exchange with PyTorch, numpy and any other DLPack library, both ways.
//
// Out: Tensor.__dlpack__() hands a capsule holding a DLManagedTensor that points at the tensor's
// memory (same strides) and keeps its storage alive until the consumer calls the deleter.
// In: tinytorch.from_dlpack(x) (and Tensor(x)) takes x.__dlpack__(), wraps the memory of a CPU
// float32 / int64 / bool tensor without copying, and calls the producer's deleter when the last
// view of it dies. Other dtypes (float64, float16, int32, ...) are converted through numpy.
#include <dlpack/dlpack.h>

#include "bindings.hpp"

namespace tinytorch::python {
namespace {

constexpr uint8_t kDLBoolCode = 6;  // DLPack 0.8's kDLBool; the 0.6 header predates it

// What a capsule we export owns: the storage and the shape and strides arrays it points to.
struct Exported {
  DLManagedTensor managed{};
  std::shared_ptr<tt::Storage> storage;
  std::vector<int64_t> shape, strides;
};

DLDataType dl_dtype(tt::DType d) {
  switch (d) {
    case tt::DType::Bool:
      return {kDLBoolCode, 8, 1};
    case tt::DType::Int64:
      return {kDLInt, 64, 1};
    case tt::DType::Float32:
      break;
  }
  return {kDLFloat, 32, 1};
}

std::optional<tt::DType> from_dl_dtype(DLDataType d) {
  if (d.lanes != 1) return std::nullopt;
  if (d.code == kDLFloat && d.bits == 32) return tt::DType::Float32;
  if (d.code == kDLInt && d.bits == 64) return tt::DType::Int64;
  if (d.code == kDLBoolCode && d.bits == 8) return tt::DType::Bool;
  return std::nullopt;
}

py::capsule to_dlpack(const tt::Tensor& t) {
  auto* e = new Exported;
  e->storage = t.storage();
  e->shape = t.shape();
  e->strides = t.strides();
  DLTensor& d = e->managed.dl_tensor;
  d.data = t.raw_data();
  d.device = {kDLCPU, 0};
  d.ndim = static_cast<int32_t>(t.dim());
  d.dtype = dl_dtype(t.dtype());
  d.shape = e->shape.data();
  d.strides = e->strides.data();
  d.byte_offset = 0;
  e->managed.manager_ctx = e;
  e->managed.deleter = [](DLManagedTensor* self) { delete static_cast<Exported*>(self->manager_ctx); };
  // A capsule nobody consumed still owns the tensor: free it when the capsule dies.
  return py::capsule(&e->managed, "dltensor", [](PyObject* capsule) {
    if (PyCapsule_IsValid(capsule, "dltensor")) {
      auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
      managed->deleter(managed);
    }
  });
}

}  // namespace

tt::Tensor tensor_from_dlpack(py::handle obj) {
  py::object source = py::reinterpret_borrow<py::object>(obj);
  // PyTorch refuses to export a tensor that requires grad: take its detached alias.
  if (py::hasattr(source, "requires_grad") && py::hasattr(source, "detach") &&
      source.attr("requires_grad").cast<bool>()) {
    source = source.attr("detach")();
  }
  const py::tuple device = source.attr("__dlpack_device__")();
  if (device.size() < 1 || device[0].cast<int>() != kDLCPU) {
    throw py::value_error("from_dlpack: tinytorch takes CPU tensors only, got device " + std::string(py::repr(device)));
  }
  py::capsule capsule = source.attr("__dlpack__")();
  if (!PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
    throw py::value_error("from_dlpack: __dlpack__ returned a capsule that is not an unused 'dltensor'");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  const DLTensor& d = managed->dl_tensor;
  const auto dtype = from_dl_dtype(d.dtype);
  if (!dtype) {  // another dtype: numpy reads it and Tensor() converts (a copy)
    py::module_ np = py::module_::import("numpy");
    return tensor_from_object(np.attr("from_dlpack")(source));
  }
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");  // ours now: the capsule no longer frees it
  tt::Shape shape(d.shape, d.shape + d.ndim);
  tt::Shape strides = d.strides ? tt::Shape(d.strides, d.strides + d.ndim) : tt::contiguous_strides(shape);
  std::shared_ptr<void> owner(managed, [](void* p) {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;  // a Python producer's deleter drops a Python reference
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  return tt::Tensor::from_blob(static_cast<char*>(d.data) + d.byte_offset, std::move(shape), std::move(strides), *dtype,
                               std::move(owner));
}

void bind_interop(py::module_& m) {
  auto c = py::reinterpret_borrow<py::class_<tt::Tensor>>(m.attr("Tensor"));
  c.def(
       "__dlpack__", [](const tt::Tensor& t, py::kwargs) { return to_dlpack(t); },
       "A DLPack capsule over this tensor's memory (for torch.from_dlpack, numpy.from_dlpack).")
      .def("__dlpack_device__", [](const tt::Tensor&) { return py::make_tuple(static_cast<int>(kDLCPU), 0); });
  m.def("from_dlpack", &tensor_from_dlpack, "x"_a,
        "A tensor sharing the memory of x (a PyTorch tensor, a numpy array, anything with __dlpack__).");
}

}  // namespace tinytorch::python

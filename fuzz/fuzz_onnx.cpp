// libFuzzer target: ONNX import (protobuf parse, the ONNX checker, tinytorch's import) on
// arbitrary bytes, then one run of a model that imports on a small input. Any input must give a
// model or a DataError / ShapeError (bad input), never a crash, a hang or an out-of-bounds read.
#include <string>

#include "tinytorch/errors.hpp"
#include "tinytorch/onnx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tinytorch::onnx::Model model =
        tinytorch::onnx::load_from_bytes(std::string(reinterpret_cast<const char*>(data), size));
    if (model.inputs().size() == 1 && model.outputs().size() == 1) {
      tinytorch::Shape shape = model.inputs()[0].dims;
      int64_t n = 1;
      for (int64_t& d : shape) n *= (d = d < 0 ? 1 : d);
      if (!shape.empty() && n <= 4096) (void)model(tinytorch::Tensor(shape));
    }
  } catch (const tinytorch::ArgumentError&) {  // DataError, ShapeError, ...: refused with a message
  }
  return 0;
}

// ONNX import in a build without libonnx-dev (CMake's TINYTORCH_HAS_ONNX off): every entry point
// says so.
#include "tinytorch/errors.hpp"
#include "tinytorch/onnx.hpp"

namespace tinytorch::onnx {

namespace {
[[noreturn]] void unavailable() {
  throw ArgumentError(
      "onnx: this tinytorch was built without ONNX support; install libonnx-dev and libprotobuf-dev and rebuild");
}
}  // namespace

bool available() { return false; }
namespace detail {
std::shared_ptr<const Graph> load_graph(const std::string&) { unavailable(); }
}  // namespace detail
Model load(const std::string&, const LoadOptions&) { unavailable(); }
Model load_from_bytes(const std::string&, const LoadOptions&) { unavailable(); }
std::string export_to_bytes(const TracedFunction&, const std::vector<Tensor>&, const ExportOptions&) { unavailable(); }
void export_to_file(const TracedFunction&, const std::vector<Tensor>&, const std::string&, const ExportOptions&) {
  unavailable();
}
// NOLINTNEXTLINE(performance-unnecessary-value-param): the ONNX build's signature, which changes it
void export_module(Module&, const Shape&, const std::string&, ExportOptions) { unavailable(); }

}  // namespace tinytorch::onnx

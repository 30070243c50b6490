// Tracing (trace.hpp): one recorder per thread and the depth of traced ops under way.
#include "core/trace.hpp"

#include "tinytorch/errors.hpp"

namespace tinytorch::trace {
namespace {
thread_local Recorder* active_recorder = nullptr;
thread_local int depth = 0;
}  // namespace

RecorderGuard::RecorderGuard(Recorder* recorder) {
  if (active_recorder != nullptr) throw ArgumentError("trace: a trace is already running on this thread");
  active_recorder = recorder;
  depth = 0;
}

RecorderGuard::~RecorderGuard() { active_recorder = nullptr; }

Op::Op() {
  if (active_recorder == nullptr) return;
  counted_ = true;
  outermost_ = depth++ == 0;
}

Op::~Op() {
  if (counted_) --depth;
}

void Op::record(std::string op, std::vector<Tensor> inputs, Tensor output, std::vector<Attr> attrs) {
  if (!outermost_ || active_recorder == nullptr) return;
  active_recorder->record(Call{std::move(op), std::move(inputs), std::move(output), std::move(attrs)});
}

void Op::refuse(const std::string& op, const std::string& why) const {
  throw DataError("onnx export: the model calls " + op + ", which cannot be exported: " + why);
}

}  // namespace tinytorch::trace

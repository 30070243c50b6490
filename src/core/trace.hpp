// Tracing: while a Recorder is installed on a thread, each traced op reports the call it made
// (inputs, output, attributes) in ONNX's terms. ONNX export (src/onnx/export.cpp) installs one,
// runs the model once and turns the calls into a graph, as torch.jit.trace does. Ops call
//
//   trace::Op op;                                        // first thing in the op
//   ...compute out...
//   if (op.recording()) op.record("Relu", {input}, out);  // arguments built only when tracing
//
// Only the outermost traced op of a call records: flatten's inner reshape, softmax's inner exp
// are not separate nodes. Without a recorder an Op costs a thread-local read.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch::trace {

using AttrValue = std::variant<int64_t, double, std::vector<int64_t>>;

struct Attr {
  std::string name;
  AttrValue value;
};

// One op call: the ONNX operator it is, its inputs (undefined for an absent optional input) and
// output, and its attributes.
struct Call {
  std::string op;
  std::vector<Tensor> inputs;
  Tensor output;
  std::vector<Attr> attrs;
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  virtual void record(Call call) = 0;
};

// Installs `recorder` on this thread for the guard's lifetime (no nesting: one trace at a time).
class RecorderGuard {
 public:
  explicit RecorderGuard(Recorder* recorder);
  ~RecorderGuard();
  RecorderGuard(const RecorderGuard&) = delete;
  RecorderGuard& operator=(const RecorderGuard&) = delete;
};

class Op {
 public:
  Op();
  ~Op();
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  bool recording() const { return outermost_; }
  void record(std::string op, std::vector<Tensor> inputs, Tensor output, std::vector<Attr> attrs = {});
  // An op (or a mode of one) that cannot be exported: a DataError naming it and why.
  [[noreturn]] void refuse(const std::string& op, const std::string& why) const;

 private:
  bool counted_ = false;
  bool outermost_ = false;
};

}  // namespace tinytorch::trace

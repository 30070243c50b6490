// ONNX import (onnx.hpp): the protobuf parsed by the ONNX project's generated code, checked by its
// checker, then turned into detail::Graph: initializers and Constant nodes become tensors, every
// name one value id, every node its operator's function; names nothing produces, cycles and
// unsupported operators are DataErrors that say where.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <unordered_map>

#include "onnx/graph.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/file_io.hpp"
#include "tinytorch/onnx.hpp"

namespace tinytorch::onnx {
namespace {

using detail::Attribute;
using detail::Graph;
using detail::Node;

constexpr int64_t kMaxElements = int64_t{1} << 32;  // 16 GiB of floats: past that a dim is absurd

std::string data_type_name(int type) {
  return ::onnx::TensorProto_DataType_IsValid(type)
             ? ::onnx::TensorProto_DataType_Name(static_cast<::onnx::TensorProto_DataType>(type))
             : "an unknown type (" + std::to_string(type) + ")";
}

Shape tensor_dims(const ::onnx::TensorProto& t, const std::string& what, int64_t* numel) {
  Shape dims;
  *numel = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && *numel > kMaxElements / d)) {
      throw DataError("onnx: " + what + " has dims that are negative or too large (dim " + std::to_string(d) + ")");
    }
    *numel *= d;
    dims.push_back(d);
  }
  return dims;
}

// The typed field or raw_data (little-endian, as the format fixes) of n elements of T, as a tensor
// of U. The data's size is checked against the dims before anything is allocated: a file may
// declare dims of billions of elements and hold none.
template <class U, class T, class Field>
Tensor read_elements(const Shape& dims, DType dtype, int64_t n, const ::onnx::TensorProto& t, const Field& field,
                     const std::string& what) {
  const bool raw = t.has_raw_data();
  if (raw && static_cast<int64_t>(t.raw_data().size()) != n * static_cast<int64_t>(sizeof(T))) {
    throw DataError("onnx: " + what + " holds " + std::to_string(t.raw_data().size()) +
                    " bytes of raw data, expected " + std::to_string(n * static_cast<int64_t>(sizeof(T))) +
                    " for its dims");
  }
  if (!raw && field.size() != n) {
    throw DataError("onnx: " + what + " holds " + std::to_string(field.size()) + " values, expected " +
                    std::to_string(n) + " for its dims");
  }
  Tensor tensor = Tensor::empty(dims, dtype);
  U* out = tensor.ptr_to_write<U>();
  for (int64_t i = 0; i < n; ++i) {
    if (raw) {
      T v;
      std::memcpy(&v, t.raw_data().data() + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
      out[i] = static_cast<U>(v);
    } else {
      out[i] = static_cast<U>(static_cast<T>(field.Get(static_cast<int>(i))));
    }
  }
  return tensor;
}

Tensor to_tensor(const ::onnx::TensorProto& t, const std::string& what);

// An initializer's tensor. FLOAT raw data, the form exporters write, is taken over instead of
// copied: the protobuf's string becomes the tensor's storage, so a loaded model holds its weights
// once, not twice while the file's message lives (VGG-11's 507 MiB of weights peaked at 1.5 GiB).
Tensor take_tensor(::onnx::TensorProto& t, const std::string& what) {
  if constexpr (std::endian::native == std::endian::little) {  // the format's byte order
    if (t.data_type() == ::onnx::TensorProto_DataType_FLOAT && t.has_raw_data() &&
        t.data_location() != ::onnx::TensorProto_DataLocation_EXTERNAL) {
      int64_t n = 0;
      const Shape dims = tensor_dims(t, what, &n);
      if (n > 0 && static_cast<int64_t>(t.raw_data().size()) == n * static_cast<int64_t>(sizeof(float))) {
        auto bytes = std::make_shared<std::string>();
        bytes->swap(*t.mutable_raw_data());
        auto* data = reinterpret_cast<float*>(bytes->data());  // operator new's alignment, enough for floats
        return Tensor::from_blob(data, dims, std::move(bytes));
      }
    }
  }
  return to_tensor(t, what);  // the other forms, and every size mismatch with its message
}

Tensor to_tensor(const ::onnx::TensorProto& t, const std::string& what) {
  if (t.data_location() == ::onnx::TensorProto_DataLocation_EXTERNAL) {
    throw DataError("onnx: " + what +
                    " keeps its data in an external file; tinytorch reads weights stored inside "
                    "the model (save with save_as_external_data=False)");
  }
  int64_t n = 0;
  const Shape dims = tensor_dims(t, what, &n);
  switch (t.data_type()) {
    case ::onnx::TensorProto_DataType_FLOAT:
      return read_elements<float, float>(dims, DType::Float32, n, t, t.float_data(), what);
    case ::onnx::TensorProto_DataType_DOUBLE:
      return read_elements<float, double>(dims, DType::Float32, n, t, t.double_data(), what);
    case ::onnx::TensorProto_DataType_INT64:
      return read_elements<int64_t, int64_t>(dims, DType::Int64, n, t, t.int64_data(), what);
    case ::onnx::TensorProto_DataType_INT32:
      return read_elements<int64_t, int32_t>(dims, DType::Int64, n, t, t.int32_data(), what);
    case ::onnx::TensorProto_DataType_BOOL:
      return read_elements<bool, uint8_t>(dims, DType::Bool, n, t, t.int32_data(), what);
    default:
      throw DataError("onnx: " + what + " has data type " + data_type_name(t.data_type()) +
                      "; tinytorch reads FLOAT, DOUBLE, INT64, INT32 and BOOL tensors");
  }
}

Attribute to_attribute(const ::onnx::AttributeProto& a, const std::string& what) {
  Attribute out;
  switch (a.type()) {
    case ::onnx::AttributeProto_AttributeType_INT:
      out.kind = Attribute::Kind::Int, out.i = a.i();
      break;
    case ::onnx::AttributeProto_AttributeType_FLOAT:
      out.kind = Attribute::Kind::Float, out.f = a.f();
      break;
    case ::onnx::AttributeProto_AttributeType_STRING:
      out.kind = Attribute::Kind::String, out.s = a.s();
      break;
    case ::onnx::AttributeProto_AttributeType_TENSOR:
      out.kind = Attribute::Kind::Tensor, out.t = to_tensor(a.t(), what + " attribute '" + a.name() + "'");
      break;
    case ::onnx::AttributeProto_AttributeType_INTS:
      out.kind = Attribute::Kind::Ints, out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case ::onnx::AttributeProto_AttributeType_FLOATS:
      out.kind = Attribute::Kind::Floats, out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case ::onnx::AttributeProto_AttributeType_STRINGS:
      out.kind = Attribute::Kind::Strings, out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    default:
      out.kind = Attribute::Kind::Other;  // graphs, sparse tensors: no supported operator reads them
      break;
  }
  return out;
}

ValueInfo to_value_info(const ::onnx::ValueInfoProto& v) {
  ValueInfo info{v.name(), {}};
  if (v.type().has_tensor_type() && v.type().tensor_type().has_shape()) {
    for (const auto& d : v.type().tensor_type().shape().dim())
      info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  return info;
}

int64_t default_opset(const ::onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  throw DataError("onnx: the model imports no opset of the default domain (ai.onnx)");
}

class Importer {
 public:
  explicit Importer(int64_t opset) { g_.opset = opset; }

  // Takes the initializers' data out of `m`.
  Graph take(::onnx::ModelProto& m) {
    g_.producer = m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
    const ::onnx::GraphProto& graph = m.graph();
    for (auto& init : *m.mutable_graph()->mutable_initializer()) {
      const int id = define(init.name(), "initializer");
      g_.values[static_cast<size_t>(id)].constant = take_tensor(init, "initializer '" + init.name() + "'");
    }
    for (const auto& in : graph.input()) {
      if (ids_.count(in.name())) continue;  // an initializer listed as an input too (older exports)
      g_.inputs.push_back(define(in.name(), "graph input"));
      g_.input_info.push_back(to_value_info(in));
    }
    for (const auto& node : graph.node()) add_node(node);
    for (const auto& out : graph.output()) {
      g_.outputs.push_back(use(out.name(), "graph output '" + out.name() + "'"));
      g_.output_info.push_back(to_value_info(out));
    }
    if (g_.outputs.empty()) throw DataError("onnx: the graph has no outputs");
    return std::move(g_);
  }

 private:
  int define(const std::string& name, const std::string& what) {
    if (name.empty()) return -1;
    if (ids_.count(name)) throw DataError("onnx: " + what + " '" + name + "' is defined twice");
    const int id = static_cast<int>(g_.values.size());
    g_.values.push_back({name, Tensor()});
    ids_[name] = id;
    return id;
  }

  int use(const std::string& name, const std::string& what) const {
    const auto it = ids_.find(name);
    if (it == ids_.end()) {
      throw DataError("onnx: " + what + " reads '" + name +
                      "', which no initializer, graph input or earlier node defines (a dangling name, or nodes out "
                      "of topological order)");
    }
    return it->second;
  }

  void add_node(const ::onnx::NodeProto& p) {
    Node n;
    n.op = p.op_type();
    n.name = p.name();
    n.opset = g_.opset;
    if (!p.domain().empty() && p.domain() != "ai.onnx") {
      throw DataError("onnx: " + n.where() + " is in domain '" + p.domain() +
                      "'; tinytorch runs the default domain's operators only");
    }
    n.run = detail::find_op(n.op);
    if (!n.run) {
      throw DataError("onnx: unsupported operator " + n.where() + "; tinytorch runs " +
                      std::to_string(detail::op_names().size()) + " operators (tinytorch.onnx.supported_operators())");
    }
    for (const auto& a : p.attribute()) n.attrs[a.name()] = to_attribute(a, n.where());
    for (const auto& in : p.input()) n.inputs.push_back(in.empty() ? -1 : use(in, n.where()));
    for (const auto& out : p.output()) n.outputs.push_back(define(out, "output of " + n.where()));
    if (n.op == "Constant") {  // folded now: its value is a constant of the graph
      if (!n.has("value") || n.attrs.at("value").kind != Attribute::Kind::Tensor || n.outputs.size() != 1) {
        throw DataError("onnx: " + n.where() + " has no tensor 'value' (tinytorch reads that form of Constant)");
      }
      g_.values[static_cast<size_t>(n.outputs[0])].constant = n.attrs.at("value").t;
      return;
    }
    g_.nodes.push_back(std::move(n));
  }

  Graph g_;
  std::unordered_map<std::string, int> ids_;
};

}  // namespace

bool available() { return true; }

namespace {

Model load_parsed(::onnx::ModelProto& proto, const LoadOptions& options, const std::string& path = {}) {
  if (!proto.has_graph()) throw DataError("onnx: the model has no graph");
  // The checker (Debian's ONNX 1.12) knows IR versions up to 8 and refuses newer files whole:
  // those of PyTorch 2's exporter or of a newer onnx package's helpers. They are checked as IR 8;
  // what a newer IR may hold that tinytorch does not run (float8 or 4-bit tensors, say) is refused
  // by the importer, by name.
  if (proto.ir_version() > ::onnx::IR_VERSION) proto.set_ir_version(::onnx::IR_VERSION);
  // That checker also wants a shape on every tensor type it meets, where later ONNX allows none
  // (an output of unknown shape: onnx.helper.make_tensor_value_info(name, type, None), which ONNX
  // Runtime runs): such types get an empty shape while the checker looks, and lose it after.
  std::vector<::onnx::TypeProto_Tensor*> shapeless;
  auto note = [&](google::protobuf::RepeatedPtrField<::onnx::ValueInfoProto>* infos) {
    for (::onnx::ValueInfoProto& v : *infos) {
      if (v.has_type() && v.type().has_tensor_type() && !v.type().tensor_type().has_shape()) {
        shapeless.push_back(v.mutable_type()->mutable_tensor_type());
        shapeless.back()->mutable_shape();
      }
    }
  };
  note(proto.mutable_graph()->mutable_input());
  note(proto.mutable_graph()->mutable_output());
  note(proto.mutable_graph()->mutable_value_info());
  try {
    ::onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw DataError(std::string("onnx: the model fails the ONNX checker: ") + e.what());
  }
  for (::onnx::TypeProto_Tensor* t : shapeless) t->clear_shape();
  Graph graph = Importer(default_opset(proto)).take(proto);
  if (options.optimize) optimize(graph);
  plan_lifetimes(graph);
  if (!path.empty() && options.optimize && !options.keep_weights) release_weights_from(graph, path);
  return Model(std::make_shared<const Graph>(std::move(graph)));
}

}  // namespace

Model load_from_bytes(const std::string& bytes, const LoadOptions& options) {
  ::onnx::ModelProto proto;
  if (bytes.empty() || !proto.ParseFromString(bytes)) {
    throw DataError("onnx: not an ONNX model (the " + std::to_string(bytes.size()) +
                    " bytes do not parse as a ModelProto protobuf)");
  }
  return load_parsed(proto, options);
}

Model load(const std::string& path, const LoadOptions& options) {
  check_path(path, "onnx.load path");
  // Parsed from the descriptor, not from a copy of the file in memory.
  uint64_t size = 0;
  const int fd = open_regular_file(path, uint64_t{1} << 31, &size);  // protobuf's own 2 GiB limit
  ::onnx::ModelProto proto;
  const bool parsed = size > 0 && proto.ParseFromFileDescriptor(fd);
  ::close(fd);
  if (!parsed) {
    throw DataError("onnx: '" + path + "' is not an ONNX model (its " + std::to_string(size) +
                    " bytes do not parse as a ModelProto protobuf)");
  }
  return load_parsed(proto, options, path);
}

namespace detail {

std::shared_ptr<const Graph> load_graph(const std::string& path) {
  return onnx::load(path, LoadOptions{.optimize = true, .keep_weights = true}).graph_;
}

}  // namespace detail

}  // namespace tinytorch::onnx

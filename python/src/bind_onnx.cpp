// tinytorch.onnx: an imported ONNX model as a callable, and the loader (include/tinytorch/onnx.hpp).
// The Python module tinytorch/onnx.py re-exports these under their public names.
#include "bindings.hpp"
#include "tinytorch/file_io.hpp"
#include "tinytorch/onnx.hpp"

namespace tinytorch::python {

namespace {

py::object outputs_object(const std::vector<tt::Tensor>& outs) {
  if (outs.size() == 1) return py::cast(outs[0]);
  py::tuple t(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) t[i] = py::cast(outs[i]);
  return t;
}

std::map<std::string, tt::Tensor> feed_of(const py::dict& feed) {
  std::map<std::string, tt::Tensor> inputs;
  for (const auto& [key, value] : feed) inputs[py::cast<std::string>(key)] = tensor_from_object(value);
  return inputs;
}

py::list value_infos(const std::vector<tt::onnx::ValueInfo>& infos) {
  py::list out;
  for (const auto& v : infos) out.append(py::make_tuple(v.name, shape_tuple(v.dims)));
  return out;
}

}  // namespace

void bind_onnx(py::module_& m) {
  using tt::onnx::Model;
  py::class_<Model, std::shared_ptr<Model>>(m, "OnnxModel", R"doc(
An ONNX model imported by tinytorch.onnx.load(path): model(x) runs it on a Tensor or numpy array
and returns a Tensor (a tuple for several outputs); model.run({name: array}) or
model.run(output_names, {name: array}) returns the outputs as a list, as ONNX Runtime's
session.run does.)doc")
      .def(
          "__call__",
          [](const Model& model, py::handle x) {
            const tt::Tensor input = tensor_from_object(x);
            std::vector<tt::Tensor> outs;
            {
              py::gil_scoped_release release;
              outs = model.forward(input);
            }
            return outputs_object(outs);
          },
          "input"_a, "The outputs for one input (a Tensor or numpy array): a Tensor, or a tuple of them.")
      .def(
          "run",
          [](const Model& model, py::object names, py::object feed) {
            if (feed.is_none() && py::isinstance<py::dict>(names)) std::swap(names, feed);  // run({name: x})
            if (!py::isinstance<py::dict>(feed)) throw py::type_error("run: expected a dict {input name: array}");
            const auto inputs = feed_of(feed.cast<py::dict>());
            std::map<std::string, tt::Tensor> outs;
            {
              py::gil_scoped_release release;
              outs = model.run(inputs);
            }
            py::list result;
            if (names.is_none()) {
              for (const auto& o : model.outputs()) result.append(outs.at(o.name));
              return result;
            }
            for (const auto& name : names) {
              const auto key = py::cast<std::string>(name);
              const auto it = outs.find(key);
              if (it == outs.end()) throw py::value_error("run: the model has no output named '" + key + "'");
              result.append(it->second);
            }
            return result;
          },
          "output_names"_a = py::none(), "input_feed"_a = py::none(),
          "run({name: array}) or run(output_names, {name: array}): the outputs as a list, as onnxruntime's "
          "session.run.")
      .def_property_readonly(
          "inputs", [](const Model& m) { return value_infos(m.inputs()); },
          "[(name, dims)] of the graph inputs; -1 marks a free dim such as the batch")
      .def_property_readonly(
          "outputs", [](const Model& m) { return value_infos(m.outputs()); }, "[(name, dims)] of the graph outputs")
      .def_property_readonly("opset", &Model::opset, "the default domain's opset the file imports")
      .def_property_readonly("producer", &Model::producer, "producer_name and version, as the file states them")
      .def_property_readonly("op_types", &Model::op_types, "each node's operator, in execution order")
      .def_property_readonly("released_weight_bytes", &Model::released_weight_bytes,
                             "bytes of Conv weights given back to the system once prepared (load's keep_weights)")
      .def(
          "inspect",
          [](const Model& model, py::handle x, int timed_runs) {
            const tt::Tensor input = tensor_from_object(x);
            tt::onnx::Report r;
            {
              py::gil_scoped_release release;
              r = model.inspect(input, timed_runs);
            }
            py::list nodes;
            for (const auto& n : r.nodes) {
              py::list shapes;
              for (const auto& s : n.output_shapes) shapes.append(shape_tuple(s));
              nodes.append(py::dict("op"_a = n.op, "name"_a = n.name, "fused"_a = n.fused, "output_shapes"_a = shapes,
                                    "flops"_a = n.flops, "params"_a = n.params, "algorithm"_a = n.algorithm,
                                    "output_bytes"_a = n.output_bytes, "ms"_a = n.milliseconds));
            }
            py::dict memory("intermediate_bytes"_a = r.memory.intermediate_bytes,
                            "peak_live_bytes"_a = r.memory.peak_live_bytes, "arena_bytes"_a = r.memory.arena_bytes,
                            "runtime_block_bytes"_a = r.memory.runtime_block_bytes,
                            "runtime_tensors"_a = r.memory.runtime_tensors);
            return py::dict("input"_a = shape_tuple(r.input), "nodes"_a = nodes, "memory"_a = memory,
                            "flops"_a = r.flops, "params"_a = r.params, "timed_runs"_a = r.timed_runs);
          },
          "input"_a, "timed_runs"_a = 0,
          "One run on `input`, node by node after the graph passes: {'nodes': [{op, name, fused, output_shapes, "
          "flops, params, algorithm, output_bytes, ms}], 'memory': {intermediate_bytes, peak_live_bytes, "
          "arena_bytes, runtime_block_bytes, runtime_tensors}, 'flops', 'params', ...}; with timed_runs > 0 each "
          "node's median time ('ms') over that many "
          "more runs (tinytorch inspect on the command line).")
      .def("describe_nodes", &Model::describe_nodes,
           "each node as the runtime runs it, with what the graph passes fused into it")
      .def("__repr__", [](const Model& m) {
        return "OnnxModel(" + std::to_string(m.num_nodes()) + " nodes, opset " + std::to_string(m.opset()) + ", from " +
               (m.producer().empty() ? std::string("an unnamed producer") : m.producer()) + ")";
      });
  m.def(
      "onnx_load",
      [](const std::string& path, bool optimize, bool keep_weights) {
        return std::make_shared<Model>(
            tt::onnx::load(path, tt::onnx::LoadOptions{.optimize = optimize, .keep_weights = keep_weights}));
      },
      "path"_a, "optimize"_a = true, "keep_weights"_a = false, py::call_guard<py::gil_scoped_release>(),
      "Parses, checks and imports an ONNX model file (tinytorch.onnx.load).");
  m.def(
      "onnx_load_from_bytes",
      [](const py::bytes& data, bool optimize) {
        return std::make_shared<Model>(
            tt::onnx::load_from_bytes(std::string(data), tt::onnx::LoadOptions{.optimize = optimize}));
      },
      "data"_a, "optimize"_a = true, "The same from the file's bytes (tinytorch.onnx.load_from_bytes).");
  m.def(
      "onnx_export",
      [](const py::function& function, const std::vector<tt::Tensor>& examples, const std::string& path,
         const std::vector<std::string>& input_names, const std::vector<std::string>& output_names, bool dynamic_batch,
         bool verify, const std::vector<std::pair<std::string, tt::Tensor>>& named_tensors) {
        if (!path.empty()) tt::check_path(path, "onnx export path");
        tt::onnx::ExportOptions options;
        options.input_names = input_names;
        options.output_names = output_names;
        options.dynamic_batch = dynamic_batch;
        options.verify = verify;
        options.named_tensors = named_tensors;
        // The traced function is Python: it runs with the GIL held, as this call holds it.
        auto traced = [&function](const std::vector<tt::Tensor>& inputs) {
          py::object out = function(py::cast(inputs));
          return py::cast<std::vector<tt::Tensor>>(out);
        };
        std::string bytes = tt::onnx::export_to_bytes(traced, examples, options);
        if (path.empty()) return py::object(py::bytes(bytes));
        tt::write_file_atomic(path, bytes);
        return py::object(py::none());
      },
      "function"_a, "examples"_a, "path"_a, "input_names"_a, "output_names"_a, "dynamic_batch"_a, "verify"_a,
      "named_tensors"_a,
      "Traces function(list of Tensors) -> list of Tensors on the examples into an ONNX model (opset 13): "
      "written atomically to path, or returned as bytes when path is empty (tinytorch.onnx.export).");
  m.def("onnx_available", &tt::onnx::available, "Whether this build imports ONNX (libonnx-dev at build time).");
  m.def("onnx_supported_operators", &tt::onnx::supported_operators, "The ONNX operators tinytorch runs, sorted.");
}

}  // namespace tinytorch::python

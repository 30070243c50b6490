"""Run ONNX models on tinytorch's kernels: a model exported by torch.onnx.export (or any exporter),
parsed with the ONNX project's own definitions and checker.

    import tinytorch.onnx
    model = tinytorch.onnx.load("resnet18.onnx")
    y = model(x)                                  # x: Tensor or numpy array; y: Tensor
    [y] = model.run({"input": x})                 # by name, as onnxruntime's session.run
    [y] = model.run(["output"], {"input": x})

An operator tinytorch does not run is a tinytorch.DataError naming it, its node and the opset
(supported_operators() lists the ones it does).

A model written here goes the other way, for ONNX Runtime, OpenVINO or any other runtime:

    tinytorch.onnx.export(model, "net.onnx", (1, 1, 28, 28))
    fast = tinytorch.compile(model)               # the same graph, run by tinytorch's ONNX runtime
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _tinytorch

OnnxModel = _tinytorch.OnnxModel

__all__ = ["CompiledModel", "OnnxModel", "available", "compile", "export", "export_to_bytes", "load",
           "load_from_bytes", "supported_operators"]


def available() -> bool:
    """Whether this build imports ONNX (it needs libonnx-dev when it is built)."""
    return _tinytorch.onnx_available()


def load(path: str | os.PathLike, optimize: bool = True, keep_weights: bool = False) -> OnnxModel:
    """Parses, checks and imports the model at `path` (weights inside the file).

    optimize: the graph passes (BatchNormalization folded into the Conv before it, a residual Add
    and an activation fused into the Conv's output store, Identity and inference Dropout
    removed); False runs the graph as written. model.describe_nodes() shows the result.
    keep_weights: False (the default) gives a Conv weight's memory back to the system once its
    prepared form is made, reading it back from the file should a later run need it (other input
    shapes); True keeps every weight in memory."""
    return _tinytorch.onnx_load(os.fspath(path), optimize, keep_weights)


def load_from_bytes(data: bytes, optimize: bool = True) -> OnnxModel:
    """The same from the file's bytes (model.SerializeToString())."""
    return _tinytorch.onnx_load_from_bytes(data, optimize)


def supported_operators() -> List[str]:
    """The ONNX operators tinytorch runs, sorted."""
    return _tinytorch.onnx_supported_operators()


def _as_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _examples(input_shape, example_input) -> List[Any]:
    if (input_shape is None) == (example_input is None):
        raise ValueError("export: give input_shape or example_input (one of them)")
    if example_input is not None:
        return [x if isinstance(x, _tinytorch.Tensor) else _tinytorch.Tensor(np.asarray(x, dtype=np.float32))
                for x in _as_list(example_input)]
    shapes = input_shape if input_shape and isinstance(input_shape[0], (tuple, list)) else [input_shape]
    rng = np.random.default_rng(0)
    examples = []
    for shape in shapes:
        dims = tuple(int(d) for d in shape)
        if any(d < 1 for d in dims):
            raise ValueError(f"export: input_shape {tuple(shape)} has a dim below 1")
        examples.append(_tinytorch.Tensor(rng.standard_normal(dims).astype(np.float32)))
    return examples


def _trace(model, path: str, input_shape, example_input, input_names, output_names, dynamic_batch: bool,
           verify: bool):
    """export/export_to_bytes: the model in eval mode while it is traced, its mode restored after."""
    if not callable(model):
        raise TypeError(f"export: expected a Module or a callable, got {type(model).__name__}")
    examples = _examples(input_shape, example_input)
    named = []
    if hasattr(model, "state_dict"):
        named = list(model.state_dict(keep_vars=True).items())
    training = getattr(model, "training", None)
    if training is not None and hasattr(model, "eval"):
        model.eval()
    try:
        def run(inputs):
            outs = _as_list(model(*inputs))
            for out in outs:
                if not isinstance(out, _tinytorch.Tensor):
                    raise TypeError(f"export: the model returned a {type(out).__name__}; expected a Tensor or a "
                                    "tuple of Tensors")
            return outs
        return _tinytorch.onnx_export(run, examples, path, list(input_names or []), list(output_names or []),
                                      dynamic_batch, verify, named)
    finally:
        if training:
            model.train(True)


def export(model: Callable, path: Union[str, os.PathLike], input_shape: Optional[Sequence] = None, *,
           example_input: Any = None, input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None, dynamic_batch: bool = True, verify: bool = True) -> None:
    """Writes `model` (a Module or any callable on Tensors) as an ONNX model (opset 13) at `path`.

    The model runs once, in eval mode (its mode is restored after), on a random input of
    `input_shape` (a list of shapes for several inputs) or on `example_input`, and every op it
    calls becomes a node, as torch.onnx.export traces. Parameters and buffers become initializers
    under their state_dict names. dynamic_batch leaves dim 0 free ("batch"). verify imports the
    file back and compares it with the model on a second random input of another batch size.

    A step the trace cannot see (numpy arithmetic on a Tensor's values, an in-place update, a
    batch size written into a view) fails that check with a DataError saying so; an op with no
    ONNX form (batch_norm or dropout in training mode) fails at once. The file is written
    atomically, only when everything passed."""
    path = os.fspath(path)
    if not path:
        raise ValueError("export: the path is empty")
    _trace(model, path, input_shape, example_input, input_names, output_names, dynamic_batch, verify)


def export_to_bytes(model: Callable, input_shape: Optional[Sequence] = None, *, example_input: Any = None,
                    input_names: Optional[Sequence[str]] = None, output_names: Optional[Sequence[str]] = None,
                    dynamic_batch: bool = True, verify: bool = True) -> bytes:
    """export()'s model as the bytes of the file (onnx.load_from_string, onnxruntime's
    InferenceSession both take them)."""
    return _trace(model, "", input_shape, example_input, input_names, output_names, dynamic_batch, verify)


class CompiledModel:
    """A model run as a graph by tinytorch's ONNX runtime (tinytorch.compile): BatchNormalization
    folded into the convolution, activations and residual adds fused into its output, weights
    prepared once. The graph is traced on the first call (and again for a new image size; the
    batch size stays free) with the weights the model has then: compile again after training.
    Inference only: no gradients flow through it."""

    def __init__(self, model: Callable, optimize: bool = True):
        self._model = model
        self._optimize = optimize
        self._graphs: dict = {}

    def graph_for(self, *inputs) -> OnnxModel:
        """The imported graph that runs inputs of these shapes (traced on first use)."""
        tensors = [x if isinstance(x, _tinytorch.Tensor) else _tinytorch.Tensor(np.asarray(x, dtype=np.float32))
                   for x in inputs]
        key = tuple(tuple(t.shape[1:]) for t in tensors)
        graph = self._graphs.get(key)
        if graph is None:
            data = _trace(self._model, "", None, tuple(tensors), None, None, True, True)
            graph = self._graphs[key] = load_from_bytes(data, self._optimize)
        return graph

    def __call__(self, *inputs):
        graph = self.graph_for(*inputs)
        if len(inputs) == 1:
            return graph(inputs[0])
        names = [name for name, _ in graph.inputs]
        outs = graph.run(dict(zip(names, inputs)))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __repr__(self) -> str:
        return f"CompiledModel({type(self._model).__name__}, {len(self._graphs)} traced shape(s))"


def compile(model: Callable, optimize: bool = True) -> CompiledModel:  # noqa: A001 (torch.compile's name)
    """`model` run by tinytorch's graph runtime, as torch.compile(model) is by PyTorch's: the
    result is called like the model and gives the same outputs within float rounding, faster in
    inference. See CompiledModel."""
    return CompiledModel(model, optimize)

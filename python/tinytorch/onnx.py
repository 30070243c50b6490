"""Run ONNX models on tinytorch's kernels: a model exported by torch.onnx.export (or any exporter),
parsed with the ONNX project's own definitions and checker.

    import tinytorch.onnx
    model = tinytorch.onnx.load("resnet18.onnx")
    y = model(x)                                  # x: Tensor or numpy array; y: Tensor
    [y] = model.run({"input": x})                 # by name, as onnxruntime's session.run
    [y] = model.run(["output"], {"input": x})

An operator tinytorch does not run is a tinytorch.DataError naming it, its node and the opset
(supported_operators() lists the ones it does).
"""
from __future__ import annotations

import os
from typing import List

from . import _tinytorch

OnnxModel = _tinytorch.OnnxModel

__all__ = ["OnnxModel", "available", "load", "load_from_bytes", "supported_operators"]


def available() -> bool:
    """Whether this build imports ONNX (it needs libonnx-dev when it is built)."""
    return _tinytorch.onnx_available()


def load(path: str | os.PathLike, optimize: bool = True) -> OnnxModel:
    """Parses, checks and imports the model at `path` (weights inside the file).

    optimize: the graph passes (BatchNormalization folded into the Conv before it, a residual Add
    and an activation fused into the Conv's output store, Identity and inference Dropout
    removed); False runs the graph as written. model.describe_nodes() shows the result."""
    return _tinytorch.onnx_load(os.fspath(path), optimize)


def load_from_bytes(data: bytes, optimize: bool = True) -> OnnxModel:
    """The same from the file's bytes (model.SerializeToString())."""
    return _tinytorch.onnx_load_from_bytes(data, optimize)


def supported_operators() -> List[str]:
    """The ONNX operators tinytorch runs, sorted."""
    return _tinytorch.onnx_supported_operators()

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


def load(path: str | os.PathLike) -> OnnxModel:
    """Parses, checks and imports the model at `path` (weights inside the file)."""
    return _tinytorch.onnx_load(os.fspath(path))


def load_from_bytes(data: bytes) -> OnnxModel:
    """The same from the file's bytes (model.SerializeToString())."""
    return _tinytorch.onnx_load_from_bytes(data)


def supported_operators() -> List[str]:
    """The ONNX operators tinytorch runs, sorted."""
    return _tinytorch.onnx_supported_operators()

"""Tensor (float32, int64 or bool, sharing memory with numpy) and Parameter; see tinytorch._tensor
for indexing, reductions, pickling and numpy interop."""
from tinytorch._tensor import Parameter, Tensor

__all__ = ["Parameter", "Tensor"]

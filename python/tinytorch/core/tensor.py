"""Tensor: an N-dimensional float32 array over the C++ core, sharing memory with numpy."""
from tinytorch._tinytorch import Tensor

__all__ = ["Tensor"]

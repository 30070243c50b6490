"""tinytorch: a small, fast CNN library. Python over the C++ core.

    from tinytorch.core.tensor import Tensor
    from tinytorch.core.layers import Module, Linear, Sequential, ReLU
    from tinytorch.core.spatial import conv2d_naive, Conv2D, MaxPool2D, AvgPool2D, flatten, Flatten
"""
from tinytorch._tinytorch import __version__, get_num_threads, manual_seed, set_num_threads
from tinytorch import backends  # noqa: F401
from tinytorch.core import layers, spatial, tensor  # noqa: F401

__all__ = ["__version__", "backends", "get_num_threads", "manual_seed", "set_num_threads", "layers", "spatial",
           "tensor"]

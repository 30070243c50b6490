"""tinytorch: a small, fast CNN library. Python over the C++ core.

    from tinytorch.core.tensor import Tensor
    from tinytorch.core.layers import Module, Linear, Sequential, ReLU
    from tinytorch.core.spatial import conv2d_naive, Conv2D, MaxPool2D, AvgPool2D, flatten, Flatten

Training: tinytorch.optim (SGD, Adam, AdamW), tinytorch.functional (cross_entropy, ...),
tinytorch.data (Fashion-MNIST, DataLoader), tinytorch.no_grad, save_checkpoint / load_checkpoint.
"""
from tinytorch._tinytorch import __version__, get_num_threads, manual_seed, set_num_threads
from tinytorch import _tensor  # noqa: F401  (completes Tensor before anything uses it)
from tinytorch import autograd, backends, data, functional, models, optim  # noqa: F401
from tinytorch.autograd import no_grad
from tinytorch.core import layers, spatial, tensor  # noqa: F401
from tinytorch.serialization import load_checkpoint, save_checkpoint

__all__ = ["__version__", "autograd", "backends", "data", "functional", "get_num_threads", "layers", "load_checkpoint",
           "manual_seed", "models", "no_grad", "optim", "save_checkpoint", "set_num_threads", "spatial", "tensor"]

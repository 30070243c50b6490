"""tinytorch: a small, fast CNN library. Python over the C++ core.

The seed's names and PyTorch's (and upstream TinyTorch's) point at the same objects:

    from tinytorch import Tensor, SGD, Adam, CrossEntropyLoss
    from tinytorch.core.spatial import conv2d_naive, Conv2D, MaxPool2D, flatten   # the seed's
    import tinytorch.nn as nn, tinytorch.nn.functional as F, tinytorch.optim        # PyTorch's

Tensors (float32, int64, bool) share memory with numpy and, through DLPack, with PyTorch.
"""
from tinytorch import _tensor  # noqa: F401  (completes Tensor before anything uses it)
from tinytorch._tinytorch import (__version__, abs, cat, clamp, exp, from_dlpack, get_num_threads,  # noqa: A004
                                  is_grad_enabled, log, matmul, maximum, minimum, set_num_threads, sigmoid, sqrt,
                                  stack, tanh, where)
from tinytorch._tensor import Parameter, Tensor, bool_, float32, int64
from tinytorch._creation import (arange, from_numpy, full, full_like, linspace, manual_seed, ones, ones_like, rand,
                                 randn, tensor, zeros, zeros_like)
from tinytorch import _module  # noqa: F401  (completes Module)
from tinytorch import autograd, backends, data, distributed, functional, models, nn, onnx, optim  # noqa: F401
from tinytorch.autograd import enable_autograd, enable_grad, inference_mode, no_grad
from tinytorch._compat import cuda, device
from tinytorch._compat import namespace as _functions
from tinytorch.core import activations, layers, losses, optimizers, spatial, training  # noqa: F401
from tinytorch.core.training import CosineSchedule, Trainer, clip_grad_norm
from tinytorch.data import Compose, DataLoader, Dataset, RandomCrop, RandomHorizontalFlip, TensorDataset
from tinytorch.nn import (GELU, AvgPool2D, AvgPool2d, BatchNorm2d, BinaryCrossEntropyLoss, Conv2D, Conv2d,
                          CrossEntropyLoss, Dropout, Flatten, Linear, MaxPool2D, MaxPool2d, Module, MSELoss, ReLU,
                          Sequential, Sigmoid, Softmax, Tanh)
from tinytorch.core.layers import Layer
from tinytorch.core.spatial import conv2d_naive
from tinytorch._tinytorch import flatten
from tinytorch.onnx import compile  # noqa: A004  (torch.compile's name)
from tinytorch.optim import SGD, Adam, AdamW
from tinytorch.serialization import load, load_checkpoint, save, save_checkpoint
from tinytorch import utils  # noqa: F401

globals().update(_functions)  # tinytorch.sum, .max, .argmax, ... as functions (torch.max(x, 1))
float = float32  # noqa: A001  torch.float is float32; tinytorch's dtypes are numpy's dtype objects
long = int64
bool = bool_  # noqa: A001

__all__ = ["Adam", "AdamW", "AvgPool2D", "AvgPool2d", "BatchNorm2d", "BinaryCrossEntropyLoss", "Compose", "Conv2D",
           "Conv2d", "CosineSchedule", "CrossEntropyLoss", "DataLoader", "Dataset", "Dropout", "Flatten", "GELU",
           "Layer", "Linear", "MSELoss", "MaxPool2D", "MaxPool2d", "Module", "Parameter", "RandomCrop",
           "RandomHorizontalFlip", "ReLU", "SGD", "Sequential", "Sigmoid", "Softmax", "Tanh", "Tensor",
           "TensorDataset", "Trainer", "__version__", "abs", "allclose", "amax", "amin", "arange", "argmax", "argmin",
           "autograd", "backends", "bool_", "cat", "chunk", "clamp", "clip_grad_norm", "clone", "compile", "conv2d_naive", "cuda", "data",
           "detach", "device", "distributed", "enable_autograd", "enable_grad", "equal", "erf", "exp", "flatten", "float32",
           "from_dlpack", "from_numpy", "full", "full_like", "functional", "get_num_threads", "inference_mode",
           "int64", "is_grad_enabled", "linspace", "load", "load_checkpoint", "log", "log_softmax", "manual_seed",
           "matmul", "max", "maximum", "mean", "min", "minimum", "models", "neg", "nn", "no_grad", "numel", "ones",
           "ones_like", "optim", "permute", "rand", "randn", "relu", "reshape", "save", "save_checkpoint",
           "set_num_threads", "sigmoid", "softmax", "split", "sqrt", "squeeze", "stack", "sum", "tanh", "tensor", "transpose",
           "unsqueeze", "where", "zeros", "zeros_like"]

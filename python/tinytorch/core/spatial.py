"""The spatial module: convolution, pooling and flatten over the C++ core.

The seed's names (conv2d_naive, Conv2D, MaxPool2D(pool_size=), flatten) and PyTorch's / upstream
TinyTorch's (Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d) are the same classes. conv2d_naive takes
and returns numpy arrays, as in TinyTorch's spatial_dev.py; the layers take Tensors of shape
(C, H, W) or (N, C, H, W).
"""
from tinytorch._tensor import Tensor
from tinytorch._tinytorch import conv2d_naive as _conv2d_naive
from tinytorch._tinytorch import flatten
from tinytorch.nn import AvgPool2D, AvgPool2d, BatchNorm2d, Conv2D, Conv2d, Flatten, MaxPool2D, MaxPool2d
from tinytorch.nn.functional import avg_pool2d, conv2d, max_pool2d


def conv2d_naive(input_array, kernel, bias=None):
    """Valid 2D cross-correlation of every channel of ``input_array`` ((H, W) or (C, H, W)) with
    ``kernel`` ((KH, KW)), plus an optional scalar ``bias``: plain loops in C++.

    Returns a float32 numpy array of shape (C, H - KH + 1, W - KW + 1).
    """
    return _conv2d_naive(Tensor(input_array), Tensor(kernel), None if bias is None else float(bias)).data


__all__ = ["AvgPool2D", "AvgPool2d", "BatchNorm2d", "Conv2D", "Conv2d", "Flatten", "MaxPool2D", "MaxPool2d",
           "avg_pool2d", "conv2d", "conv2d_naive", "flatten", "max_pool2d"]

"""The spatial module: convolution, pooling and flatten over the C++ core.

conv2d_naive takes and returns numpy arrays, as in TinyTorch's spatial_dev.py; the layers take
Tensors of shape (C, H, W) or (N, C, H, W).
"""
from tinytorch._tinytorch import AvgPool2D, Conv2D, Flatten, MaxPool2D, flatten
from tinytorch._tinytorch import conv2d_naive as _conv2d_naive
from tinytorch._tinytorch import Tensor


def conv2d_naive(input_array, kernel, bias=None):
    """Valid 2D cross-correlation of every channel of ``input_array`` ((H, W) or (C, H, W)) with
    ``kernel`` ((KH, KW)), plus an optional scalar ``bias``: plain loops in C++.

    Returns a float32 numpy array of shape (C, H - KH + 1, W - KW + 1).
    """
    return _conv2d_naive(Tensor(input_array), Tensor(kernel), None if bias is None else float(bias)).data


__all__ = ["AvgPool2D", "Conv2D", "Flatten", "MaxPool2D", "conv2d_naive", "flatten"]

"""Choosing the convolution algorithm, like torch.backends.

    import tinytorch.backends as tb
    tb.conv2d_algorithms()             # ['reference', 'im2col', 'gemm1x1', 'packed', 'winograd', ...]
    tb.set_conv2d_algorithm("direct")  # used wherever it supports the shape; 'auto' restores the heuristic
    tb.select_conv2d_algorithm((8, 64, 56, 56), (64, 64, 3, 3), padding=1)   # what auto would pick

The environment variable TINYTORCH_CONV_ALGO sets the starting choice.
"""
from tinytorch._tinytorch import (conv2d_algorithms, get_conv2d_algorithm, peak_isa, select_conv2d_algorithm,
                                  set_conv2d_algorithm)

__all__ = ["conv2d_algorithms", "get_conv2d_algorithm", "peak_isa", "select_conv2d_algorithm", "set_conv2d_algorithm"]

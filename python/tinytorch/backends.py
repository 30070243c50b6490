"""Choosing the convolution algorithm, like torch.backends.

    import tinytorch.backends as tb
    tb.conv2d_algorithms()             # ['reference', 'im2col', 'gemm1x1', 'packed', 'winograd', ...]
    tb.set_conv2d_algorithm("direct")  # used wherever it supports the shape; 'auto' restores the heuristic
    tb.select_conv2d_algorithm((8, 64, 56, 56), (64, 64, 3, 3), padding=1)   # what auto would pick
    tb.set_conv2d_autotune(True)       # like torch.backends.cudnn.benchmark: the first call of each
                                       # shape times the algorithms, later calls run the fastest

The environment variables TINYTORCH_CONV_ALGO and TINYTORCH_CONV_AUTOTUNE=1 set the starting choice.
"""
from tinytorch._tinytorch import (clear_conv2d_autotune_cache, conv2d_algorithms, conv2d_autotune_cache_size,
                                  get_conv2d_algorithm, get_conv2d_autotune, peak_isa, select_conv2d_algorithm,
                                  set_conv2d_algorithm, set_conv2d_autotune)

__all__ = ["clear_conv2d_autotune_cache", "conv2d_algorithms", "conv2d_autotune_cache_size", "get_conv2d_algorithm",
           "get_conv2d_autotune", "peak_isa", "select_conv2d_algorithm", "set_conv2d_algorithm",
           "set_conv2d_autotune"]

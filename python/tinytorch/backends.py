"""Choosing the convolution algorithm, like torch.backends.

    import tinytorch.backends as tb
    tb.conv2d_algorithms()             # ['reference', 'im2col', 'gemm1x1', 'packed', 'winograd', ...]
    tb.set_conv2d_algorithm("direct")  # used wherever it supports the shape; 'auto' restores the heuristic
    tb.select_conv2d_algorithm((8, 64, 56, 56), (64, 64, 3, 3), padding=1)   # what auto would pick
    tb.set_conv2d_autotune(True)       # like torch.backends.cudnn.benchmark: the first call of each
                                       # shape times the algorithms, later calls run the fastest
    tb.set_weight_cache_bytes(64 << 20)  # prepared weights kept between calls (Winograd's transformed,
                                         # the direct kernel's packed), re-made whenever a weight changes;
                                         # 0 turns the cache off (default 256 MiB)

    tb.peak_isa(), tb.measure_fma_peak_gflops(2)  # the kernels' ISA; this machine's FP32 FMA peak

The environment variables TINYTORCH_CONV_ALGO, TINYTORCH_CONV_AUTOTUNE=1 and TINYTORCH_WEIGHT_CACHE_MB
set the starting choices.
"""
from tinytorch._tinytorch import (clear_conv2d_autotune_cache, clear_weight_cache, conv2d_algorithms,
                                  conv2d_autotune_cache_size, get_conv2d_algorithm, get_conv2d_autotune,
                                  get_weight_cache_bytes, measure_fma_peak_gflops, peak_isa,
                                  select_conv2d_algorithm, set_conv2d_algorithm,
                                  set_conv2d_autotune, set_weight_cache_bytes, weight_cache_held_bytes)

__all__ = ["clear_conv2d_autotune_cache", "clear_weight_cache", "conv2d_algorithms", "conv2d_autotune_cache_size",
           "get_conv2d_algorithm", "get_conv2d_autotune", "get_weight_cache_bytes", "measure_fma_peak_gflops", "peak_isa",
           "select_conv2d_algorithm", "set_conv2d_algorithm", "set_conv2d_autotune", "set_weight_cache_bytes",
           "weight_cache_held_bytes"]

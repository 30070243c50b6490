#!/usr/bin/python3
"""Per-call time from Python of a tiny layer: Conv2D(3 -> 16, 3x3) on one 3x28x28 image, tinytorch
against torch.nn.Conv2d with the same weights, interleaved in one process, 1 and 2 threads.

usage: /usr/bin/python3 bench/python_call_overhead.py
"""
import os
import sys
import time

if "OMP_WAIT_POLICY" not in os.environ:  # see compare_torch.py: PyTorch is steadier with it
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np
import torch

import tinytorch
from tinytorch.core.spatial import Conv2D
from tinytorch.core.tensor import Tensor


def per_call_us(fn, seconds=0.3):
    for _ in range(2000):  # PyTorch needs hundreds of calls to settle on a small shape
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e6


def main():
    x = np.random.default_rng(0).standard_normal((3, 28, 28), dtype=np.float32)
    ours = Conv2D(3, 16, 3)
    peer = torch.nn.Conv2d(3, 16, 3).eval()
    with torch.no_grad():
        peer.weight.copy_(torch.from_numpy(ours.weight.data))
        peer.bias.copy_(torch.from_numpy(ours.bias.data))
    xs, xt = Tensor(x), torch.from_numpy(x)
    assert np.allclose(ours(xs).data, peer(xt).detach().numpy(), atol=1e-4)
    print("Conv2D(3 -> 16, 3x3) on one 3x28x28 image, per call from Python (median of 5 rounds)")
    for threads in (1, 2):
        tinytorch.set_num_threads(threads)
        torch.set_num_threads(threads)
        a, b = [], []
        for _ in range(5):  # both without recording a graph (parameters require grad in both)
            with tinytorch.no_grad():
                a.append(per_call_us(lambda: ours(xs)))
            with torch.no_grad():
                b.append(per_call_us(lambda: peer(xt)))
        a, b = float(np.median(a)), float(np.median(b))
        print(f"  {threads} thread(s): tinytorch {a:6.1f} us   PyTorch {b:6.1f} us   ({b / a:.1f}x)")


if __name__ == "__main__":
    main()

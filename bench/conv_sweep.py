#!/usr/bin/env python3
"""Conv2D forward on a rule-generated sweep of shapes, tinytorch against PyTorch, interleaved in one
process on the same tensors and thread count: where do we lose?

The shapes are drawn (seeded) from families, not picked: standard KxK convolutions (K 1, 3, 5, 7;
stride 1 or 2), depthwise (groups = C), grouped, dilated, and pointwise expand/project layers,
over channel counts 3..512, image sides 7..112 and batches 1 and 8, keeping each call under a
FLOP budget. Every shape is first checked for the same answer (relative error), then timed: a
few interleaved rounds, the best time of each library per round, the median over rounds.

usage: python3 bench/conv_sweep.py [--count 300] [--threads 2] [--seed 0] [--out bench/results]
       (any python3 that has tinytorch and torch: Debian's with python3-torch 1.13, or a venv
       with torch==2.13.0)

Writes conv_sweep_<torch version>.json (every shape, both times, the ratio) and a PNG of the
speed-up against the FLOPs by family, and prints each family's geometric-mean speed-up and its
worst shapes.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import tinytorch

CHANNELS = [3, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
SIDES = [7, 14, 28, 56, 112]


def draw_shapes(count, seed, max_gflop):
    """count shapes from the families, each under max_gflop; deterministic in seed."""
    rng = np.random.default_rng(seed)
    families = ["standard", "depthwise", "grouped", "dilated", "pointwise"]
    shapes, attempts = [], 0
    while len(shapes) < count and attempts < count * 200:
        attempts += 1
        family = families[len(shapes) % len(families)]
        n = int(rng.choice([1, 8]))
        h = int(rng.choice(SIDES))
        w = h if rng.random() < 0.8 else int(rng.choice(SIDES))
        c = int(rng.choice(CHANNELS))
        k = int(rng.choice(CHANNELS))
        kernel, stride, dilation, groups = 3, 1, 1, 1
        if family == "standard":
            kernel, stride = int(rng.choice([1, 3, 5, 7])), int(rng.choice([1, 2]))
        elif family == "depthwise":
            kernel, stride = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
            c = k = int(rng.choice([c for c in CHANNELS if c >= 8]))
            groups = c
        elif family == "grouped":
            groups = int(rng.choice([2, 4, 8, 16, 32]))
            c = max(groups, c // groups * groups)
            k = max(groups, k // groups * groups)
            kernel, stride = int(rng.choice([1, 3])), int(rng.choice([1, 2]))
        elif family == "dilated":
            dilation, stride = int(rng.choice([2, 3])), 1
        else:  # pointwise expand or project
            kernel = 1
        pad = dilation * (kernel - 1) // 2
        oh = (h + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
        ow = (w + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
        if oh < 1 or ow < 1:
            continue
        flop = 2.0 * n * k * oh * ow * (c // groups) * kernel * kernel
        if flop > max_gflop * 1e9 or flop < 1e5:
            continue
        s = dict(family=family, N=n, C=c, H=h, W=w, K=k, kernel=kernel, stride=stride, pad=pad,
                 dilation=dilation, groups=groups, flops=flop)
        s["name"] = (f"{family}_n{n}_c{c}_k{k}_{h}x{w}_r{kernel}_s{stride}_d{dilation}_g{groups}")
        if s["name"] not in {x["name"] for x in shapes}:
            shapes.append(s)
    return shapes


def best_time(fn, seconds):
    """The best per-call time over calls filling about `seconds` (at least 3 calls)."""
    best, start, calls = float("inf"), time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return best


def measure(s, rounds, seconds):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((s["N"], s["C"], s["H"], s["W"]), dtype=np.float32)
    w = rng.standard_normal((s["K"], s["C"] // s["groups"], s["kernel"], s["kernel"]), dtype=np.float32) * 0.1
    b = rng.standard_normal(s["K"], dtype=np.float32)
    xo, wo, bo = tinytorch.Tensor(x), tinytorch.Tensor(w), tinytorch.Tensor(b)
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    args = dict(stride=s["stride"], padding=s["pad"], dilation=s["dilation"], groups=s["groups"])

    def ours():
        with tinytorch.no_grad():
            return tinytorch.nn.functional.conv2d(xo, wo, bo, **args)

    def theirs():
        with torch.no_grad():
            return F.conv2d(xt, wt, bt, **args)

    want = theirs().numpy()
    error = float(np.abs(ours().numpy() - want).max() / (np.abs(want).max() + 1e-30))
    for _ in range(2):  # warm-up: caches, prepared weights, PyTorch's first-call paths
        ours(), theirs()
    ours_times, torch_times = [], []
    for _ in range(rounds):
        ours_times.append(best_time(ours, seconds))
        torch_times.append(best_time(theirs, seconds))
    o, t = float(np.median(ours_times)), float(np.median(torch_times))
    algorithm = tinytorch.backends.select_conv2d_algorithm([s["N"], s["C"], s["H"], s["W"]], list(w.shape),
                                                           stride=s["stride"], padding=s["pad"],
                                                           dilation=s["dilation"], groups=s["groups"])
    return dict(s, ours_ms=o * 1e3, torch_ms=t * 1e3, speedup=t / o, max_rel_error=error, algorithm=algorithm)


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def plot(results, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    for family in sorted({r["family"] for r in results}):
        rs = [r for r in results if r["family"] == family]
        ax.scatter([r["flops"] / 1e6 for r in rs], [r["speedup"] for r in rs], label=family, s=14)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MFLOP per call")
    ax.set_ylabel("speed-up (PyTorch time / tinytorch time)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.05, help="per library per round")
    ap.add_argument("--max-gflop", type=float, default=2.0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    tinytorch.set_num_threads(args.threads)
    shapes = draw_shapes(args.count, args.seed, args.max_gflop)
    results, start = [], time.perf_counter()
    for i, s in enumerate(shapes):
        results.append(measure(s, args.rounds, args.seconds))
        done = i + 1
        rate = done / (time.perf_counter() - start)
        sys.stderr.write(f"\r[{done}/{len(shapes)}] {rate:.2f} shapes/s, ETA {(len(shapes) - done) / rate:.0f}s "
                         f"{s['name'][:60]:<60}")
    sys.stderr.write("\n")
    bad = [r for r in results if r["max_rel_error"] > 1e-3]
    print(f"Conv2D forward, {len(results)} shapes, {args.threads} thread(s), torch {torch.__version__}, "
          f"ISA {tinytorch.backends.peak_isa()}, {platform.processor() or platform.machine()}")
    for family in sorted({r["family"] for r in results}):
        rs = sorted((r for r in results if r["family"] == family), key=lambda r: r["speedup"])
        slower = sum(r["speedup"] < 1.0 for r in rs)
        print(f"  {family:<10} {len(rs):4d} shapes  geomean speed-up {geomean([r['speedup'] for r in rs]):5.2f}x  "
              f"slower on {slower:3d}  worst {rs[0]['speedup']:.2f}x ({rs[0]['name']}, {rs[0]['algorithm']})")
    print(f"  all        {len(results):4d} shapes  geomean speed-up "
          f"{geomean([r['speedup'] for r in results]):5.2f}x  slower on {sum(r['speedup'] < 1 for r in results)}")
    if bad:
        print(f"  {len(bad)} shapes differ from PyTorch by more than 1e-3 (relative): {[r['name'] for r in bad]}")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"conv_sweep_torch{torch.__version__.split('+')[0]}")
    with open(stem + ".json.tmp", "w") as f:
        json.dump(dict(threads=args.threads, torch=torch.__version__, isa=tinytorch.backends.peak_isa(),
                       seed=args.seed, results=results), f, indent=1)
    os.replace(stem + ".json.tmp", stem + ".json")
    if plot(results, stem + ".png", f"Conv2D forward vs PyTorch {torch.__version__.split('+')[0]}, "
                                    f"{args.threads} threads, {len(results)} shapes"):
        print(f"wrote {stem}.json and {stem}.png")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Forced side by side: the convolution algorithms a selection rule chooses between, on seeded random
layers of the kind the rule is about (the studies behind docs/PERFORMANCE.md's rules of 2026-12-04).

    python bench/rule_study.py few-pixel-dense --seed 2031 --count 160
    python bench/rule_study.py few-pixel-dense --seed 4201 --count 60 --strides 3
    python bench/rule_study.py few-pixel-large-weights --seed 2101 --count 100
    python bench/rule_study.py pointwise-small-images --seed 2041 --count 90 --pixels 2,31
    python bench/rule_study.py grouped --seed 2032 --count 100
    python bench/rule_study.py few-outputs --seed 2051 --count 80
    python bench/rule_study.py grouped-few-outputs --seed 2071 --count 80
    python bench/rule_study.py depthwise-multiplier --seed 2401 --count 80
    python bench/rule_study.py depthwise-multiplier-1x1 --seed 3502 --count 60
    python bench/rule_study.py winograd-few-tiles --seed 2501 --count 100
    python bench/rule_study.py few-channel-strided --seed 2601 --count 80

Each layer runs every algorithm of its family in turn (eager, weights without grad, the fastest of a
few calls, three rounds interleaved), on --threads threads. Prints each layer, then per algorithm
the geometric mean of its time over the fastest one's, and the first two algorithms' ratio;
--json writes the layers. TINYTORCH_ISA=avx2 runs the AVX2 kernels on an AVX-512 machine. Needs the
tinytorch module (PYTHONPATH=build/python after a build, or the installed wheel) and numpy.
"""
import argparse
import json
import math
import os
import time

import numpy as np

import tinytorch
import tinytorch.backends as tb

FAMILIES = {
    # Dense layers the heuristic gives ocblock or blocked (few pixels, several taps).
    "few-pixel-dense": ("ocblock", "blocked", "direct"),
    # The same of hundreds of channels (weights of 0.1-40 MB), their pixels, all images', few enough
    # (256) that the direct kernel reads the weight's rows in eager calls.
    "few-pixel-large-weights": ("ocblock", "blocked", "direct"),
    # Pointwise layers (1x1, stride 1, unpadded) of few pixels per image.
    "pointwise-small-images": ("direct", "batched", "blocked"),
    # Grouped layers (not depthwise), 3x3 to 7x7 windows.
    "grouped": ("ocblock", "direct"),
    # Dense layers of few output channels (1-16) and a window, on enough pixels that the few-pixel
    # rules leave them (32 an image, 512 in all).
    "few-outputs": ("ocblock", "direct", "packed"),
    # Grouped layers (not depthwise) of 1-4 output channels per group and a window of several taps,
    # which the grouped rule leaves to the direct kernel (its 6-row panels then mostly empty).
    "grouped-few-outputs": ("ocblock", "direct", "packed"),
    # Depthwise layers (groups = input channels) of channel multiplier 2-128 and a window of several
    # taps: the depthwise kernel against the GEMM forms.
    "depthwise-multiplier": ("depthwise", "direct", "packed", "im2col", "ocblock"),
    # The same with a 1x1 window: each output channel a multiple of its input channel (a broadcast
    # multiply, bound by the output's writes).
    "depthwise-multiplier-1x1": ("depthwise", "direct", "packed"),
    # 3x3 stride-1 layers of 16-1024 channels whose Winograd F(4x4, 3x3) tiles, all images', are
    # fewer than four of the micro-kernel's panels: Winograd against the kernels the other rules pick.
    "winograd-few-tiles": ("winograd", "blocked", "direct", "ocblock"),
    # First layers: 1-8 input channels, stride 2-4, a window at least as wide as the stride (stems,
    # patchify layers): the direct kernel against the blocked one, which interleaves a plain input.
    "few-channel-strided": ("direct", "blocked", "packed"),
    # Dense layers of 8-512 channels and a window (3x3, 5x5, 7x7; stride 1 or 2) on images past the
    # few-pixel rules (16 of the micro-kernel's tiles in all; most 3x3 stride-1 ones go to Winograd):
    # the direct kernel against the blocked one (a register tile of output-channel blocks, the
    # transposes).
    "dense-windows": ("blocked", "direct"),
}


def draw(family, rng, pixels, batches, strides=(1, 1, 2), in_channels=None):
    """One random layer of the family: (N, C, H, W, OC, K, stride, padding, groups), or None to draw again."""
    if family in ("few-pixel-dense", "few-pixel-large-weights"):
        large = family == "few-pixel-large-weights"
        n = int(rng.choice([1, 1, 1, 2, 4] if large else [1, 1, 2, 4, 8]))
        lo, hi = (96, 1100) if large else (8, 768)
        c, oc = (int(math.exp(rng.uniform(math.log(lo), math.log(hi)))) for _ in range(2))
        if in_channels:
            c = int(rng.integers(in_channels[0], in_channels[1] + 1))
        k, s = int(rng.choice([2, 3, 3, 3, 5, 7])), int(rng.choice(strides))
        h = int(rng.integers(2, 29)) if s < 3 else int(rng.integers(6, 85))
        w = h if rng.random() < 0.8 else int(rng.integers(2, 29))
        p = int(rng.choice([0, k // 2, k // 2]))
        if h + 2 * p < k or w + 2 * p < k:
            return None
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        # The heuristic's two few-pixel rules (src/ops/conv2d_select.cpp), which pick ocblock or
        # blocked, or direct for an eager call's large weight: fewer pixels per image than a tile
        # (32 with AVX-512, 16 with AVX2), or fewer than 16 tiles in all with a 3x3 window or larger.
        nr = 32 if tb.peak_isa() == "avx512" else 16
        few = 1 < oh * ow < nr or (n * oh * ow < 16 * nr and k * k >= 9)
        if large:  # the large-weights study: at most 256 output pixels (the direct kernel's one block)
            few = few and n * oh * ow <= 256
        return (n, c, h, w, oc, k, s, p, 1) if few else None
    if family == "pointwise-small-images":
        n = int(rng.choice(batches))
        h, w = int(rng.integers(1, 32)), int(rng.integers(1, 32))
        if not pixels[0] <= h * w <= pixels[1]:
            return None
        c, oc = (int(math.exp(rng.uniform(math.log(16), math.log(2048)))) for _ in range(2))
        return (n, c, h, w, oc, 1, 1, 0, 1)
    if family == "few-outputs":
        n = int(rng.choice([1, 1, 2, 4, 8]))
        c = int(math.exp(rng.uniform(0, math.log(512))))
        oc = int(math.exp(rng.uniform(0, math.log(17))))
        k, s = int(rng.integers(2, 8)), int(rng.integers(1, 4))
        h, w = (int(math.exp(rng.uniform(math.log(4), math.log(160)))) for _ in range(2))
        p = int(rng.integers(0, k))
        if h + 2 * p < k or w + 2 * p < k or n * c * h * w > 4e6:
            return None
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        # Past the few-pixel rules' reach: 32 pixels an image, 512 in all.
        return (n, c, h, w, oc, k, s, p, 1) if oh * ow >= 32 and n * oh * ow >= 512 else None
    if family == "grouped-few-outputs":
        groups = int(rng.choice([2, 3, 4, 8, 16, 32, 64]))
        per_in = int(math.exp(rng.uniform(0, math.log(160))))
        per_out = int(rng.integers(1, 5))
        n = int(rng.choice([1, 1, 2, 4, 8]))
        kh, kw = (int(rng.integers(2, 8)) for _ in range(2))
        k = max(kh, kw) if rng.random() < 0.7 else kh
        s = int(rng.choice([1, 1, 2, 3]))
        h, w = (int(math.exp(rng.uniform(math.log(4), math.log(160)))) for _ in range(2))
        p = int(rng.integers(0, k))
        if per_in == per_out == 1 or h + 2 * p < k or w + 2 * p < k or n * groups * per_in * h * w > 4e6:
            return None
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        return (n, groups * per_in, h, w, groups * per_out, k, s, p, groups) if oh * ow >= 2 else None
    if family in ("depthwise-multiplier", "depthwise-multiplier-1x1"):
        c = int(math.exp(rng.uniform(math.log(2), math.log(384))))
        m = int(math.exp(rng.uniform(math.log(2), math.log(129))))
        n = int(rng.choice([1, 1, 2, 8]))
        k, s = int(rng.choice([2, 3, 3, 5, 7])), int(rng.choice([1, 1, 2]))
        if family == "depthwise-multiplier-1x1":
            k = 1
        h, w = (int(math.exp(rng.uniform(math.log(4), math.log(160)))) for _ in range(2))
        p = int(rng.choice([0, k // 2]))
        if c * m > 2048 or h + 2 * p < k or w + 2 * p < k or n * c * h * w > 4e6:
            return None
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if n * c * m * oh * ow * k * k > 4e8:  # at most 0.8 GFLOP: a layer takes at most a few ms
            return None
        return (n, c, h, w, c * m, k, s, p, c)
    if family == "few-channel-strided":
        n = int(rng.choice([1, 1, 2, 8]))
        c = int(rng.integers(1, 9))
        st = int(rng.integers(2, 5))
        k = int(rng.integers(st, 12))
        oc = int(math.exp(rng.uniform(math.log(8), math.log(193))))
        h = int(math.exp(rng.uniform(math.log(32), math.log(257))))
        w = h if rng.random() < 0.8 else int(math.exp(rng.uniform(math.log(32), math.log(257))))
        p = int(rng.choice([0, k // 2]))
        oh, ow = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
        if oh < 1 or ow < 1 or n * c * oc * oh * ow * k * k * 2 > 2e9:
            return None
        return (n, c, h, w, oc, k, st, p, 1)
    if family == "dense-windows":
        n = int(rng.choice([1, 1, 2, 8]))
        c, oc = (int(math.exp(rng.uniform(math.log(8), math.log(513)))) for _ in range(2))
        k = int(rng.choice([3, 3, 5, 5, 7]))
        s = int(rng.choice([1, 1, 2]))
        h = int(math.exp(rng.uniform(math.log(14), math.log(113))))
        p = k // 2
        oh = (h + 2 * p - k) // s + 1
        nr = 32 if tb.peak_isa() == "avx512" else 16
        if n * oh * oh < 16 * nr or n * c * oc * oh * oh * k * k * 2 > 2e9:
            return None
        return (n, c, h, h, oc, k, s, p, 1)
    if family == "winograd-few-tiles":
        n = int(rng.choice([1, 1, 1, 2, 4]))
        c, oc = (int(math.exp(rng.uniform(math.log(16), math.log(1024)))) for _ in range(2))
        h = int(rng.integers(4, 41))
        w = h if rng.random() < 0.8 else int(rng.integers(4, 41))
        p = 1 if rng.random() < 0.7 else 0
        oh, ow = h + 2 * p - 2, w + 2 * p - 2
        tiles = n * ((oh + 3) // 4) * ((ow + 3) // 4)
        if tiles < 2 or tiles >= 4 * 32 or n * c * oc * oh * ow * 18 > 1.6e9:
            return None
        return (n, c, h, w, oc, 3, 1, p, 1)
    groups = int(rng.choice([2, 4, 8, 16, 32, 64]))
    per_in = int(rng.integers(4, 97))
    per_out = int(rng.choice([per_in, per_in, int(rng.integers(4, 97))]))
    n, k, s = int(rng.choice([1, 2, 8])), int(rng.choice([3, 3, 5, 7])), int(rng.choice([1, 1, 2]))
    h = int(rng.integers(5, 57)) * s
    if groups * per_in > 2048 or n * groups * per_in * h * h > 2e7:
        return None
    return (n, groups * per_in, h, h, groups * per_out, k, s, k // 2, groups)


def fastest(call, seconds):
    call()
    best, start = math.inf, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pixels", default="2,31", help="pointwise-small-images: pixels per image, lo,hi")
    ap.add_argument("--batches", default="1,2,4,8,16,32", help="pointwise-small-images: the batch sizes drawn from")
    ap.add_argument("--strides", default="1,1,2", help="few-pixel-dense: the strides drawn from (repeats weigh)")
    ap.add_argument("--in-channels", default=None, help="few-pixel-dense: input channels lo,hi (uniform) instead of 8-767")
    ap.add_argument("--seconds", type=float, default=0.06, help="per algorithm per round")
    ap.add_argument("--json", default=None, help="write the layers and their times here")
    args = ap.parse_args()
    tinytorch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    algorithms = FAMILIES[args.family]
    pixels = tuple(int(v) for v in args.pixels.split(","))
    rows = []
    print(f"{args.family}: {', '.join(algorithms)} forced; kernels {tb.peak_isa()}, {args.threads} threads")
    while len(rows) < args.count:
        layer = draw(args.family, rng, pixels, [int(v) for v in args.batches.split(",")],
                     [int(v) for v in args.strides.split(",")],
                     [int(v) for v in args.in_channels.split(",")] if args.in_channels else None)
        if layer is None:
            continue
        n, c, h, w, oc, k, s, p, g = layer
        x = tinytorch.Tensor(rng.standard_normal((n, c, h, w)).astype(np.float32))
        weight = tinytorch.Tensor((rng.standard_normal((oc, c // g, k, k)) / math.sqrt(c // g * k * k)).astype(np.float32))
        times = {a: math.inf for a in algorithms}
        for _ in range(3):
            for a in algorithms:
                times[a] = min(times[a], fastest(lambda a=a: tinytorch._tinytorch.conv2d(x, weight, None, s, p, 1, g, a),
                                                 args.seconds))
        pick = tb.select_conv2d_algorithm((n, c, h, w), (oc, c // g, k, k), stride=s, padding=p, groups=g)
        rows.append(dict(N=n, C=c, H=h, W=w, OC=oc, K=k, stride=s, padding=p, groups=g, rule=pick,
                         ms={a: t * 1e3 for a, t in times.items()}))
        print(f"{n} x {c} x {h}x{w} -> {oc}, {k}x{k} stride {s} pad {p} groups {g}: rule {pick:8s} " +
              " ".join(f"{a} {t * 1e3:.3f}" for a, t in times.items()) + " ms", flush=True)

    def geomean(values):
        return math.exp(sum(math.log(v) for v in values) / len(values))
    print(f"{len(rows)} layers; time over the fastest of the {len(algorithms)} (geometric mean):")
    for a in algorithms:
        print(f"  {a:8s} {geomean([r['ms'][a] / min(r['ms'].values()) for r in rows]):.3f}")
    first, second = algorithms[0], algorithms[1]
    ratio = [r["ms"][second] / r["ms"][first] for r in rows]
    print(f"{first} against {second}: {geomean(ratio):.3f}x faster in geometric mean; faster by 5% on "
          f"{sum(v > 1.05 for v in ratio)}, slower by 5% on {sum(v < 0.95 for v in ratio)}")
    if args.json:  # whole or not at all: written beside, then renamed over
        with open(args.json + ".tmp", "w") as f:
            json.dump(dict(family=args.family, seed=args.seed, isa=tb.peak_isa(), threads=args.threads, layers=rows), f,
                      indent=1)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()

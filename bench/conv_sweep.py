#!/usr/bin/env python3
"""Conv2D on a sweep of shapes, tinytorch against PyTorch and ONNX Runtime, side by side.

The shapes are not a hand-picked list:
  - every distinct conv layer of fifteen torchvision classification models
    (bench/torchvision_convs.csv, extracted from the model definitions by torchvision_convs.py),
    at batch 1 and batch 8;
  - seeded random shapes: channels 1-1024 and sides 1-224 (log-uniform), kernels 1-7 (odd and
    even), strides 1-3, dilations 1-3, groups 1, 2, 4, 8, 32 or depthwise, and every padding kind
    ('valid', symmetric, 'same', which is asymmetric for even spans).
Each shape is first checked against PyTorch (relative error), then timed: per round, the best
time of each library over a short window, the libraries taking turns; the median over rounds.
The ratio of a shape is the faster peer's time over ours (above 1: we are faster).

Shapes fall into families, the first that applies: depthwise (groups = C), grouped, dilated,
small images (at most 64 output pixels), 1x1, 3x3 stride 1, 3x3 stride 2, 5x5/7x7, other.
Per family: the minimum, the 10th percentile and the geometric mean of the ratio.

usage: python bench/conv_sweep.py [--random 200] [--threads 2] [--backward 60] [--limit N]
       in a venv with tinytorch, torch==2.13.0, onnxruntime==1.32.0, onnx==1.23.2, matplotlib
       (see the README's performance section). PyTorch 1.13 (Debian's python3) works as the only
       peer when onnxruntime is missing.

Writes bench/results/conv_sweep.json (every shape: times, ratios, % of the FMA peak, the
algorithm we chose), conv_sweep.png (ratio against FLOPs by family) and conv_roofline.png
(attained GFLOP/s against arithmetic intensity, under the measured peak and bandwidth); with
--backward N, conv_sweep_backward.json for N sampled shapes against PyTorch's autograd.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import tinytorch
from machine import cpu_name

try:
    import onnx
    import onnx.helper as oh
    import onnxruntime as ort
except ImportError:  # PyTorch alone is the peer
    ort = None

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["depthwise", "grouped", "dilated", "small", "1x1", "3x3 s1", "3x3 s2", "5x5/7x7", "other"]


# --- shapes ---------------------------------------------------------------------------------------

def out_size(side, kernel, stride, pad_lo, pad_hi, dilation):
    return (side + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def make_shape(source, N, C, H, W, OC, KH, KW, stride, dilation, groups, pads):
    """pads: (top, left, bottom, right)."""
    OH = out_size(H, KH, stride[0], pads[0], pads[2], dilation[0])
    OW = out_size(W, KW, stride[1], pads[1], pads[3], dilation[1])
    if OH < 1 or OW < 1:
        return None
    s = dict(source=source, N=N, C=C, H=H, W=W, OC=OC, KH=KH, KW=KW, stride=list(stride), dilation=list(dilation),
             groups=groups, pads=list(pads), OH=OH, OW=OW)
    s["flops"] = 2.0 * N * OC * OH * OW * (C // groups) * KH * KW
    s["family"] = family_of(s)
    s["name"] = (f"n{N}_c{C}_{H}x{W}_oc{OC}_k{KH}x{KW}_s{stride[0]}x{stride[1]}_d{dilation[0]}x{dilation[1]}"
                 f"_g{groups}_p{'-'.join(map(str, pads))}")
    return s


def family_of(s):
    if s["groups"] == s["C"] and s["C"] > 1:
        return "depthwise"
    if s["groups"] > 1:
        return "grouped"
    if max(s["dilation"]) > 1:
        return "dilated"
    if s["OH"] * s["OW"] <= 64:
        return "small"
    if s["KH"] == s["KW"] == 1:
        return "1x1"
    if s["KH"] == s["KW"] == 3 and s["stride"] == [1, 1]:
        return "3x3 s1"
    if s["KH"] == s["KW"] == 3 and s["stride"] == [2, 2]:
        return "3x3 s2"
    if s["KH"] == s["KW"] and s["KH"] in (5, 7):
        return "5x5/7x7"
    return "other"


def model_shapes(batches):
    shapes = []
    with open(os.path.join(HERE, "torchvision_convs.csv")) as f:
        for r in csv.DictReader(f):
            v = {k: int(x) for k, x in r.items() if k != "model"}
            for n in batches:
                s = make_shape(r["model"], n, v["C"], v["H"], v["W"], v["OC"], v["KH"], v["KW"],
                               (v["stride_h"], v["stride_w"]), (v["dilation_h"], v["dilation_w"]), v["groups"],
                               (v["pad_h"], v["pad_w"], v["pad_h"], v["pad_w"]))
                if s:
                    shapes.append(s)
    return shapes


def random_shapes(count, seed, max_gflop):
    """count seeded shapes under max_gflop each."""
    rng = np.random.default_rng(seed)
    log_uniform = lambda lo, hi: int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
    shapes = []
    while len(shapes) < count:
        N = int(rng.choice([1, 2, 8]))
        H = log_uniform(1, 224)
        W = H if rng.random() < 0.7 else log_uniform(1, 224)
        KH = int(rng.integers(1, 8))
        KW = KH if rng.random() < 0.8 else int(rng.integers(1, 8))
        stride = (int(rng.integers(1, 4)),) * 2
        dilation = (int(rng.integers(1, 4)) if rng.random() < 0.25 else 1,) * 2
        kind = rng.choice(["dense", "dense", "dense", "grouped", "depthwise"])
        if kind == "depthwise":
            C = log_uniform(2, 1024)
            groups, OC = C, C * int(rng.choice([1, 1, 1, 2, 4]))
        elif kind == "grouped":
            groups = int(rng.choice([2, 4, 8, 32]))
            C = groups * max(1, log_uniform(1, 1024) // groups)
            OC = groups * max(1, log_uniform(1, 1024) // groups)
        else:
            groups, C, OC = 1, log_uniform(1, 1024), log_uniform(1, 1024)
        span = [dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1]
        padding = rng.choice(["valid", "symmetric", "same", "random"])
        if padding == "same":  # PyTorch's rule: the odd one on the bottom/right
            stride = (1, 1)
            pads = (span[0] - 1) // 2, (span[1] - 1) // 2, span[0] // 2, span[1] // 2
        elif padding == "symmetric":
            pads = (span[0] // 2, span[1] // 2) * 2
        elif padding == "random":
            ph, pw = int(rng.integers(0, KH + 1)), int(rng.integers(0, KW + 1))
            pads = (ph, pw, ph, pw)
        else:
            pads = (0, 0, 0, 0)
        s = make_shape("random", N, C, H, W, OC, KH, KW, stride, dilation, groups, pads)
        if s and 1e4 <= s["flops"] <= max_gflop * 1e9:
            shapes.append(s)
    return shapes


# --- the three libraries --------------------------------------------------------------------------

class Case:
    """One shape's tensors and its three callables, on the same data."""

    def __init__(self, s, threads):
        rng = np.random.default_rng(1)
        self.x = rng.standard_normal((s["N"], s["C"], s["H"], s["W"]), dtype=np.float32)
        self.w = rng.standard_normal((s["OC"], s["C"] // s["groups"], s["KH"], s["KW"]), dtype=np.float32)
        self.w *= 1.0 / math.sqrt(self.w[0].size)
        self.b = rng.standard_normal(s["OC"], dtype=np.float32)
        self.s = s
        t, l, b, r = s["pads"]
        self.symmetric = (t, l) == (b, r)
        self.args = dict(stride=tuple(s["stride"]), dilation=tuple(s["dilation"]), groups=s["groups"])
        self.xo, self.wo, self.bo = tinytorch.Tensor(self.x), tinytorch.Tensor(self.w), tinytorch.Tensor(self.b)
        self.xt, self.wt, self.bt = torch.from_numpy(self.x), torch.from_numpy(self.w), torch.from_numpy(self.b)
        self.session = self.make_session(threads) if ort else None

    def ours(self):
        with tinytorch.no_grad():
            if self.symmetric:
                return tinytorch.nn.functional.conv2d(self.xo, self.wo, self.bo, padding=tuple(self.s["pads"][:2]),
                                                      **self.args)
            return tinytorch.nn.functional.conv2d(self.xo, self.wo, self.bo, padding="same", **self.args)

    def torch(self):
        with torch.inference_mode():
            if self.symmetric:
                return F.conv2d(self.xt, self.wt, self.bt, padding=tuple(self.s["pads"][:2]), **self.args)
            t, l, b, r = self.s["pads"]
            return F.conv2d(F.pad(self.xt, (l, r, t, b)), self.wt, self.bt, **self.args)

    def make_session(self, threads):
        s = self.s
        node = oh.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[s["KH"], s["KW"]], strides=s["stride"],
                            dilations=s["dilation"], group=s["groups"], pads=s["pads"])
        graph = oh.make_graph(
            [node], "conv", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(self.x.shape))],
            [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
            initializer=[onnx.numpy_helper.from_array(self.w, "w"), onnx.numpy_helper.from_array(self.b, "b")])
        model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Its workers spin while a run lasts but not after it: ONNX Runtime's default keeps them
        # spinning for up to a second, which on two cores halves the speed of whatever runs next.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def ort(self):
        return self.session.run(None, {"x": self.x})[0]


def best_time(fn, seconds):
    """The best per-call time over calls filling about `seconds` (at least 2 calls), after two
    untimed calls: the first call of a turn also pays for waking idle threads (milliseconds on
    this virtual machine, for every library)."""
    fn(), fn()
    best, start, calls = float("inf"), time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return best


def interleaved(fns, rounds, seconds):
    """Median over rounds of each callable's best time; the callables take turns in every round."""
    for fn in fns.values():  # warm-up: caches, prepared weights, first-call paths
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(best_time(fn, seconds))
    return {k: float(np.median(v)) for k, v in times.items()}


def measure(s, args):
    case = Case(s, args.threads)
    want = case.torch().numpy()
    scale = float(np.abs(want).max()) + 1e-30
    error = float(np.abs(case.ours().numpy() - want).max() / scale)
    fns = {"ours": case.ours, "torch": case.torch}
    if case.session:
        fns["ort"] = case.ort
        error_ort = float(np.abs(case.ort() - want).max() / scale)
    times = interleaved(fns, args.rounds, args.seconds)
    peers = {k: v for k, v in times.items() if k != "ours"}
    best_peer = min(peers, key=peers.get)
    r = dict(s, **{f"{k}_ms": v * 1e3 for k, v in times.items()})
    r.update(ratio=peers[best_peer] / times["ours"], best_peer=best_peer,
             ratio_torch=times["torch"] / times["ours"], max_rel_error=error,
             gflops=s["flops"] / times["ours"] / 1e9,
             bytes=4.0 * (case.x.size + case.w.size + s["N"] * s["OC"] * s["OH"] * s["OW"]),
             algorithm=tinytorch.backends.select_conv2d_algorithm(
                 list(case.x.shape), list(case.w.shape), stride=tuple(s["stride"]), dilation=tuple(s["dilation"]),
                 groups=s["groups"], padding=tuple(s["pads"][:2]) if case.symmetric else "same"))
    if case.session:
        r["ratio_ort"] = times["ort"] / times["ours"]
        r["max_rel_error_ort"] = error_ort
    return r


def measure_backward(s, args):
    """Forward + backward (input and weight gradients) against PyTorch's autograd; the backward
    alone is that minus the forward, each timed the same way."""
    case = Case(s, args.threads)
    gy = torch.randn(s["N"], s["OC"], s["OH"], s["OW"], generator=torch.Generator().manual_seed(3))
    gyo = tinytorch.Tensor(gy.numpy())
    pad = tuple(s["pads"][:2]) if case.symmetric else "same"
    xo = tinytorch.Tensor(case.x).requires_grad_()
    wo = tinytorch.Tensor(case.w).requires_grad_()
    xt = case.xt.clone().requires_grad_()
    wt = case.wt.clone().requires_grad_()
    t, l, b, r = s["pads"]

    def ours():
        xo.grad = wo.grad = None
        tinytorch.nn.functional.conv2d(xo, wo, case.bo, padding=pad, **case.args).backward(gyo)

    def theirs():
        xt.grad = wt.grad = None
        xin = xt if case.symmetric else F.pad(xt, (l, r, t, b))
        F.conv2d(xin, wt, case.bt, padding=pad if case.symmetric else 0, **case.args).backward(gy)

    ours(), theirs()
    scale_x = float(xt.grad.abs().max()) + 1e-30
    scale_w = float(wt.grad.abs().max()) + 1e-30
    error = max(float(np.abs(xo.grad.numpy() - xt.grad.numpy()).max()) / scale_x,
                float(np.abs(wo.grad.numpy() - wt.grad.numpy()).max()) / scale_w)
    both = interleaved({"ours": ours, "torch": theirs, "ours_fwd": case.ours, "torch_fwd": case.torch},
                       args.rounds, args.seconds)
    back_ours = max(both["ours"] - both["ours_fwd"], 1e-9)
    back_torch = max(both["torch"] - both["torch_fwd"], 1e-9)
    return dict(s, ours_ms=both["ours"] * 1e3, torch_ms=both["torch"] * 1e3, ours_backward_ms=back_ours * 1e3,
                torch_backward_ms=back_torch * 1e3, ratio=both["torch"] / both["ours"],
                ratio_backward=back_torch / back_ours, max_rel_error=error)


# --- reporting ------------------------------------------------------------------------------------

def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summary(results, key="ratio"):
    rows = []
    for family in FAMILIES + ["all"]:
        rs = [r for r in results if family in ("all", r["family"])]
        if not rs:
            continue
        v = sorted(r[key] for r in rs)
        rows.append(dict(family=family, shapes=len(rs), min=v[0], p10=v[int(0.1 * (len(v) - 1))],
                         geomean=geomean(v), below_1=sum(x < 1 for x in v)))
    return rows


def print_summary(rows, title):
    print(title)
    print(f"  {'family':<10} {'shapes':>6} {'min':>6} {'p10':>6} {'geomean':>8} {'below 1':>8}")
    for r in rows:
        print(f"  {r['family']:<10} {r['shapes']:6d} {r['min']:6.2f} {r['p10']:6.2f} {r['geomean']:8.2f} "
              f"{r['below_1']:8d}")


def plots(results, peak, bandwidth, out, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for family in FAMILIES:
        rs = [r for r in results if r["family"] == family]
        if rs:
            ax.scatter([r["flops"] / 1e6 for r in rs], [r["ratio"] for r in rs], label=family, s=10)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="MFLOP per call", ylabel="faster peer's time / ours", title=title)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "conv_sweep.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for family in FAMILIES:
        rs = [r for r in results if r["family"] == family]
        if rs:
            ax.scatter([r["flops"] / r["bytes"] for r in rs], [r["gflops"] for r in rs], label=family, s=10)
    xs = np.logspace(-1, 3, 200)
    ax.plot(xs, np.minimum(peak, bandwidth * xs), color="black", linewidth=1,
            label=f"roof: {peak:.0f} GFLOP/s FMA peak, {bandwidth:.0f} GB/s")
    ax.set(xscale="log", yscale="log", xlabel="FLOP per byte (input + weight + output, once)",
           ylabel="GFLOP/s (ours)", title="Conv2D forward roofline, " + title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "conv_roofline.png"), dpi=110)
    plt.close(fig)
    return ["conv_sweep.png", "conv_roofline.png"]


def copy_bandwidth_gbs():
    """Memory bandwidth as a large copy sees it (read + write), the roofline's slope."""
    a = np.ones(64 << 20 >> 2, dtype=np.float32)
    b = np.empty_like(a)
    best = min(timeit(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best / 1e9


def timeit(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_json(path, payload):
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(path + ".tmp", path)


def progress(done, total, start, name):
    rate = done / (time.perf_counter() - start)
    sys.stderr.write(f"\r[{done}/{total}] {rate:.2f} shapes/s, ETA {(total - done) / rate:4.0f} s  {name[:58]:<58}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--random", type=int, default=200, help="seeded random shapes (besides the models')")
    ap.add_argument("--batches", default="1,8", help="batch sizes of the model layers")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.02, help="per library per round")
    ap.add_argument("--max-gflop", type=float, default=4.0, help="largest random shape")
    ap.add_argument("--backward", type=int, default=0, help="also time the gradients on this many shapes")
    ap.add_argument("--family", default=None, help="only this family (for a quick look)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N shapes (for a quick look)")
    ap.add_argument("--source", default=None, help="only the layers of this model, e.g. mobilenet_v2, or 'random'")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    tinytorch.set_num_threads(args.threads)
    shapes = model_shapes([int(b) for b in args.batches.split(",")]) + random_shapes(args.random, args.seed,
                                                                                     args.max_gflop)
    if args.source:  # before the merging below, which names a shared layer after its first model
        shapes = [s for s in shapes if s["source"] == args.source]
    unique = {}
    for s in shapes:  # a layer several models share is timed once (its first model names it)
        unique.setdefault(s["name"], s)
    shapes = list(unique.values())
    if args.family:
        shapes = [s for s in shapes if s["family"] == args.family]
    if args.limit:
        shapes = shapes[:args.limit]
    # The peak is measured before the shapes and after them, and the larger kept: on a virtual
    # machine whose host lends the cores out, a half-second probe can find one core where two were
    # asked for (an AMD EPYC measured 103 GFLOP/s on 2 threads, then 206 a second later).
    peak = tinytorch.backends.measure_fma_peak_gflops(args.threads, 0.5)
    bandwidth = copy_bandwidth_gbs()
    peers = "PyTorch " + torch.__version__.split("+")[0] + (f" and ONNX Runtime {ort.__version__}" if ort else "")
    machine = dict(threads=args.threads, isa=tinytorch.backends.peak_isa(), cpu=cpu_name(), peak_gflops=peak,
                   bandwidth_gbs=bandwidth, torch=torch.__version__, onnxruntime=ort.__version__ if ort else None,
                   seed=args.seed)

    results, start = [], time.perf_counter()
    for i, s in enumerate(shapes):
        results.append(measure(s, args))
        progress(i + 1, len(shapes), start, s["name"])
    sys.stderr.write("\n")
    peak = machine["peak_gflops"] = max(peak, tinytorch.backends.measure_fma_peak_gflops(args.threads, 0.5))
    for r in results:
        r["pct_peak"] = 100 * r["gflops"] / peak
    os.makedirs(args.out, exist_ok=True)
    title = f"{len(results)} shapes, {args.threads} threads, {machine['isa']}, vs {peers}"
    rows = summary(results)
    print_summary(rows, f"Conv2D forward: {title}\n  ratio = the faster peer's time / ours "
                        f"(FMA peak {peak:.0f} GFLOP/s, copy bandwidth {bandwidth:.0f} GB/s, {machine['cpu']})")
    worst = sorted(results, key=lambda r: r["ratio"])[:15]
    print("  slowest against the faster peer:")
    for r in worst:
        print(f"    {r['ratio']:5.2f}x vs {r['best_peer']:<5} {r['family']:<9} {r['name']:<58} {r['algorithm']:<9} "
              f"{r['pct_peak']:5.1f}% of peak")
    bad = [r for r in results if r["max_rel_error"] > 1e-3]
    if bad:
        print(f"  {len(bad)} shapes differ from PyTorch by more than 1e-3 (relative): {[r['name'] for r in bad]}")
    big = [r for r in results if r["flops"] >= 1e8 and r["algorithm"] != "winograd"]
    if big:
        print(f"  non-Winograd shapes of at least 100 MFLOP: {len(big)}, at 80% of peak or more: "
              f"{sum(r['pct_peak'] >= 80 for r in big)}, median {np.median([r['pct_peak'] for r in big]):.0f}%")
    write_json(os.path.join(args.out, "conv_sweep.json"), dict(machine, summary=rows, results=results))
    images = plots(results, peak, bandwidth, args.out, title)

    if args.backward:
        rng = np.random.default_rng(args.seed + 1)
        pool = [s for s in shapes if s["flops"] <= 1e9]
        sample = [pool[i] for i in sorted(rng.choice(len(pool), min(args.backward, len(pool)), replace=False))]
        back, start = [], time.perf_counter()
        for i, s in enumerate(sample):
            back.append(measure_backward(s, args))
            progress(i + 1, len(sample), start, s["name"])
        sys.stderr.write("\n")
        print_summary(summary(back, "ratio_backward"), f"Conv2D backward (input and weight gradients), "
                                                       f"{len(back)} sampled shapes, vs PyTorch's autograd")
        bad = [r for r in back if r["max_rel_error"] > 1e-3]
        if bad:
            print(f"  {len(bad)} gradients differ from PyTorch by more than 1e-3: {[r['name'] for r in bad]}")
        write_json(os.path.join(args.out, "conv_sweep_backward.json"),
                   dict(machine, summary=summary(back, "ratio_backward"), results=back))
    print("wrote " + ", ".join(["conv_sweep.json"] + images + (["conv_sweep_backward.json"] if args.backward else []))
          + " in " + args.out)
    return 1 if bad else 0



if __name__ == "__main__":
    sys.exit(main())

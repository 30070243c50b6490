#!/usr/bin/python3
"""Conv2D forward, tinytorch against PyTorch, side by side.

For each shape of bench/conv_shapes.csv both libraries run the same convolution on the same
tensors with the same thread count, interleaved round by round (so a noisy neighbour hurts both
alike). Per shape it prints our ms, PyTorch's ms, the speed-up (PyTorch time / ours), our GFLOP/s
and our % of this machine's FP32 peak (an FMA loop measured on the same thread count). It writes
JSON and a PNG bar chart of the speed-ups.

With --isa avx2 both libraries are held to AVX2 + FMA (TINYTORCH_ISA=avx2 for ours,
ONEDNN_MAX_CPU_ISA=AVX2 for oneDNN under PyTorch): the comparison on a CPU without AVX-512, such as
the Zen 3 machines the project's targets were first written for.

usage: /usr/bin/python3 bench/compare_torch.py [--threads 2] [--rounds 7] [--isa native|avx2] [--out bench/results]
       /usr/bin/python3 bench/compare_torch.py --replot bench/results/conv_vs_torch_t2.json
"""
import argparse
import csv
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F

import tinytorch
from tinytorch.core.spatial import Conv2D
from tinytorch.core.tensor import Tensor

HERE = os.path.dirname(os.path.abspath(__file__))


def read_shapes(path):
    rows = [line for line in open(path) if line.strip() and not line.startswith("#")]
    fields = ["name", "N", "C", "H", "W", "K", "KH", "KW", "stride", "pad", "dilation", "groups"]
    return [{k: (v if k == "name" else int(v)) for k, v in zip(fields, r)} for r in csv.reader(rows)]


def flops(s):
    oh = (s["H"] + 2 * s["pad"] - s["dilation"] * (s["KH"] - 1) - 1) // s["stride"] + 1
    ow = (s["W"] + 2 * s["pad"] - s["dilation"] * (s["KW"] - 1) - 1) // s["stride"] + 1
    return 2 * s["N"] * s["K"] * oh * ow * (s["C"] // s["groups"]) * s["KH"] * s["KW"]


def warm_up(fn, seconds, min_calls=300):
    """PyTorch needs hundreds of calls before a small shape reaches its steady speed (its first
    500 calls of a batch-1 conv run 5x slower here); warm both libraries up the same way."""
    n, start = 0, time.perf_counter()
    while n < min_calls or time.perf_counter() - start < seconds:
        fn()
        n += 1


def time_call(fn, min_seconds):
    """Seconds per call: run in a loop until min_seconds have passed."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n


def side_by_side(ours_fn, torch_fn, args):
    """Median seconds per call of each, warmed up alike and timed in interleaved rounds."""
    warm_up(ours_fn, args.warmup)
    warm_up(torch_fn, args.warmup)
    ours_t, torch_t = [], []
    for _ in range(args.rounds):
        ours_t.append(time_call(ours_fn, args.min_time))
        torch_t.append(time_call(torch_fn, args.min_time))
    return float(np.median(ours_t)), float(np.median(torch_t))


def progress(i, total, started, label):
    elapsed = time.perf_counter() - started
    rate = i / elapsed if elapsed > 0 else 0.0
    eta = (total - i) / rate if rate > 0 else 0.0
    sys.stderr.write(f"\r[{i}/{total}] {rate:.2f} shapes/s, ETA {eta:4.0f}s  {label:<24}")
    sys.stderr.flush()


POLICIES = ("default", "ACTIVE", "PASSIVE")


def run_under_each_policy(argv):
    """Both libraries run on libgomp, whose wait policy is read once per process. On this 2-vCPU
    machine PyTorch is erratic under ACTIVE and PASSIVE alike: with ACTIVE (spinning) workers its
    batch-1 calls take 5-10 ms instead of 20-40 us about half the time; with PASSIVE (sleeping)
    workers its large 1x1 and 7x7 layers often take 5x longer. libgomp's default (workers spin a
    while, then sleep) is what users get. So the whole comparison runs once per policy (the
    variable unset, ACTIVE, PASSIVE), each in its own process, and each library is credited with
    its best time per shape."""
    import subprocess
    import tempfile
    runs = []
    for policy in POLICIES:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            if policy != "default":
                env["OMP_WAIT_POLICY"] = policy
            subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--out", tmp] + argv, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            runs.append(json.load(open(os.path.join(tmp, "child.json"))))
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per shape (median is reported)")
    ap.add_argument("--min-time", type=float, default=0.03, help="seconds per timing in a round")
    ap.add_argument("--warmup", type=float, default=0.3, help="seconds of calls before timing, per library")
    ap.add_argument("--shapes", default=os.path.join(HERE, "conv_shapes.csv"))
    ap.add_argument("--only", default="", help="comma-separated shape names")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--isa", choices=("native", "avx2"), default="native",
                    help="avx2: both libraries limited to AVX2 + FMA")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if not args.child:
        if args.isa == "avx2":  # read by the child processes when the libraries load
            os.environ.update(TINYTORCH_ISA="avx2", ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2")
        passthrough = [a for a in sys.argv[1:]]
        # --out is the parent's; children write to their own temporary folders.
        if "--out" in passthrough:
            i = passthrough.index("--out")
            del passthrough[i:i + 2]
        return report(args, run_under_each_policy(passthrough))
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be >= 1")

    torch.set_num_threads(args.threads)
    tinytorch.set_num_threads(args.threads)
    peak = tinytorch._tinytorch.measure_fma_peak_gflops(args.threads, 0.3)
    shapes = read_shapes(args.shapes)
    if args.only:
        shapes = [s for s in shapes if s["name"] in args.only.split(",")]
    rng = np.random.default_rng(0)
    results, started = [], time.perf_counter()
    for i, s in enumerate(shapes):
        progress(i, len(shapes), started, s["name"])
        x = rng.standard_normal((s["N"], s["C"], s["H"], s["W"]), dtype=np.float32)
        conv = Conv2D(s["C"], s["K"], (s["KH"], s["KW"]), stride=s["stride"], padding=s["pad"],
                      dilation=s["dilation"], groups=s["groups"])
        w, b = conv.weight.data, conv.bias.data
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        xs = Tensor(x)
        def ours_fn():  # no graph recorded, on either side: parameters require grad in both libraries
            with tinytorch.no_grad():
                return conv(xs)

        def torch_fn():
            with torch.no_grad():
                return F.conv2d(xt, wt, bt, stride=s["stride"], padding=s["pad"], dilation=s["dilation"],
                                groups=s["groups"])
        # Same answer first: a benchmark of a wrong result is worthless.
        ref = torch_fn().numpy()
        got = ours_fn().data
        err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-30))
        o, t = side_by_side(ours_fn, torch_fn, args)
        f = flops(s)
        algo = tinytorch._tinytorch.select_conv2d_algorithm(list(x.shape), list(w.shape), stride=s["stride"],
                                                          padding=s["pad"], dilation=s["dilation"],
                                                          groups=s["groups"])
        results.append(dict(shape=s["name"], algorithm=algo, ours_ms=o * 1e3, torch_ms=t * 1e3, speedup=t / o,
                            ours_gflops=f / o / 1e9, torch_gflops=f / t / 1e9, ours_peak_pct=100 * f / o / 1e9 / peak,
                            max_rel_error=err, flops=f))
    if not args.only or "demo_cnn_b32" in args.only.split(","):
        results.append(demo_cnn(args, peak))
    progress(len(shapes), len(shapes), started, "done")
    sys.stderr.write("\n")
    with open(os.path.join(args.out, "child.json"), "w") as f:
        json.dump(dict(peak=peak, policy=os.environ.get("OMP_WAIT_POLICY", "default"), results=results), f)


def demo_cnn(args, peak):
    """The seed's CNN end to end at batch 32: Conv(3,16,3) -> MaxPool(2) -> Conv(16,32,3) ->
    MaxPool(2) -> Flatten -> Linear(800, 10), on 3x28x28 images, same weights in both."""
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.spatial import Flatten, MaxPool2D
    ours = Sequential(Conv2D(3, 16, 3), MaxPool2D(2), Conv2D(16, 32, 3), MaxPool2D(2), Flatten(), Linear(800, 10))
    peer = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(800, 10)).eval()
    with torch.no_grad():
        for i in (0, 2, 5):
            peer[i].weight.copy_(torch.from_numpy(ours[i].weight.data))
            peer[i].bias.copy_(torch.from_numpy(ours[i].bias.data))
    x = np.random.default_rng(1).standard_normal((32, 3, 28, 28), dtype=np.float32)
    xs, xt = Tensor(x), torch.from_numpy(x)
    def ours_fn():
        with tinytorch.no_grad():
            return ours(xs)

    def torch_fn():
        with torch.no_grad():
            return peer(xt)
    err = float(np.abs(ours_fn().data - torch_fn().numpy()).max())
    o, t = side_by_side(ours_fn, torch_fn, args)
    f = 2 * 32 * (16 * 26 * 26 * 27 + 32 * 11 * 11 * 144 + 800 * 10)
    return dict(shape="demo_cnn_b32", algorithm="model", ours_ms=o * 1e3, torch_ms=t * 1e3, speedup=t / o,
                ours_gflops=f / o / 1e9, torch_gflops=f / t / 1e9, ours_peak_pct=100 * f / o / 1e9 / peak,
                max_rel_error=err, flops=f)


def report(args, runs):
    """Merges the per-policy runs (best time per library per shape) and prints, saves, plots."""
    peak = max(r["peak"] for r in runs)
    results = []
    for i, first in enumerate(runs[0]["results"]):
        per = [r["results"][i] for r in runs]
        o = min(p["ours_ms"] for p in per)
        t = min(p["torch_ms"] for p in per)
        f = first["flops"]
        results.append(dict(first, ours_ms=o, torch_ms=t, speedup=t / o, ours_gflops=f / o / 1e6,
                            torch_gflops=f / t / 1e6, ours_peak_pct=100 * f / o / 1e6 / peak,
                            per_policy={r["policy"]: dict(ours_ms=p["ours_ms"], torch_ms=p["torch_ms"])
                                        for r, p in zip(runs, per)}))

    print(f"Conv2D forward, {args.threads} thread(s), ISA {args.isa}, FP32 FMA peak measured {peak:.0f} GFLOP/s; "
          f"speed-up = PyTorch time / ours (>1: we are faster); each library's best of OMP_WAIT_POLICY "
          f"{', '.join(POLICIES)}")
    print(f"{'shape':<20} {'algorithm':<10} {'ours ms':>9} {'torch ms':>9} {'speed-up':>8} {'GFLOP/s':>8} "
          f"{'% peak':>7} {'torch GF/s':>10}")
    for r in results:
        print(f"{r['shape']:<20} {r['algorithm']:<10} {r['ours_ms']:9.3f} {r['torch_ms']:9.3f} {r['speedup']:7.2f}x "
              f"{r['ours_gflops']:8.1f} {r['ours_peak_pct']:6.1f}% {r['torch_gflops']:10.1f}")

    os.makedirs(args.out, exist_ok=True)
    meta = dict(omp_wait_policies=list(POLICIES), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                machine=platform.processor() or platform.machine(), threads=args.threads, peak_gflops=peak,
                torch=torch.__version__, tinytorch=tinytorch.__version__, isa=args.isa)
    stem = f"conv_vs_torch_t{args.threads}" + ("" if args.isa == "native" else f"_{args.isa}")
    with open(os.path.join(args.out, f"{stem}.json"), "w") as f:
        json.dump(dict(meta=meta, results=results), f, indent=1)
    plot(results, os.path.join(args.out, f"{stem}.png"),
         f"tinytorch Conv2D vs PyTorch {torch.__version__}, {args.threads} thread(s), ISA {args.isa}")
    print(f"wrote {args.out}/{stem}.json and .png")


def plot(results, path, title):
    """Bar chart of the speed-ups on a log scale (ratios from 0.9x to 20x on one chart), each bar
    labelled with its value; red below 1x."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(10, 4.8))
    names = [r["shape"] for r in results]
    speed = [r["speedup"] for r in results]
    bars = ax.bar(names, speed, color=["tab:green" if v >= 1 else "tab:red" for v in speed])
    ax.set_yscale("log")
    ax.set_ylim(top=max(speed) * 1.6)  # room for the labels
    ax.axhline(1.0, color="black", lw=0.8)
    for bar, v in zip(bars, speed):
        ax.annotate(f"{v:.2f}x", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("speed-up over PyTorch (x, log scale)")
    ax.set_title(title)
    plt.xticks(rotation=60, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def replot(path):
    """--replot FILE.json: draws FILE.png again from a saved run, without measuring."""
    data = json.load(open(path))
    meta = data["meta"]
    plot(data["results"], os.path.splitext(path)[0] + ".png",
         f"tinytorch Conv2D vs PyTorch {meta['torch']}, {meta['threads']} thread(s), ISA {meta.get('isa', 'native')}")
    print(f"wrote {os.path.splitext(path)[0]}.png")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--replot":
        replot(sys.argv[2])
    else:
        main()

"""Forced side by side inside a graph: a 3x3 stride-1 layer on a blocked input, run through the plain
layout by Winograd (from_blocked, Winograd F(4x4, 3x3), to_blocked) against the blocked tiles in
place. The eager studies (bench/rule_study.py) time layers alone, their tensors hot in cache; in a
network the layout changes read tensors another node wrote, so this study times the layer as a node
of a small graph (1x1 layers making the input blocked, the layer, a 1x1 reader) with `tinytorch
inspect --profile`, Winograd and the blocked tiles forced in turn (no autotuning: the heuristic's
plain choice is Winograd on every layer drawn).

    python bench/graph_rule_study.py --seed 4101 --count 40

Draws seeded random layers (17-512 channels in, 16-512 out, sides 7-56, batch 1-8, padding 1)
whose plain selection is Winograd, prints each one's two node times (the median over --runs
runs, best of --rounds alternating) and the Winograd tiles against the micro-kernel's panel, then
the geometric mean of blocked's speed over Winograd's by the tiles' count. Needs the bench venv
(onnx, numpy), the tinytorch module and the `tinytorch` command (--cli, default build/bin/tinytorch).
"""
import argparse
import json
import math
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import helper as oh
from onnx import numpy_helper

import tinytorch.backends as tb


def draw(rng):
    n = int(rng.choice([1, 1, 1, 2, 4, 8]))
    c, oc = int(math.exp(rng.uniform(math.log(17), math.log(513)))), int(math.exp(rng.uniform(math.log(16), math.log(513))))
    h = int(math.exp(rng.uniform(math.log(7), math.log(57))))
    w = h if rng.random() < 0.8 else int(math.exp(rng.uniform(math.log(7), math.log(57))))
    if n * c * oc * h * w * 18 > 1.2e9:
        return None
    if tb.select_conv2d_algorithm([n, c, h, w], [oc, c, 3, 3], stride=(1, 1), padding=(1, 1)) != "winograd":
        return None
    return n, c, h, w, oc


def chain(path, n, c, h, w, oc, rng):
    """x [n, 3, h, w] -> 1x1 to 16 -> 1x1 to c -> 3x3 to oc -> 1x1 to 16, each with its relu: the first
    layer makes the layout blocked (a few-channel input feeding a pointwise layer), as a stem does."""
    nodes, inits = [], []
    prev, prev_c = "x", 3
    for i, (cout, k) in enumerate([(16, 1), (c, 1), (oc, 3), (16, 1)]):
        wt = (rng.standard_normal((cout, prev_c, k, k)) / math.sqrt(prev_c * k * k)).astype(np.float32)
        inits += [numpy_helper.from_array(wt, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes.append(oh.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", kernel_shape=[k, k],
                                  pads=[k // 2] * 4))
        nodes.append(oh.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev, prev_c = f"r{i}", cout
    graph = oh.make_graph(nodes, "chain", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [n, 3, h, w])],
                          [oh.make_tensor_value_info(prev, onnx.TensorProto.FLOAT, None)], initializer=inits)
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), path)


def node_ms(cli, path, algo, threads, runs, n):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([cli, "inspect", path, "--batch", str(n), "--threads", str(threads), "--profile", str(runs),
                        "--conv-algo", algo, "--json", f.name], check=True, capture_output=True)
        nodes = json.load(open(f.name))["nodes"]
    node = next(x for x in nodes if x["name"] == "conv2")
    return node["ms"], node["algorithm"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "tinytorch"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    panel = 32 if tb.peak_isa() == "avx512" else 16
    print(f"3x3 stride 1 on a blocked input: plain Winograd between layout changes against the blocked tiles; "
          f"kernels {tb.peak_isa()} (panel {panel}), {args.threads} threads")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        while len(rows) < args.count:
            layer = draw(rng)
            if layer is None:
                continue
            n, c, h, w, oc = layer
            path = os.path.join(tmp, "chain.onnx")
            chain(path, n, c, h, w, oc, rng)
            best = {"winograd": math.inf, "blocked": math.inf}
            for _ in range(args.rounds):
                for algo in best:
                    ms, name = node_ms(args.cli, path, algo, args.threads, args.runs, n)
                    best[algo] = min(best[algo], ms)
                    if algo == "winograd" and not name.startswith("winograd (plain"):
                        raise SystemExit(f"the forced Winograd layer ran as {name!r}, not between layout changes")
            tiles = n * ((h + 3) // 4) * ((w + 3) // 4)
            row = dict(N=n, C=c, H=h, W=w, OC=oc, tiles=tiles, winograd_ms=best["winograd"], blocked_ms=best["blocked"],
                       speedup=best["winograd"] / best["blocked"])
            rows.append(row)
            print(f"[{len(rows):3}/{args.count}] {n} x {c:3} -> {oc:3} at {h:2}x{w:2}  tiles {tiles:4} "
                  f"({tiles / panel:5.2f} panels)  winograd {row['winograd_ms']:.3f} ms  blocked {row['blocked_ms']:.3f}"
                  f"  blocked {row['speedup']:.2f}x", flush=True)

    def report(label, sel):
        if sel:
            g = math.exp(sum(math.log(r["speedup"]) for r in sel) / len(sel))
            faster = sum(r["speedup"] > 1.05 for r in sel)
            slower = sum(r["speedup"] < 0.95 for r in sel)
            print(f"  {label:28} {len(sel):3} layers  blocked {g:.2f}x Winograd's speed in geomean, "
                  f"faster by 5% on {faster}, slower on {slower}")

    print("by the Winograd tiles of all images, in micro-kernel panels:")
    for lo, hi in [(0, 1), (1, 2), (2, 4), (4, 1e9)]:
        report(f"{lo}-{hi if hi < 1e9 else 'inf'} panels", [r for r in rows if lo * panel <= r["tiles"] < hi * panel])
    report("all", rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(isa=tb.peak_isa(), threads=args.threads, seed=args.seed, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Whole networks written in PyTorch style, run eagerly: tinytorch against PyTorch, side by side.

The four networks of examples/torchvision_models.py (ResNet-18, MobileNetV2, MobileNetV3-Large,
ShuffleNetV2), defined by the same code over each library and given the same weights (the torch
model's state_dict, batch-norm statistics set to random realistic values), run in eval mode under
no_grad, layer by layer as the Python code calls them: no graph runtime, no fusion. This is what a
learner's model costs, as opposed to bench/compare_models.py's ONNX graphs. Same threads, the
libraries taking turns round by round; per model and batch the median of the rounds' per-call
times, the ratio (PyTorch's time / ours) and the largest output difference. JSON and a PNG.

With --train, a training step instead: model.train(), zero_grad, forward, cross-entropy loss,
backward and an SGD step with momentum (10 classes, images of --size pixels), the same weights and
inputs in both libraries; the first step's losses are compared (dropout draws differ between the
libraries, so models with dropout differ there).

Whichever torch the interpreter imports is the peer: PyTorch 2.13 in the benchmark venv
(bench/requirements.txt), Debian's 1.13 under /usr/bin/python3.

usage: python bench/eager_models.py [--models resnet18,mobilenet_v2] [--batches 1,8] [--threads 2]
       [--rounds 7] [--train [--size 96]] [--out bench/results]
"""
import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch

import tinytorch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402
from torchvision_models import models  # noqa: E402


def build(name, num_classes=1000):
    torch.manual_seed(0)
    theirs = models(torch)[name](num_classes=num_classes)
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    theirs.eval()
    ours = models(tinytorch)[name](num_classes=num_classes)
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    return ours, theirs


def per_call(fn, seconds):
    fn()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def training_step(lib, model, x, y):
    """A closure running one SGD step of `model` on (x, y) and returning the loss."""
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = lib.nn.CrossEntropyLoss()
    model.train()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return float(loss.item())
    return step


def measure(name, batch, args):
    """One row: ours and torch's per-call times taking turns, and how close the outputs are."""
    ours, theirs = build(name, 10 if args.train else 1000)
    size = args.size if args.train else 224
    x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
    xo, xt = tinytorch.from_numpy(x), torch.from_numpy(x)
    if args.train:
        y = np.arange(batch) % 10
        run_ours = training_step(tinytorch, ours, xo, tinytorch.from_numpy(y))
        run_theirs = training_step(torch, theirs, xt, torch.from_numpy(y))
        got, want = np.array([run_ours()]), np.array([run_theirs()])  # the first step's losses
        same_top1 = True
    else:
        with tinytorch.no_grad(), torch.no_grad():
            got, want = ours(xo).numpy(), theirs(xt).numpy()
        same_top1 = bool((got.argmax(1) == want.argmax(1)).all())

        def run_ours():
            with tinytorch.no_grad():
                ours(xo)

        def run_theirs():
            with torch.no_grad():
                theirs(xt)
    times = {"tinytorch": [], "torch": []}
    for _ in range(args.rounds):
        times["tinytorch"].append(per_call(run_ours, args.seconds))
        times["torch"].append(per_call(run_theirs, args.seconds))
    ms = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    return {"model": name, "batch": batch, "tinytorch_ms": ms["tinytorch"], "torch_ms": ms["torch"],
            "ratio": ms["torch"] / ms["tinytorch"],
            "max_rel_diff": float(np.abs(got - want).max() / np.abs(want).max()), "same_top1": same_top1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet18,mobilenet_v2,mobilenet_v3_large,shufflenet_v2")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="per library per round")
    parser.add_argument("--train", action="store_true", help="time a training step instead of inference")
    parser.add_argument("--size", type=int, default=96, help="image side for --train")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tinytorch.set_num_threads(args.threads)
    names = args.models.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    unknown = sorted(set(names) - set(models(tinytorch)))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(models(tinytorch))}")
    results, total, done, start = [], len(names) * len(batches), 0, time.perf_counter()
    for name in names:
        for batch in batches:
            row = measure(name, batch, args)
            results.append(row)
            done += 1
            rate = done / (time.perf_counter() - start)
            sys.stderr.write(f"\r[{done}/{total}] {rate * 60:.1f} runs/min, ETA {(total - done) / rate:4.0f} s  "
                             f"{name} batch {batch}: {row['ratio']:.2f}x   ")
    sys.stderr.write("\n")
    print(f"{'model':20s} {'batch':>5s} {'tinytorch ms':>13s} {'torch ' + torch.__version__ + ' ms':>22s} {'ratio':>7s}")
    for r in results:
        print(f"{r['model']:20s} {r['batch']:5d} {r['tinytorch_ms']:13.2f} {r['torch_ms']:22.2f} {r['ratio']:6.2f}x"
              f"  (max diff {r['max_rel_diff']:.1e}{'' if r['same_top1'] else ', top-1 differs'})")
    os.makedirs(args.out, exist_ok=True)
    tag = ("train_" if args.train else "") + "torch" + torch.__version__.split("+")[0].split(".")[0]
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_name(),
            "threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
            "isa": os.environ.get("TINYTORCH_ISA", "native"),
            "mode": f"training step, {args.size}x{args.size} images" if args.train else "inference, 224x224"}
    path = os.path.join(args.out, f"eager_models_{tag}.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    os.replace(path + ".tmp", path)
    plot(results, meta, os.path.join(args.out, f"eager_models_{tag}.png"))
    print(f"wrote {path}")


def plot(results, meta, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batches = sorted({r["batch"] for r in results})
    names = list(dict.fromkeys(r["model"] for r in results))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(batches)
    for i, b in enumerate(batches):
        ratios = [next((r["ratio"] for r in results if r["model"] == n and r["batch"] == b), 0) for n in names]
        ax.bar(np.arange(len(names)) + i * width, ratios, width, label=f"batch {b}")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(names)) + width * (len(batches) - 1) / 2, names)
    ax.set_ylabel(f"speed-up over PyTorch {meta['torch'].split('+')[0]} eager")
    ax.set_title(f"PyTorch-style models run eagerly ({meta['mode']}), {meta['threads']} threads, "
                 f"{meta['cpu'][:32]}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)


if __name__ == "__main__":
    main()

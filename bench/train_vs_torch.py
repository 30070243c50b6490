#!/usr/bin/python3
"""One training epoch of the default CNN on Fashion-MNIST: tinytorch against PyTorch, same model,
batch size, optimizer (Adam, lr 1e-3) and thread count, data held in memory by both, alternating
runs in one invocation. Reports each library's median epoch time and the ratio, and the peak
resident memory of each run.

usage: /usr/bin/python3 bench/train_vs_torch.py [--threads 2] [--runs 2] [--limit 60000]
"""
import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"


def load(limit):
    with gzip.open(f"{DATA}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit]
    with gzip.open(f"{DATA}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:limit]
    return ((x / 255.0 - 0.2860) / 0.3530).astype(np.float32), y.astype(np.int64)


def torch_epoch(args):
    """Runs in a child process (so its peak memory is its own); prints JSON."""
    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = load(args.limit)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    order = torch.randperm(len(y))
    start = time.perf_counter()
    for b in range(0, len(y), args.batch):
        idx = order[b:b + args.batch]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(seconds=seconds, peak_mib=peak, final_loss=float(loss))))


def ours_epoch(args, tinytorch_bin):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.json")
        cmd = ["/usr/bin/time", "-f", "%M", tinytorch_bin, "train", "--epochs", "1", "--batch", str(args.batch),
               "--threads", str(args.threads), "--limit", str(args.limit), "--schedule", "none", "--metrics", metrics,
               "--plot", os.path.join(tmp, "curve")]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        peak_kib = int(r.stderr.strip().splitlines()[-1])
        m = json.loads(open(metrics).read().splitlines()[0])
        return dict(seconds=m["epoch_seconds"], peak_mib=peak_kib / 1024, test_accuracy=m["test_accuracy"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int, default=60000)
    ap.add_argument("--tinytorch", default=os.path.join(os.path.dirname(HERE), "build", "bin", "tinytorch"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return torch_epoch(args)
    ours, peer = [], []
    for run in range(args.runs):
        sys.stderr.write(f"\rrun {run + 1}/{args.runs}: tinytorch ...")
        ours.append(ours_epoch(args, args.tinytorch))
        sys.stderr.write(f"\rrun {run + 1}/{args.runs}: PyTorch ...  ")
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--threads", str(args.threads),
                              "--batch", str(args.batch), "--limit", str(args.limit)],
                             capture_output=True, text=True, check=True)
        peer.append(json.loads(out.stdout.strip().splitlines()[-1]))
    sys.stderr.write("\n")
    o = float(np.median([r["seconds"] for r in ours]))
    t = float(np.median([r["seconds"] for r in peer]))
    print(f"one epoch, {args.limit} images, batch {args.batch}, Adam, {args.threads} thread(s):")
    print(f"  tinytorch {o:7.2f} s   peak RSS {max(r['peak_mib'] for r in ours):7.1f} MiB")
    print(f"  PyTorch   {t:7.2f} s   peak RSS {max(r['peak_mib'] for r in peer):7.1f} MiB")
    print(f"  ours / PyTorch = {o / t:.2f} (target: at most 0.70)")


if __name__ == "__main__":
    main()

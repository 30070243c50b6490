#!/usr/bin/python3
"""Kill-anywhere resume: a training run is killed with SIGKILL at random moments (at least 20
times, at least one of them inside a checkpoint save) and resumed each time, alternating between 1
and 2 threads; its final checkpoint (weights, buffers, optimizer state) and its metrics must be
bit-identical to an uninterrupted run with the same seed.

usage: kill_resume.py TINYTORCH WORKDIR [--kills N]
"""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

from synthetic_mnist import make_mnist

DETERMINISTIC = ("epoch", "train_loss", "test_loss", "test_accuracy", "lr")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {name: data[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]] for name, e in header.items()}
    return tensors, meta


def metrics_rows(path):
    with open(path) as f:
        return [{k: row[k] for k in DETERMINISTIC} for row in map(json.loads, f.read().splitlines())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tinytorch")
    ap.add_argument("workdir")
    ap.add_argument("--kills", type=int, default=20)
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    rng = random.Random(int(os.environ.get("KILL_SEED", time.time_ns() % 2**32)))
    data = make_mnist(os.path.join(args.workdir, "mnist"), train=960, test=200)  # small: many restarts
    common = ["train", "--data", data, "--epochs", "2", "--limit", "960", "--batch", "32", "--seed", "7", "--augment",
              "--checkpoint-every", "1"]

    def run_args(stem, threads):
        d = os.path.join(args.workdir, stem)
        return [args.tinytorch] + common + ["--threads", str(threads), "--checkpoint", d + ".st", "--metrics",
                                            d + ".jsonl", "--plot", d + "_curve"]

    # The uninterrupted run.
    subprocess.run(run_args("whole", 2), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ckpt = os.path.join(args.workdir, "killed.st")
    kills = inside_save = 0
    threads = 1
    finished = False
    while not finished:
        cmd = run_args("killed", threads) + (["--resume"] if os.path.exists(ckpt) else [])
        before = os.stat(ckpt).st_mtime_ns if os.path.exists(ckpt) else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < args.kills or inside_save == 0:
            # Wait until training runs (a save after this start), then kill at a random moment.
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline:
                if os.path.exists(ckpt) and os.stat(ckpt).st_mtime_ns != before:
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.12))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                kills += 1
                temps = [f for f in os.listdir(args.workdir) if f.startswith(".killed.st.tmp-")]
                inside_save += bool(temps)
                threads = 3 - threads
                if kills > 200:
                    sys.exit("no kill landed inside a save in 200 tries")
                continue
        err = proc.communicate()[1]
        if proc.returncode != 0:
            sys.exit(f"the resumed run failed ({proc.returncode}): {err.decode()}")
        finished = True

    whole_t, whole_meta = read_safetensors(os.path.join(args.workdir, "whole.st"))
    killed_t, killed_meta = read_safetensors(ckpt)
    assert whole_t.keys() == killed_t.keys(), (whole_t.keys(), killed_t.keys())
    differing = [name for name in whole_t if whole_t[name] != killed_t[name]]
    assert not differing, f"tensors differ after {kills} kills: {differing}"
    for key in ("epoch", "batch", "loss_sum", "seen", "generator", "optimizer_steps"):
        assert whole_meta[key] == killed_meta[key], (key, whole_meta[key], killed_meta[key])
    whole_rows = metrics_rows(os.path.join(args.workdir, "whole.jsonl"))
    killed_rows = metrics_rows(os.path.join(args.workdir, "killed.jsonl"))
    assert len(whole_rows) == 2 and whole_rows == killed_rows, (whole_rows, killed_rows)
    leftovers = [f for f in os.listdir(args.workdir) if ".tmp-" in f]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    print(f"kill-anywhere resume: {kills} kills ({inside_save} inside a save), threads alternating 1/2: "
          f"{len(whole_t)} tensors and {len(whole_rows)} metrics rows bit-identical to the uninterrupted run")


if __name__ == "__main__":
    main()

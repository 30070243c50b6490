#!/usr/bin/python3
"""Draws the PNG charts of the tinytorch tool from the JSON it writes.

usage: plot.py KIND IN.json OUT.png   (OUT.png "-": the PNG goes to stdout)
  KIND threads: {"title", "threads": [1, 2], "series": {name: [seconds per thread count]}}
       -> speed-up over 1 thread per algorithm
  KIND scaling: {"title", "x": [...], "xlabel", "series": {name: [seconds]}} -> time vs x, log-log
  KIND curves:  {"title", "epochs": [{"epoch", "train_loss", "test_loss", "test_accuracy"}, ...]}
       -> losses and test accuracy per epoch
  KIND bars:    {"title", "labels": [...], "values": [...], "ylabel"} -> one bar per label
  KIND distributed: {"title", "ranks": [...], "series": {name: [images/s]}, "efficiency": {name: [0..1]}}
       -> images/s and scaling efficiency per process count
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    kind, src, out = sys.argv[1:]
    d = json.load(open(src))
    if kind == "distributed":
        fig, (ax, eff) = plt.subplots(1, 2, figsize=(13, 5))
        for name, rate in d["series"].items():
            ax.loglog(d["ranks"], rate, marker="o", ms=3, label=name)
            eff.semilogx(d["ranks"], [100 * e for e in d["efficiency"][name]], marker="o", ms=3, label=name)
        for a in (ax, eff):
            a.set_xlabel("processes")
            a.set_xscale("log", base=2)
            a.grid(alpha=0.3)
        ax.set_ylabel("images/s")
        eff.set_ylabel("scaling efficiency (%)")
        eff.set_ylim(0, 105)
        eff.legend(fontsize=7)
        fig.suptitle(d.get("title", ""))
        fig.tight_layout()
        fig.savefig(sys.stdout.buffer if out == "-" else out, dpi=110, format="png")
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if kind == "threads":
        for name, secs in d["series"].items():
            ax.plot(d["threads"], [secs[0] / s for s in secs], marker="o", label=name)
        ax.plot(d["threads"], d["threads"], ls="--", color="gray", label="ideal")
        ax.set_xlabel("threads")
        ax.set_ylabel("speed-up over 1 thread")
        ax.set_xticks(d["threads"])
        ax.legend()
    elif kind == "scaling":
        for name, secs in d["series"].items():
            ax.loglog(d["x"], [s * 1e3 for s in secs], marker="o", label=name)
        ax.set_xlabel(d.get("xlabel", "x"))
        ax.set_ylabel("ms")
        ax.legend()
    elif kind == "curves":
        epochs = [e["epoch"] for e in d["epochs"]]
        ax.plot(epochs, [e["train_loss"] for e in d["epochs"]], marker="o", label="train loss")
        ax.plot(epochs, [e["test_loss"] for e in d["epochs"]], marker="o", label="test loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy")
        ax.set_xticks(epochs)
        acc = ax.twinx()
        acc.plot(epochs, [100 * e["test_accuracy"] for e in d["epochs"]], marker="s", color="tab:green",
                 label="test accuracy")
        acc.set_ylabel("test accuracy (%)")
        lines = ax.get_lines() + acc.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], loc="center right")
    elif kind == "bars":
        ax.bar(d["labels"], d["values"])
        ax.set_ylabel(d.get("ylabel", ""))
        plt.xticks(rotation=30, ha="right")
    else:
        sys.exit(f"unknown kind {kind!r}")
    ax.set_title(d.get("title", ""))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if out == "-":
        fig.savefig(sys.stdout.buffer, dpi=110, format="png")
    else:
        fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whole networks from ONNX: tinytorch against ONNX Runtime, OpenVINO and PyTorch 2, side by side.

The ten torchvision classification CNNs of scripts/export_models.py (random weights, random
batch-norm statistics), each run by:
  - tinytorch: tinytorch.onnx.load(NAME.onnx);
  - ONNX Runtime: the same file, every graph optimization on;
  - OpenVINO: the same file, CPU plugin, f32, its batch fixed per run (it compiles per shape);
  - PyTorch 2 eager: torchvision's Python model definition with the same weights (NAME.pt);
  - PyTorch 2 frozen: that model through torch.jit.script, torch.jit.freeze and
    torch.jit.optimize_for_inference.
Same threads for all; the engines take turns within every round (interleaved), and a time is the
median over rounds of each engine's best call in the round. Batch 1: latency; batch 8:
throughput (images per second). Each engine's output is checked against ONNX Runtime's (relative
to the largest magnitude). Peak memory: each engine loads the model and runs batch 8 in a process
of its own; the figure is that process's peak resident set minus its resident set before loading.

PyTorch 2 and torchvision: Debian's torchvision 0.14 defines the models; PyPI's torchvision does not
import beside the CPU build of PyTorch 2.13. Its Python model code does, once its C++ operators
(detection ops the classification models never call, built for PyTorch 1.13) are left unloaded:
see torchvision_models().

usage: python bench/compare_models.py [--models resnet18,mobilenet_v2] [--threads 2] [--rounds 5]
       in the benchmark venv (bench/requirements.txt) with tinytorch importable. The .onnx files
       are made by scripts/export_models.py with Debian's /usr/bin/python3 if missing (--dir).

Writes bench/results/compare_models.json, compare_models.png and compare_models.md (the README's table).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import types

import numpy as np

from machine import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0",
          "squeezenet1_1", "densenet121", "vgg11", "googlenet"]
ENGINES = ["tinytorch", "onnxruntime", "openvino", "torch", "torch_frozen"]
PEERS = ENGINES[1:]
TORCHVISION_DIR = "/usr/lib/python3/dist-packages/torchvision"


# --- the models -----------------------------------------------------------------------------------

def ensure_exported(names, directory):
    missing = [n for n in names if not all(os.path.exists(os.path.join(directory, n + ext)) for ext in (".onnx", ".pt"))]
    if missing:
        print(f"exporting {', '.join(missing)} with /usr/bin/python3 into {directory}", file=sys.stderr)
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "export_models.py"), directory, "--models",
                        ",".join(missing)], check=True)


def torchvision_models():
    """torchvision.models from Debian's torchvision 0.14, imported beside PyTorch 2.

    Two of torchvision's import-time steps need PyTorch 1.13: loading its compiled operators (a
    library linked against 1.13's C++ ABI, which aborts the process) and registering ONNX
    symbolics for them. Neither concerns the classification models, whose code is plain PyTorch;
    both are skipped here, nothing else is changed."""
    import torch
    if not os.path.isdir(TORCHVISION_DIR):
        sys.exit(f"compare_models: {TORCHVISION_DIR} is missing; apt-get install python3-torchvision")
    shim = os.path.join(os.path.expanduser("~"), ".cache", "tinytorch", "torchvision-shim")
    os.makedirs(shim, exist_ok=True)
    link = os.path.join(shim, "torchvision")
    if not os.path.islink(link):
        os.symlink(TORCHVISION_DIR, link)
    sys.path.insert(0, shim)
    load_library = torch.ops.load_library

    def refuse(path):
        raise OSError("torchvision's C++ operators are built for PyTorch 1.13")

    torch.ops.load_library = refuse
    fake = types.ModuleType("torchvision.ops._register_onnx_ops")
    fake._register_custom_op = lambda: None
    sys.modules["torchvision.ops._register_onnx_ops"] = fake
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchvision.models as tv
    torch.ops.load_library = load_library
    return tv


def torch_model(name, directory):
    import torch
    tv = torchvision_models()
    kwargs = dict(aux_logits=False, init_weights=False) if name == "googlenet" else {}
    model = getattr(tv, name)(**kwargs).eval()
    model.load_state_dict(torch.load(os.path.join(directory, name + ".pt")))
    return model


# --- the engines ----------------------------------------------------------------------------------

def make_engine(engine, name, directory, batch, threads):
    """A callable running the model on a numpy batch, returning a numpy array."""
    path = os.path.join(directory, name + ".onnx")
    if engine == "tinytorch":
        import tinytorch
        tinytorch.set_num_threads(threads)
        model = tinytorch.onnx.load(path)
        return lambda x: model(x).numpy()
    if engine == "onnxruntime":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Workers spin while a run lasts but not after it: the default keeps them spinning for
        # up to a second, which on two cores slows whatever engine takes the next turn.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"input": x})[0]
    if engine == "openvino":
        import openvino as ov
        core = ov.Core()
        model = core.read_model(path)
        model.reshape({"input": [batch, 3, 224, 224]})
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x})[0].copy()
    import torch
    torch.set_num_threads(threads)
    model = torch_model(name, directory)
    if engine == "torch_frozen":
        with torch.inference_mode(False):
            model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))

    def run(x):
        with torch.inference_mode():
            y = model(torch.from_numpy(x))
            return (y.logits if hasattr(y, "logits") else y).numpy()  # scripted GoogLeNet: a named tuple
    return run


def engine_versions():
    versions = {}
    for engine, module in [("tinytorch", "tinytorch"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"),
                           ("torch", "torch")]:
        try:
            versions[engine] = __import__(module).__version__
        except ImportError:
            versions[engine] = None
    return versions


# --- timing ---------------------------------------------------------------------------------------

def best_time(fn, x, seconds):
    """The best call over about `seconds` (at least 2 calls) after one untimed call, which also
    pays for waking the engine's idle threads."""
    fn(x)
    best, start, calls = float("inf"), time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return best


def relative_error(got, want):
    return float(np.abs(got - want).max() / (np.abs(want).max() + 1e-30))


def measure(name, batch, args, engines):
    x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    fns = {e: make_engine(e, name, args.dir, batch, args.threads) for e in engines}
    want = fns["onnxruntime"](x) if "onnxruntime" in fns else None
    row = dict(model=name, batch=batch, errors={}, top1_agrees={}, times={})
    for e, fn in fns.items():
        got = fn(x)
        if want is not None:
            row["errors"][e] = relative_error(got, want)
            row["top1_agrees"][e] = bool((got.argmax(1) == want.argmax(1)).all())
    times = {e: [] for e in fns}
    for _ in range(args.rounds):
        for e, fn in fns.items():
            times[e].append(best_time(fn, x, args.seconds))
    row["times"] = {e: float(np.median(t)) for e, t in times.items()}
    peers = {e: t for e, t in row["times"].items() if e != "tinytorch"}
    if "tinytorch" in row["times"] and peers:
        row["fastest_peer"] = min(peers, key=peers.get)
        row["ratio"] = peers[row["fastest_peer"]] / row["times"]["tinytorch"]
    return row


# --- peak memory, one process per engine and model ------------------------------------------------

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    """This process's resident-set high-water mark (VmHWM). Not getrusage's ru_maxrss, which a
    process started by subprocess inherits from the (larger) benchmark process on Linux."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def memory_child(engine, name, args):
    x = np.random.default_rng(8).standard_normal((8, 3, 224, 224), dtype=np.float32)
    if engine.startswith("torch"):
        torchvision_models()  # imported before the baseline, as the other engines' modules are
    __import__({"tinytorch": "tinytorch", "onnxruntime": "onnxruntime", "openvino": "openvino"}.get(engine, "torch"))
    before = rss_bytes()
    fn = make_engine(engine, name, args.dir, 8, args.threads)
    for _ in range(3):
        fn(x)
    print(json.dumps(dict(peak_bytes=peak_rss_bytes() - before)))


def peak_memory(engine, name, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", engine, "--models", name, "--dir", args.dir,
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


# --- report ---------------------------------------------------------------------------------------


def print_table(rows, memory):
    print(f"{'model':<20} {'batch':>5} " + " ".join(f"{e:>12}" for e in ENGINES) + "   ratio vs fastest peer")
    for r in rows:
        unit = 1e3 if r["batch"] == 1 else None
        cells = []
        for e in ENGINES:
            t = r["times"].get(e)
            if t is None:
                cells.append(f"{'-':>12}")
            elif unit:
                cells.append(f"{t * unit:9.2f} ms")
            else:
                cells.append(f"{r['batch'] / t:8.1f} im/s")
        ratio = f"{r['ratio']:.2f}x ({r['fastest_peer']})" if "ratio" in r else ""
        print(f"{r['model']:<20} {r['batch']:>5} " + " ".join(cells) + "   " + ratio)
    if memory:
        print("\npeak memory at batch 8 (MiB over the process before loading):")
        for name, per in memory.items():
            print(f"  {name:<20} " + " ".join(f"{e}={v / 2**20:.0f}" if v is not None else f"{e}=-"
                                            for e, v in per.items()))


def markdown(rows, memory):
    """The README's table: per model and batch, each engine's latency (batch 1) or images/s
    (batch 8), our ratio to the fastest peer, and peak memory at batch 8."""
    head = "| model | batch | " + " | ".join(ENGINES) + " | ratio to the fastest peer |"
    lines = [head, "|" + "---|" * 2 + "---:|" * (len(ENGINES) + 1)]
    for r in rows:
        cells = []
        for e in ENGINES:
            t = r["times"].get(e)
            cells.append("-" if t is None else (f"{t * 1e3:.1f} ms" if r["batch"] == 1 else f"{r['batch'] / t:.1f}/s"))
        ratio = f"**{r['ratio']:.2f}x** ({r['fastest_peer']})" if "ratio" in r else "-"
        lines.append(f"| {r['model']} | {r['batch']} | " + " | ".join(cells) + f" | {ratio} |")
    if memory:
        lines += ["", "| peak memory at batch 8 (MiB) | " + " | ".join(ENGINES) + " |",
                  "|---|" + "---:|" * len(ENGINES)]
        for name, per in memory.items():
            lines.append(f"| {name} | " + " | ".join("-" if per.get(e) is None else f"{per[e] / 2**20:.0f}"
                                                     for e in ENGINES) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, out, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, batch in zip(axes, (1, 8)):
        sel = [r for r in rows if r["batch"] == batch]
        if not sel:
            continue
        names = [r["model"] for r in sel]
        width = 0.8 / len(ENGINES)
        for i, e in enumerate(ENGINES):
            speed = [(sel[j]["times"]["tinytorch"] / sel[j]["times"][e]) if e in sel[j]["times"] else 0
                     for j in range(len(sel))]
            ax.barh([k + i * width for k in range(len(sel))], speed, width, label=e)
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_yticks([k + 0.4 - width / 2 for k in range(len(sel))], names)
        ax.set_xlabel("speed relative to tinytorch (below 1: slower than tinytorch)")
        ax.set_title(f"batch {batch} " + ("latency" if batch == 1 else "throughput"))
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, "compare_models.png")
    fig.savefig(path, dpi=110)
    return ["compare_models.png"]


def write_json(args, machine, rows, memory):
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "compare_models.json")
    with open(path + ".tmp", "w") as f:
        json.dump(dict(machine, rows=rows, peak_memory_bytes=memory), f, indent=1)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.3, help="per engine per round")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    ap.add_argument("--dir", default=os.path.join(os.path.expanduser("~"), ".cache", "tinytorch", "onnx-models"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    engines = [e for e in args.engines.split(",") if e]
    if any(m not in MODELS for m in names) or any(e not in ENGINES for e in engines):
        sys.exit(f"compare_models: models are {', '.join(MODELS)}; engines are {', '.join(ENGINES)}")
    if args.memory_child:
        return memory_child(args.memory_child, names[0], args)
    ensure_exported(names, args.dir)

    import tinytorch
    machine = dict(cpu=cpu_name(), threads=args.threads, isa=tinytorch.backends.peak_isa(), versions=engine_versions())
    batches = [int(b) for b in args.batches.split(",")]
    rows, memory, start = [], {}, time.perf_counter()
    total = len(names) * len(batches)
    for i, name in enumerate(names):
        for j, batch in enumerate(batches):
            rows.append(measure(name, batch, args, engines))
            done = i * len(batches) + j + 1
            rate = done / (time.perf_counter() - start)
            sys.stderr.write(f"\r[{done}/{total}] {rate * 60:.1f} runs/min, ETA {(total - done) / rate:4.0f} s  "
                             f"{name} batch {batch:<10}")
        if not args.no_memory:
            memory[name] = {e: peak_memory(e, name, args) for e in engines}
        write_json(args, machine, rows, memory)  # after every model: a run cut short keeps what it measured
    sys.stderr.write("\n")
    title = (f"{len(names)} models, {args.threads} threads, {machine['isa']} ({machine['cpu']}); "
             + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v))
    print(title)
    print_table(rows, memory)
    for r in rows:
        for e, err in r["errors"].items():
            if err > 1e-4 or not r["top1_agrees"][e]:
                print(f"  {e} differs from ONNX Runtime on {r['model']} batch {r['batch']}: "
                      f"{err:.1e} relative, top-1 {'agrees' if r['top1_agrees'][e] else 'differs'}")
    images = plot(rows, args.out, title)
    with open(os.path.join(args.out, "compare_models.md"), "w") as f:
        f.write(markdown(rows, memory))
    print("wrote " + ", ".join(["compare_models.json", "compare_models.md"] + images) + " in " + args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

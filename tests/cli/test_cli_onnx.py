"""`tinytorch run MODEL.onnx`: an exported ResNet-18 (scripts/export_models.py, Debian's PyTorch)
run from the command line matches PyTorch's output, written as .npy; random batches, --bench, and
the errors for a missing model, a bad .npy and a wrong input shape, each with its exit code."""
import os
import re
import subprocess

import numpy as np
import pytest

CLI = os.environ.get("TINYTORCH_CLI", "tinytorch")
EXPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "export_models.py")


def exporter_available():
    return subprocess.run(["/usr/bin/python3", "-c", "import torch, torchvision, onnx"],
                          capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not exporter_available(), reason="python3-torchvision or python3-onnx missing")


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    subprocess.run(["/usr/bin/python3", EXPORT, str(out), "--models", "resnet18", "--batch", "2"], check=True,
                   capture_output=True)
    return out


def run(*args):
    return subprocess.run([CLI, "run", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_output_matches_pytorch(resnet, tmp_path):
    out = tmp_path / "y.npy"
    r = run(resnet / "resnet18.onnx", "--input", resnet / "resnet18.input.npy", "--output", out)
    assert r.returncode == 0, r.stderr
    assert "output 'output': (2, 1000)" in r.stdout
    want = np.load(resnet / "resnet18.output.npy")
    got = np.load(out)
    assert got.shape == (2, 1000) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    top = [int(m) for m in re.findall(r"row 0 top-5: (\d+)", r.stdout)]
    assert top == [int(want[0].argmax())]


def test_random_batch_and_bench(resnet):
    r = run(resnet / "resnet18.onnx", "--batch", "3", "--bench", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "input (3, 3, 224, 224)" in r.stdout and "output 'output': (3, 1000)" in r.stdout
    m = re.search(r"latency ([\d.]+) ms per batch of 3 \(median\), ([\d.]+) images/s, 1 threads", r.stdout)
    assert m and float(m.group(1)) > 0 and abs(3000 / float(m.group(1)) - float(m.group(2))) < 0.2


def test_errors_exit_2_with_a_message(resnet, tmp_path):
    r = run(tmp_path / "missing.onnx")
    assert r.returncode == 2 and "cannot open" in r.stderr
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}")
    r = run(resnet / "resnet18.onnx", "--input", bad)
    assert r.returncode == 2 and "not a valid .npy file" in r.stderr
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((1, 3, 32, 32), np.float32))
    r = run(resnet / "resnet18.onnx", "--input", small)
    assert r.returncode == 2 and "expects shape (N, 3, 224, 224), got (1, 3, 32, 32)" in r.stderr
    r = run()
    assert r.returncode == 2 and "expected the model file" in r.stderr


def test_inspect_prints_the_optimized_graph_and_memory_plan(resnet, tmp_path):
    report = tmp_path / "r.json"
    r = subprocess.run([CLI, "inspect", resnet / "resnet18.onnx", "--profile", "2", "--json", report],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "24 nodes after the graph passes, input (1, 3, 224, 224)" in r.stdout
    assert "+ residual + relu  (took in Add '/layer1/layer1.0/Add'" in r.stdout
    assert re.search(r"total: 3\.6\d\d GFLOP, 11684712 parameters", r.stdout), r.stdout[-400:]
    m = re.search(r"intermediate tensors ([\d.]+) MiB in all; at most ([\d.]+) MiB alive at once.*\n.*arena by "
                  r"lifetime: ([\d.]+) MiB", r.stdout)
    total, peak, arena = map(float, m.groups())
    assert peak <= arena < total
    import json
    data = json.loads(report.read_text())
    assert len(data["nodes"]) == 24 and data["timed_runs"] == 2
    conv1 = data["nodes"][0]
    assert conv1["op"] == "Conv" and conv1["output_shapes"] == [[1, 64, 112, 112]]
    assert conv1["flops"] == 2 * 64 * 112 * 112 * 3 * 7 * 7 and conv1["params"] == 64 * 3 * 7 * 7 + 64
    assert sum(n["params"] for n in data["nodes"]) == data["params"] == 11684712  # BatchNormalization folded by the exporter
    r = subprocess.run([CLI, "inspect", resnet / "resnet18.onnx", "--no-optimize"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "49 nodes after the graph passes" in r.stdout

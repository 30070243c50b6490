"""`tinytorch analyze --json`: each form parsed as strict JSON and its values checked, with the
exit code (a regex over the output once passed whatever the exit code was)."""
import json
import os
import subprocess

CLI = os.environ.get("TINYTORCH_CLI", "tinytorch")


def analyze(*args):
    r = subprocess.run([CLI, "analyze", "--json", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(r.stdout, parse_constant=refuse)


def test_seed_questions():
    d = analyze("--batch", "2")
    demo = d["demo_cnn"]
    assert demo["batch"] == 2
    assert [layer["name"] for layer in demo["layers"]][:2] == ["Input", "Conv1"]
    assert demo["layers"][0]["output_shape"] == [2, 3, 28, 28]
    assert demo["layers"][1]["output_shape"] == [2, 16, 26, 26] and demo["layers"][1]["parameters"] == 448
    assert sum(layer["parameters"] for layer in demo["layers"]) == 13098
    assert demo["parameter_bytes"] == 13098 * 4
    assert demo["flops"] == sum(layer["flops"] for layer in demo["layers"])
    assert {"in_channels": 32, "out_channels": 128, "parameters": 36992, "bytes": 36992 * 4} in d["parameter_memory"]
    sizes = [row["size"] for row in d["conv_scaling"]]
    assert sizes == sorted(sizes) and all(row["conv2d_3to16_seconds"] > 0 for row in d["conv_scaling"])


def test_loop_orders_compute_the_same_convolution():
    d = analyze("--loops", "--size", "12", "--channels", "4")
    assert d["shape"] == {"C": 4, "OC": 4, "H": 12, "W": 12, "kernel": 3, "padding": 1}
    names = [v["name"] for v in d["variants"]]
    assert names[:4] == ["output-stationary", "channel-outer", "row-stationary", "cache-blocked"]
    assert names[4].startswith("fast path")
    assert all(v["max_abs_error"] < 1e-4 and v["seconds"] > 0 for v in d["variants"])


def test_thread_scaling():
    d = analyze("--threads", "2")
    assert d["threads"] == [1, 2]
    assert "winograd" in d["series"]
    assert all(len(secs) == 2 and min(secs) > 0 for secs in d["series"].values())


def test_training_memory():
    d = analyze("--train", "--batch", "8")
    assert d["batch"] == 8 and d["checkpointing_implemented"] is False
    assert d["measured_peak_bytes"] > 0 and d["predicted_peak_bytes"] > 0
    assert d["parameter_bytes"] == 421834 * 4 and d["optimizer_bytes"] == 2 * d["parameter_bytes"]
    # The prediction is within 25% of the measured peak (the tensors it counts).
    assert abs(d["predicted_peak_bytes"] - d["measured_peak_bytes"]) < 0.25 * d["measured_peak_bytes"]


def test_verbose_says_which_kernels_run_and_why():
    env = dict(os.environ, TINYTORCH_VERBOSE="1")
    r = subprocess.run([CLI, "demo", "--threads", "1"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("tinytorch: ")]
    assert any(line.startswith("tinytorch: micro-kernels: avx") for line in lines), lines
    # The seed's first layer at batch 1, once (not once per call), with the heuristic's reason.
    first = [line for line in lines if "conv2d 1x3x28x28 -> 16, 3x3" in line]
    assert len(first) == 1 and first[0].endswith(": direct (heuristic: batch 1)"), lines
    r = subprocess.run([CLI, "demo", "--threads", "1", "--conv-algo", "reference"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert any(": reference (forced" in line for line in r.stderr.splitlines()), r.stderr
    quiet = subprocess.run([CLI, "demo", "--threads", "1"], capture_output=True, text=True, timeout=60)
    assert "tinytorch: " not in quiet.stderr

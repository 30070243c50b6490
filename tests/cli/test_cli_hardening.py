"""The tinytorch command under attack and misuse: exit codes, messages and the files it leaves,
parsed rather than matched with a regex. Each test reproduces a defect that once ran a shell
command, lost a write, hung or crashed.

Run by CTest with TINYTORCH_CLI set to the built tool."""
import atexit
import json
import os
import resource
import shutil
import signal
import struct
import subprocess

import pytest

from synthetic_mnist import make_mnist

CLI = os.environ.get("TINYTORCH_CLI", "tinytorch")
# A small MNIST-format folder (tests/cli/synthetic_mnist.py): the same code paths as Fashion-MNIST,
# in a fraction of the time (these runs also go through AddressSanitizer in CI).
DATA_DIR = make_mnist(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tinytorch_cli_mnist_{os.getpid()}"))
SHORT = ["train", "--data", DATA_DIR, "--limit", "64", "--epochs", "1", "--batch", "32", "--threads", "1"]
atexit.register(shutil.rmtree, DATA_DIR, True)


def run(args, cwd=None, timeout=120, **kw):
    return subprocess.run([CLI] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def strict_json(text):
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def rewrite_metadata(src, dst, **changes):
    """A copy of a safetensors file with some metadata values changed (None removes the key)."""
    data = open(src, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    for key, value in changes.items():
        if value is None:
            header["__metadata__"].pop(key)
        else:
            header["__metadata__"][key] = value
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])


def test_plot_path_is_never_shell_syntax(tmp_path):
    pwned = tmp_path / "PWNED"
    # The form: the path has slashes, so its folder does not exist; the shell command once
    # ran anyway (and the failed JSON write went unnoticed).
    r = run(SHORT + ["--plot", f"{tmp_path}/x'; touch {pwned}; echo '"], cwd=tmp_path)
    assert r.returncode == 1 and "cannot write" in r.stderr and "No such file or directory" in r.stderr, r.stderr
    assert not pwned.exists()  # once created through system()
    stem = "x'; touch PWNED; echo '"  # a legal file name in the working folder
    r = run(SHORT + ["--plot", stem], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not pwned.exists()
    assert strict_json(open(tmp_path / (stem + ".json")).read())["epochs"][0]["epoch"] == 1
    r = run(SHORT + ["--plot", "it's"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote it's.json and it's.png" in r.stdout  # once a false "matplotlib unavailable"
    assert open(tmp_path / "it's.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("target", ["/dev/full", "DIR"])
def test_metrics_and_plot_targets_that_are_not_files_fail(tmp_path, target):
    target = str(tmp_path) if target == "DIR" else target
    for option in ("--metrics", "--checkpoint"):
        r = run(SHORT + [option, target], cwd=tmp_path)
        assert r.returncode == 2, (option, r.stdout, r.stderr)  # once: exit 0 and "wrote ..."
        assert "not a regular file" in r.stderr
    os.mkdir(tmp_path / "p.json")
    r = run(SHORT + ["--plot", str(tmp_path / "p")], cwd=tmp_path)
    assert r.returncode == 2 and "is a directory, not a regular file" in r.stderr, r.stderr


def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # a full disk after 64 bytes


def test_bench_json_write_failure_is_an_error_and_keeps_the_old_file(tmp_path):
    shapes = tmp_path / "shapes.csv"
    shapes.write_text('odd"name\\,1,2,5,5,2,3,3,1,1,1,1\n')
    out = tmp_path / "out.json"
    out.write_text("previous results\n")
    r = run(["bench", "--shapes", str(shapes), "--min-time", "0.001", "--json", str(out)],
            preexec_fn=limit_file_size)
    assert r.returncode == 1 and f"cannot write '{out}'" in r.stderr, (r.returncode, r.stderr)
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    r = run(["bench", "--shapes", str(shapes), "--min-time", "0.001", "--json", "/dev/full"])
    assert r.returncode == 2 and "not a regular file" in r.stderr
    # A name with a quote once gave invalid JSON.
    r = run(["bench", "--shapes", str(shapes), "--min-time", "0.001", "--json", str(out)])
    assert r.returncode == 0, r.stderr
    result = strict_json(out.read_text())
    assert result["results"][0]["shape"] == 'odd"name\\' and result["results"][0]["ms"] > 0


@pytest.mark.parametrize("row,message", [
    ("g0,1,4,8,8,4,3,3,1,1,1,0", "groups must be in [1, 2^24], got 0"),  # once SIGFPE
    ("g3,1,4,8,8,4,3,3,1,1,1,3", "groups 3 must divide C 4 and K 4"),
    ("s0,1,4,8,8,4,3,3,0,1,1,1", "stride must be in [1, 2^24], got 0"),
    ("huge,65536,1024,1024,1024,1,1,1,1,0,1,1", "more than 2^31 elements"),
    ("short,1,2,3", "expected 12 fields"),
    ("long,1,4,8,8,4,3,3,1,1,1,1,9", "expected 12 fields"),
])
def test_bench_rows_are_validated_before_use(tmp_path, row, message):
    shapes = tmp_path / "s.csv"
    shapes.write_text(row + "\n")
    r = run(["bench", "--shapes", str(shapes), "--min-time", "0.001"])
    assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr)


def test_fifos_and_devices_are_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args, kind in ((["eval", "--checkpoint", str(fifo)], "a FIFO"),
                       (["bench", "--shapes", str(fifo)], "a FIFO"),
                       (["bench", "--shapes", "/dev/zero"], "a character device"),
                       (["eval", "--checkpoint", str(tmp_path)], "a directory")):
        r = run(args, timeout=20)  # each once hung or read forever
        assert r.returncode == 2 and f"is {kind}, not a regular file" in r.stderr, (args, r.stderr)


def test_resume_validates_the_checkpoints_metadata(tmp_path):
    ckpt = tmp_path / "c.st"
    r = run(SHORT + ["--checkpoint", str(ckpt), "--checkpoint-every", "1", "--epochs", "2", "--limit", "128"],
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for changes, message in (
            ({"epoch": "-2"}, "metadata 'epoch' must be an integer in [0, 2], got '-2'"),  # once trained 3 epochs
            ({"epoch": "abc"}, "metadata 'epoch' must be an integer"),  # once "error: stoll"
            ({"optimizer_steps": "9223372036854775807"}, "optimizer_steps must be a count"),  # once NaN weights
            ({"optimizer_steps": "3"}, "metadata 'optimizer_steps' is 3 but the run trained 8 batches"),
            ({"generator": "zz"}, "metadata 'generator' is not a generator state"),
            ({"generator": None}, "metadata 'generator' is missing"),
            ({"history": "[]"}, "metadata 'history' must be a JSON array of one row per finished epoch (2)"),
            ({"seed": "5"}, "metadata 'seed' is 5 but this run has --seed 0"),
            ({"loss_sum": "nan"}, "metadata 'loss_sum' must be a finite number")):
        bad = tmp_path / "bad.st"
        rewrite_metadata(ckpt, bad, **changes)
        r = run(SHORT + ["--checkpoint", str(bad), "--resume", "--epochs", "2", "--limit", "128"], cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr, (changes, r.stderr)
    r = run(SHORT + ["--checkpoint", str(ckpt), "--resume", "--epochs", "2", "--limit", "128", "--batch", "16"],
            cwd=tmp_path)
    assert r.returncode == 2 and "metadata 'batch_size' is 32 but this run has --batch 16" in r.stderr


def test_a_diverged_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt, metrics = tmp_path / "c.st", tmp_path / "m.jsonl"
    metrics.write_text('{"run": "someone else", "epoch": 1}\n# a note\n')
    r = run(["train", "--data", DATA_DIR, "--lr", "10", "--optimizer", "sgd", "--weight-decay", "1", "--limit", "640",
             "--batch", "16",
             "--epochs", "1", "--checkpoint", str(ckpt), "--checkpoint-every", "2", "--metrics", str(metrics)],
            cwd=tmp_path)
    # Once: "train_loss": -nan in the metrics and training carried on.
    assert r.returncode == 1 and "training diverged: the loss is nan" in r.stderr, (r.returncode, r.stderr)
    assert f"'{ckpt}' holds the last good state" in r.stderr
    assert metrics.read_text() == '{"run": "someone else", "epoch": 1}\n# a note\n'
    r = run(["eval", "--data", DATA_DIR, "--checkpoint", str(ckpt)])
    assert r.returncode == 0, r.stderr


def test_metrics_keep_other_runs_lines_and_are_strict_json(tmp_path):
    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"run": "someone else", "epoch": 1}\n# a note\n')
    r = run(SHORT + ["--metrics", str(metrics), "--epochs", "2"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = metrics.read_text().splitlines()
    assert lines[:2] == ['{"run": "someone else", "epoch": 1}', "# a note"]
    rows = [strict_json(line) for line in lines[2:]]
    assert [row["epoch"] for row in rows] == [1, 2] and rows[0]["run"] == rows[1]["run"]
    assert all(row["train_loss"] > 0 and 0 <= row["test_accuracy"] <= 1 for row in rows)

"""`mpirun -np N tinytorch train`: data parallelism over MPI. 2 and 3 processes over loopback TCP
(Open MPI's shared-memory transport off, so the gradients really cross a socket) against one
process at the same global batch and seed; the deterministic mode bit for bit from run to run; a
global batch that does not divide; a process killed mid-epoch, then the run resumed from its last
checkpoint with another number of processes."""
import json
import os
import shutil
import signal
import struct
import subprocess
import time

import numpy as np
import pytest

CLI = os.environ.get("TINYTORCH_CLI", "tinytorch")
DATA = "/usr/share/datasets/fashion-mnist"
MPIRUN = shutil.which("mpirun")

pytestmark = [
    pytest.mark.skipif(MPIRUN is None, reason="Open MPI's mpirun is not installed (openmpi-bin)"),
    pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist is not installed"),
]

# Root may run MPI jobs here (CI runs as root); loopback TCP only, shared memory off.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="tcp,self",
           OMPI_MCA_btl_tcp_if_include="lo", OMPI_MCA_oob_tcp_if_include="lo", OMPI_MCA_rmaps_base_oversubscribe="1")
# SGD with Nesterov momentum, synchronized batch norm, dropout on (as one process draws it).
TRAIN = ["train", "--epochs", "1", "--optimizer", "sgd", "--lr", "0.01", "--sync-bn", "--schedule", "none"]


def run(ranks, args, timeout=600):
    cmd = [CLI, *args] if ranks == 0 else [MPIRUN, "-np", str(ranks), CLI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def tensors(path):
    """A safetensors file's float32 tensors (the format: header length, JSON header, raw data)."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            begin, end = info["data_offsets"]
            out[name] = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=np.float32).reshape(info["shape"])
    return out


def losses(stdout):
    """(train loss, test loss) of the line `epoch 1: train loss X, test loss Y, ...`."""
    line = next(line for line in stdout.splitlines() if line.startswith("epoch 1:"))
    words = line.replace(",", " ").split()
    return float(words[words.index("train") + 2]), float(words[words.index("test") + 2])


def train(ranks, steps, batch, d):
    d.mkdir(exist_ok=True)
    args = TRAIN + ["--limit", str(steps * batch), "--batch", str(batch), "--checkpoint", str(d / "ckpt"),
                    "--plot", str(d / "curve")]
    r = run(ranks, args)
    assert r.returncode == 0, r.stderr
    return r.stdout, tensors(d / "ckpt")


def largest_difference(got, want):
    """The largest relative difference (in norm) over the model's tensors that matter: the biases right
    before batch norm (layers 0 and 4) have no effect and a zero gradient, so they hold noise."""
    assert set(got) == set(want)
    return max((float(np.linalg.norm(got[k].astype(np.float64) - want[k]) / max(np.linalg.norm(want[k]), 1e-12)), k)
               for k in want if k[0].isdigit() and k not in ("0.bias", "4.bias"))


@pytest.mark.parametrize("ranks,batch", [(2, 64), (3, 63)])
def test_ranks_follow_one_process(tmp_path, ranks, batch):
    # 63 over 3 processes: 21 each. Every shard's loss counts by its share of the global batch.
    _, want = train(0, 10, batch, tmp_path / "one10")
    out, got = train(ranks, 10, batch, tmp_path / "many10")
    assert f"data parallel: {ranks} processes" in out
    assert out.count("epoch 1:") == 1  # rank 0 alone prints
    assert largest_difference(got, want)[0] <= 2e-3, largest_difference(got, want)  # 10 steps: rounding apart
    allreduce = [line for line in out.splitlines() if line.startswith("gradient allreduce:")]
    assert allreduce and "MB per step" in allreduce[0] and "exposed" in allreduce[0]
    # After 50 steps the rounding differences (sums split across processes) have grown as they do
    # in one process between two learning rates one float apart: the losses agree, the weights
    # to a few percent.
    want_out, want = train(0, 50, batch, tmp_path / "one50")
    out, got = train(ranks, 50, batch, tmp_path / "many50")
    (train_loss, test_loss), (want_train, want_test) = losses(out), losses(want_out)
    assert abs(train_loss - want_train) <= 2e-3 and abs(test_loss - want_test) <= 5e-3
    assert largest_difference(got, want)[0] <= 0.1, largest_difference(got, want)


def test_deterministic_mode_is_bit_identical(tmp_path):
    args = ["train", "--epochs", "1", "--limit", "640", "--batch", "64", "--deterministic", "--plot",
            str(tmp_path / "curve")]
    first = run(2, args + ["--checkpoint", str(tmp_path / "a")])
    second = run(2, args + ["--checkpoint", str(tmp_path / "b")])
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = tensors(tmp_path / "a"), tensors(tmp_path / "b")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_batch_that_does_not_divide_is_an_error(tmp_path):
    r = run(2, ["train", "--batch", "63", "--plot", str(tmp_path / "curve")])
    assert r.returncode != 0
    assert "--batch 63 (the global batch) does not divide among 2 processes" in r.stderr


def test_bad_input_on_one_process_stops_the_job(tmp_path):
    # Two programs in one job (MPI's MPMD form): process 1 reads a data folder without the files,
    # as if its machine's copy were missing, while process 0 goes on to the first allreduce.
    (tmp_path / "empty").mkdir()
    args = ["train", "--epochs", "1", "--limit", "640", "--batch", "64", "--plot", str(tmp_path / "curve")]
    started = time.time()
    r = subprocess.run([MPIRUN, "-np", "1", CLI, *args, ":", "-np", "1", CLI, *args, "--data", str(tmp_path / "empty")],
                       capture_output=True, text=True, timeout=120, env=ENV)
    assert time.time() - started < 60
    assert r.returncode != 0
    assert "error: process 1 of 2: " in r.stderr and str(tmp_path / "empty") in r.stderr, r.stderr


def test_a_killed_process_stops_the_job_and_the_run_resumes(tmp_path):
    ckpt = tmp_path / "ckpt"
    args = ["train", "--epochs", "2", "--limit", "6400", "--batch", "64", "--checkpoint", str(ckpt),
            "--checkpoint-every", "10", "--plot", str(tmp_path / "curve")]
    job = subprocess.Popen([MPIRUN, "-np", "2", CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=ENV)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.1)
    assert ckpt.exists(), "no checkpoint was written"
    victim = None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK=1" in env and str(ckpt).encode() in cmd:
            victim = int(pid)
    assert victim is not None
    killed = time.time()
    os.kill(victim, signal.SIGKILL)
    out, err = job.communicate(timeout=60)
    assert time.time() - killed < 30
    assert job.returncode != 0
    assert "rank 1" in err and "signal 9" in err
    # The last checkpoint, resumed by one process: it finishes both epochs.
    r = run(0, args + ["--resume"])
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr and "epoch 2:" in r.stdout


def namespaces_available():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"ttprobe{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return True


@pytest.fixture
def two_hosts(tmp_path):
    """Two network namespaces joined by a veth pair: "hosts" 10.231.0.1 and 10.231.0.2, each with its
    own interfaces, addresses and host name. The launcher agent stands in for ssh: it runs Open MPI's
    daemon inside the namespace of the address it is given."""
    if not namespaces_available():
        pytest.skip("network namespaces need root and iproute2 (ip netns)")
    tag = str(os.getpid() % 100000)
    hosts = {"10.231.0.1": f"tthostA{tag}", "10.231.0.2": f"tthostB{tag}"}
    ends = [f"ttva{tag}", f"ttvb{tag}"]

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        for ns in hosts.values():
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", ends[0], "type", "veth", "peer", "name", ends[1])
        for (address, ns), end in zip(hosts.items(), ends):
            ip("link", "set", end, "netns", ns)
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", end)
            ip("-n", ns, "link", "set", end, "up")
        agent = tmp_path / "netns-agent"
        # Called as `agent HOST COMMAND...`, as ssh would be; the command is a shell line.
        cases = "".join(f'  {address}) ns={ns} ;;\n' for address, ns in hosts.items())
        agent.write_text("#!/bin/sh\nhost=$1; shift\ncase $host in\n" + cases +
                         '  *) echo "netns-agent: unknown host $host" >&2; exit 1 ;;\nesac\n'
                         'exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"\n')
        agent.chmod(0o755)
        yield list(hosts.items()), agent
    finally:
        for ns in hosts.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_a_job_across_two_network_namespaces(tmp_path, two_hosts):
    # mpirun starts in the first namespace; the agent starts the second host's daemon in the other.
    # Only the veth subnet carries MPI's traffic, so every byte crosses between the "hosts".
    (first, first_ns), (second, _), agent = *two_hosts[0], two_hosts[1]
    env = dict(ENV, OMPI_MCA_btl_tcp_if_include="10.231.0.0/24", OMPI_MCA_oob_tcp_if_include="10.231.0.0/24",
               OMPI_MCA_plm_rsh_agent=str(agent))
    args = TRAIN + ["--limit", "640", "--batch", "64", "--checkpoint", str(tmp_path / "ckpt"), "--plot",
                    str(tmp_path / "curve")]
    r = subprocess.run(["ip", "netns", "exec", first_ns, "unshare", "--uts", "sh", "-c",
                        f'hostname {first_ns}; exec "$@"', "sh", MPIRUN, "-np", "2", "--host", f"{first}:1,{second}:1",
                        CLI, *args], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "data parallel: 2 processes" in r.stdout
    # The same weights as one process's, as over loopback.
    _, want = train(0, 10, 64, tmp_path / "one")
    assert largest_difference(tensors(tmp_path / "ckpt"), want)[0] <= 2e-3

"""tinytorch.distributed under mpirun: DistributedDataParallel's gradients against the whole batch
on one process, the collectives and the sampler (tests/python/distributed_worker.py, 2 and 3
processes over loopback TCP); and in one process without mpirun."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import tinytorch as tt
import tinytorch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = shutil.which("mpirun")


needs_mpi = pytest.mark.skipif(MPIRUN is None or not dist.is_available(), reason="no mpirun, or built without MPI")


def mpirun(ranks, script, *args, timeout=300):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="tcp,self",
               OMPI_MCA_btl_tcp_if_include="lo", OMPI_MCA_oob_tcp_if_include="lo",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    forward = ["-x", "PYTHONPATH"] if "PYTHONPATH" in os.environ else []  # a build tree's module
    return subprocess.run([MPIRUN, "-np", str(ranks), *forward, sys.executable, script, *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ddp_gradients_match_the_whole_batch(ranks):
    r = mpirun(ranks, os.path.join(HERE, "distributed_worker.py"), str(ranks))
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(f"rank {k} ok" in r.stdout for k in range(ranks)), r.stdout  # (mpirun may interleave lines)


@needs_mpi
def test_an_exception_in_one_process_ends_the_job(tmp_path):
    # Process 1 fails on its input while process 0 waits for it at a barrier: without the abort,
    # process 1's interpreter would wait in MPI_Finalize and process 0 at the barrier, forever.
    script = tmp_path / "fails.py"
    script.write_text("import tinytorch.distributed as dist\n"
                      "dist.init()\n"
                      "if dist.rank() == 1:\n"
                      "    raise ValueError('shard 1 of the data set is unreadable')\n"
                      "dist.barrier()\n")
    started = time.time()
    r = mpirun(2, str(script), timeout=60)
    assert time.time() - started < 30
    assert r.returncode != 0
    assert "process 1 of 2 stopped the job" in r.stderr and "ValueError: shard 1 of the data set" in r.stderr


def test_one_process_without_mpirun():
    if dist.is_available():
        dist.init()
    assert dist.rank() == 0 and dist.world_size() == 1
    t = tt.Tensor(np.array([1.0, 2.0], dtype=np.float32))
    if dist.is_available():
        assert np.allclose(dist.all_reduce(t, op="avg").numpy(), [1.0, 2.0])
    with pytest.raises(ValueError, match="'sum', 'avg'"):
        dist.all_reduce(t, op="product")
    s = dist.DistributedSampler(list(range(5)), num_replicas=2, rank=1, shuffle=False)
    assert list(s) == [1, 3, 0] and len(s) == 3  # padded by repeating the start, as PyTorch's
    with pytest.raises(ValueError, match="rank 2 of 2"):
        dist.DistributedSampler(list(range(5)), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="shuffle or a sampler"):
        tt.data.DataLoader(list(range(5)), sampler=s, shuffle=True)
    net = tt.nn.Linear(3, 2)
    ddp = dist.DistributedDataParallel(net)
    loss = ddp(tt.Tensor(np.ones((2, 3), dtype=np.float32))).sum()
    loss.backward()
    assert np.allclose(net.weight.grad.numpy(), 2.0)  # one process: the gradient as it is

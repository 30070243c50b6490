"""tinytorch.distributed under mpirun: DistributedDataParallel's gradients against the whole batch
on one process, the collectives and the sampler (tests/python/distributed_worker.py, 2 and 3
processes over loopback TCP); and in one process without mpirun."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinytorch as tt
import tinytorch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = shutil.which("mpirun")


@pytest.mark.skipif(MPIRUN is None or not dist.is_available(), reason="no mpirun, or built without MPI")
@pytest.mark.parametrize("ranks", [2, 3])
def test_ddp_gradients_match_the_whole_batch(ranks):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="tcp,self",
               OMPI_MCA_btl_tcp_if_include="lo", OMPI_MCA_oob_tcp_if_include="lo",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    forward = ["-x", "PYTHONPATH"] if "PYTHONPATH" in os.environ else []  # a build tree's module
    r = subprocess.run([MPIRUN, "-np", str(ranks), *forward, sys.executable,
                        os.path.join(HERE, "distributed_worker.py"), str(ranks)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(f"rank {k} ok" in r.stdout for k in range(ranks)), r.stdout  # (mpirun may interleave lines)


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

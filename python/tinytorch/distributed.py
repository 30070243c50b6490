"""Data-parallel training across processes and machines, on MPI, as torch.distributed and
DistributedDataParallel do it. Launch the script with mpirun (or srun under Slurm):

    mpirun -np 2 python train.py

    import tinytorch.distributed as dist
    dist.init()                                          # rank() and world_size() from mpirun
    model = dist.DistributedDataParallel(make_model())   # rank 0's weights to every process
    sampler = dist.DistributedSampler(train_set, shuffle=True, seed=0)
    loader = tinytorch.data.DataLoader(train_set, batch_size=32, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()                              # gradients averaged over the processes
            optimizer.step()

The gradients are averaged in buckets (the last layers' first), each allreduce started while the
backward pass is still running. Without mpirun, init() makes a job of one process.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from typing import Iterator, List, Optional

import numpy as np

from tinytorch import _tinytorch as _C

DistributedError = _C.DistributedError

__all__ = ["DistributedDataParallel", "DistributedError", "DistributedSampler", "ShardScope", "all_reduce",
           "barrier", "broadcast", "get_rank", "get_world_size", "init", "init_process_group", "is_available",
           "is_initialized", "launched", "rank", "world_size"]

ShardScope = _C.ShardScope


def is_available() -> bool:
    """Whether this build has MPI (libopenmpi-dev when it was built)."""
    return _C.distributed_available()


def launched() -> bool:
    """Whether mpirun, mpiexec or srun started this process."""
    return _C.distributed_launched()


def init() -> None:
    """Joins the MPI job (MPI_Init, once). A process not started by mpirun is a job of one.
    With several processes on a machine, each takes an equal share of its cores for the kernels
    (set_num_threads changes it after)."""
    first = not _C.distributed_initialized()
    _C.distributed_init()
    if first and world_size() > 1:
        _C.set_num_threads(max(1, (os.cpu_count() or 1) // _C.distributed_local_size()))
        sys.excepthook = _abort_on_uncaught(sys.excepthook)


def _abort_on_uncaught(previous):
    """An exception that ends this process's script ends the job: the traceback is printed, naming
    this process, then every process stops (MPI_Abort). Without it, the others would wait for this
    one in their next collective forever, as mpi4py's `python -m mpi4py` also prevents."""
    def hook(kind, value, tb):
        header = f"error: process {rank()} of {world_size()} stopped the job:\n"
        sys.stdout.flush()
        sys.stderr.flush()
        if previous is sys.__excepthook__:
            # One write of the whole text: printed piece by piece, mpirun's forwarding of this
            # process's output could be cut by its own abort notice, mid-line.
            _write_all(2, (header + "".join(traceback.format_exception(kind, value, tb))).encode(errors="replace"))
        else:
            sys.stderr.write(header)
            previous(kind, value, tb)
            sys.stderr.flush()
        time.sleep(0.2)  # the launcher forwards the text before it prints why the job ended
        _C.distributed_abort(1)
    return hook


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def init_process_group(backend: str = "mpi", **_ignored) -> None:
    """torch.distributed's spelling of init(); only the "mpi" backend exists here."""
    if backend != "mpi":
        raise ValueError(f"init_process_group: tinytorch runs on MPI; backend {backend!r} is not available")
    init()


def is_initialized() -> bool:
    return _C.distributed_initialized()


def rank() -> int:
    """This process's rank (0 before init())."""
    return _C.distributed_rank()


def world_size() -> int:
    """The number of processes (1 before init())."""
    return _C.distributed_world_size()


get_rank = rank
get_world_size = world_size


def all_reduce(tensor, op: str = "sum"):
    """In place over every process: 'sum', 'avg', 'max' or 'min' of a float32 or int64 Tensor.
    Returns the tensor."""
    _C.distributed_all_reduce(tensor, op)
    return tensor


def broadcast(tensor, src: int = 0):
    """In place: rank src's values to every process. Returns the tensor."""
    _C.distributed_broadcast(tensor, src)
    return tensor


def barrier() -> None:
    _C.distributed_barrier()


class DistributedDataParallel(_C.Module):
    """Wraps a module for data-parallel training: rank 0's parameters and buffers go to every
    process at construction; in training, each forward arms the gradient reducer, and backward
    averages every parameter's gradient over the processes (bucketed, overlapped with backward).

    sync_batch_norm: batch norm with the statistics of every process's rows (SyncBatchNorm);
    off, each process's own (PyTorch's default). broadcast_buffers: rank 0's buffers (running
    statistics) to every process before each training forward, as PyTorch does. deterministic:
    gradients summed in rank order, bit-identical from run to run."""

    def __init__(self, module, bucket_cap_mb: float = 0.5, broadcast_buffers: bool = True,
                 sync_batch_norm: bool = False, deterministic: bool = False):
        super().__init__()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("DistributedDataParallel: the module has no parameter that requires grad")
        self._reducer = _C.DataParallelReducer(params, max(1, int(bucket_cap_mb * (1 << 20))), deterministic, True)
        self._reducer.broadcast_parameters(self._buffers_list())
        _C.distributed_set_sync_batch_norm(bool(sync_batch_norm))

    def _buffers_list(self) -> List:
        return [b for _, b in self.module.named_buffers()] if hasattr(self.module, "named_buffers") else []

    def forward(self, *args, **kwargs):
        if self.training and _C.is_grad_enabled():
            if self.broadcast_buffers and world_size() > 1:
                for b in self._buffers_list():
                    if b.dtype == np.float32 or b.dtype == np.int64:
                        broadcast(b, 0)
            self._reducer.prepare()
        return self.module(*args, **kwargs)

    def finish_gradients(self) -> None:
        """Completes the averaging when some parameter got no gradient this step (the reducer then
        cannot tell that backward is over); a no-op when it already finished."""
        self._reducer.finish()

    @property
    def communication(self) -> dict:
        """{'steps', 'buckets', 'bytes', 'total_seconds', 'exposed_seconds'} so far."""
        return self._reducer.stats


class DistributedSampler:
    """The indices of one process's share of a dataset, as torch.utils.data.DistributedSampler:
    a permutation of (seed, epoch) when shuffle, padded by repeating its start to a multiple of the
    processes (or cut, drop_last), then every num_replicas-th index from rank. Pass it to
    DataLoader(sampler=...); call set_epoch(epoch) before each epoch."""

    def __init__(self, dataset, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.num_replicas = world_size() if num_replicas is None else int(num_replicas)
        self.rank = globals()["rank"]() if rank is None else int(rank)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} of {self.num_replicas} replicas")
        self.n = len(dataset)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if self.drop_last:
            self.num_samples = self.n // self.num_replicas
        else:
            self.num_samples = math.ceil(self.n / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self.num_samples * self.num_replicas
        if total > len(order):
            order = np.concatenate([order, np.resize(order, total - len(order))])
        order = order[:total]
        return iter(int(i) for i in order[self.rank:total:self.num_replicas])

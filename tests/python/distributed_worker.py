"""Run by test_distributed.py under `mpirun -np N`: checks DistributedDataParallel's averaged
gradients against the whole batch's on one process, the collectives, and the sampler; prints
"rank R ok" when every check passed."""
import sys

import numpy as np

import tinytorch as tt
import tinytorch.distributed as dist
import tinytorch.nn as nn
import tinytorch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


def main():
    dist.init()
    rank, world = dist.rank(), dist.world_size()
    assert world == int(sys.argv[1]), (world, sys.argv)

    # Collectives.
    t = tt.Tensor(np.full(3, rank + 1, dtype=np.float32))
    dist.all_reduce(t)
    assert np.allclose(t.numpy(), world * (world + 1) / 2)
    m = tt.Tensor(np.array([rank], dtype=np.int64))
    dist.all_reduce(m, op="max")
    assert int(m.numpy()[0]) == world - 1
    b = tt.Tensor(np.full(2, 10.0 * rank, dtype=np.float32))
    dist.broadcast(b, src=world - 1)
    assert np.allclose(b.numpy(), 10.0 * (world - 1))
    dist.barrier()

    # Every process builds different weights; DDP starts them all from rank 0's.
    tt.manual_seed(100 + rank)
    net = Net()
    ddp = dist.DistributedDataParallel(net, bucket_cap_mb=0.0005)  # several buckets
    reference = Net()
    reference.load_state_dict({k: v.detach().clone() for k, v in net.state_dict().items()})
    rng = np.random.default_rng(7)  # the same global batch everywhere
    x = rng.standard_normal((4 * world, 2, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 4 * world)
    for step in range(3):
        full = F.cross_entropy(reference(tt.Tensor(x)), tt.Tensor(y))
        for p in reference.parameters():
            p.grad = None
        full.backward()
        rows = slice(4 * rank, 4 * rank + 4)
        loss = F.cross_entropy(ddp(tt.Tensor(x[rows])), tt.Tensor(y[rows]))
        for p in net.parameters():
            p.grad = None
        loss.backward()  # averaged over the processes when the last gradient is in
        for (name, p), q in zip(net.named_parameters(), reference.parameters()):
            got, want = p.grad.numpy(), q.grad.numpy()
            assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), (step, name)
        x = x * 0.9 + 0.1
    assert ddp.communication["steps"] == 3 or world == 1

    # The sampler: shares of equal length that cover the dataset.
    shares = []
    for r in range(world):
        s = dist.DistributedSampler(list(range(10)), num_replicas=world, rank=r, seed=3)
        s.set_epoch(1)
        shares.append(list(s))
    every = [i for share in shares for i in share]
    assert set(every) == set(range(10)) and len(every) == -(-10 // world) * world  # padded to a multiple
    print(f"rank {rank} ok", flush=True)


if __name__ == "__main__":
    main()

"""Data-parallel training of a small CNN on Fashion-MNIST with tinytorch.distributed, written as a
PyTorch DistributedDataParallel script is. Run it under MPI:

    mpirun -np 2 python examples/ddp_fashion_mnist.py --epochs 1

Each process trains on its share of every epoch (DistributedSampler), the gradients are averaged
over the processes during backward, and rank 0 alone prints. Without mpirun it runs as one
process. --limit N trains on the first N images (a quick check).
"""
import argparse
import time

import tinytorch as tt
import tinytorch.distributed as dist
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch.data import DataLoader, FashionMNIST


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="per process")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    dist.init()
    tt.manual_seed(0)  # the same initial weights everywhere (DDP broadcasts rank 0's anyway)
    train = FashionMNIST(args.data, train=True, limit=args.limit)
    test = FashionMNIST(args.data, train=False)
    model = dist.DistributedDataParallel(Net())
    optimizer = tt.optim.Adam(model.parameters(), lr=args.lr)
    sampler = dist.DistributedSampler(train, shuffle=True, seed=0)
    loader = DataLoader(train, batch_size=args.batch, sampler=sampler)
    lead = dist.rank() == 0
    if lead:
        print(f"{dist.world_size()} process(es), {len(sampler)} images each per epoch, batch {args.batch} each")
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        start, seen, total = time.perf_counter(), 0, 0.0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
            total += loss.item() * len(y)
        sums = dist.all_reduce(tt.Tensor([total, float(seen)]))  # every process's loss, for the report
        model.eval()
        correct = 0
        with tt.no_grad():
            for x, y in DataLoader(test, batch_size=500):
                correct += int((model(x).argmax(1) == y).sum().item())
        elapsed = time.perf_counter() - start
        if lead:
            mean = float(sums[0].item()) / float(sums[1].item())
            print(f"epoch {epoch + 1}: train loss {mean:.4f}, test accuracy {100 * correct / len(test):.2f}% "
                  f"({int(sums[1].item()) / elapsed:.0f} images/s over all processes)")
    if lead:
        c = model.communication
        print(f"gradient allreduce: {c['bytes'] / max(c['steps'], 1) / 1e6:.2f} MB per step, "
              f"{1e3 * c['exposed_seconds'] / max(c['steps'], 1):.2f} ms per step exposed")


if __name__ == "__main__":
    main()

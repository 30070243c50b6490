#!/usr/bin/python3
"""A PyTorch training script, run on tinytorch by changing only its import lines.

Everything below the imports is plain PyTorch: a subclassed nn.Module (the CNN of `tinytorch
train`), a DataLoader over numpy arrays, CrossEntropyLoss, Adam with a cosine schedule set
through param_groups, state_dict saved with torch.save and loaded into a fresh model for
evaluation. tests/python/test_pytorch_style.py runs this file twice: as written, and with the
import block swapped for PyTorch's.

usage: python3 examples/pytorch_style.py [--epochs 3] [--limit 0] [--out model.safetensors]
"""
import argparse
import gzip
import math
import os

import numpy as np

# --- imports: the only lines that differ from the PyTorch version ---
import tinytorch as torch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch.utils.data import DataLoader, TensorDataset
# --- end of imports ---

FOLDER = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(FOLDER, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(train, limit=0):
    prefix = "train" if train else "t10k"
    images = read_idx(f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if limit:
        images, labels = images[:limit], labels[:limit]
    images = ((images - 0.2860) / 0.3530)[:, None, :, :]
    return images, labels


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += y.size(0)
    return correct / total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (0: all)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default="pytorch_style_model.safetensors")
    args = ap.parse_args()

    torch.manual_seed(0)
    np.random.seed(0)
    x_train, y_train = fashion_mnist(True, args.limit)
    x_test, y_test = fashion_mnist(False)
    train_loader = DataLoader(TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)), batch_size=64,
                              shuffle=True)
    test_loader = DataLoader(TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test)), batch_size=1000)

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        for group in optimizer.param_groups:  # cosine from lr down to lr / 100, per epoch
            group["lr"] = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs)))
        model.train()
        running = 0.0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item()
        print(f"epoch {epoch + 1}: train loss {running / len(train_loader):.4f}, "
              f"test accuracy {100 * evaluate(model, test_loader):.2f}%", flush=True)

    torch.save(model.state_dict(), args.out)
    restored = Net()
    restored.load_state_dict(torch.load(args.out))
    print(f"restored model: test accuracy {100 * evaluate(restored, test_loader):.2f}%")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Trains tinytorch's default CNN on Fashion-MNIST from Python: the same loop `tinytorch train`
runs in C++, written out with the Python API.

usage: /usr/bin/python3 examples/train_fashion_mnist.py [--epochs 3] [--limit 0] [--batch 64]
"""
import argparse
import sys
import time

import numpy as np

import tinytorch
from tinytorch.data import DataLoader, load_mnist_folder
from tinytorch.functional import cross_entropy
from tinytorch.models import fashion_cnn
from tinytorch.optim import Adam, cosine_lr


def evaluate(model, data):
    model.eval()
    correct, loader = 0, DataLoader(data, 1000, shuffle=False)
    with tinytorch.no_grad():
        for i in range(len(loader)):
            images, labels = loader.batch(i)
            correct += int((model(images).data.argmax(axis=1) == np.array(labels)).sum())
    return correct / len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (0: all)")
    ap.add_argument("--checkpoint", default="", help="save the model here after training")
    args = ap.parse_args()

    tinytorch.manual_seed(0)
    train, test = load_mnist_folder(train=True, limit=args.limit), load_mnist_folder(train=False)
    model = fashion_cnn()
    params = model.parameters()
    for p in params:
        p.requires_grad_()
    optimizer = Adam(params, lr=args.lr)
    loader = DataLoader(train, args.batch, shuffle=True, seed=0)
    for epoch in range(args.epochs):
        optimizer.lr = cosine_lr(args.lr, epoch, args.epochs, args.lr * 0.01)
        model.train()
        loader.start_epoch(epoch)
        start, total = time.perf_counter(), 0.0
        for i in range(len(loader)):
            images, labels = loader.batch(i)
            loss = cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            if i % 50 == 0 or i + 1 == len(loader):
                rate = (i + 1) / (time.perf_counter() - start)
                sys.stderr.write(f"\repoch {epoch + 1} [{i + 1}/{len(loader)}] {rate:.1f} batches/s "
                                 f"loss {total / (i + 1):.4f} ETA {(len(loader) - i - 1) / rate:.0f}s ")
        sys.stderr.write("\n")
        print(f"epoch {epoch + 1}: train loss {total / len(loader):.4f}, test accuracy {100 * evaluate(model, test):.2f}%")
    if args.checkpoint:
        tinytorch.save_checkpoint(args.checkpoint, model, optimizer, {"epoch": str(args.epochs)})


if __name__ == "__main__":
    main()

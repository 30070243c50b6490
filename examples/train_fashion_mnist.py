#!/usr/bin/python3
"""Trains tinytorch's default CNN on Fashion-MNIST from Python: the loop `tinytorch train` runs in
C++ (same model, Adam, cosine schedule, batch 64, seed 0), written with the Python API and a tqdm
progress bar.

usage: python3 examples/train_fashion_mnist.py [--epochs 3] [--limit 0] [--batch 64] [--checkpoint F]
"""
import argparse

from tqdm import tqdm

import tinytorch
from tinytorch.data import DataLoader, FashionMNIST
from tinytorch.models import fashion_cnn
from tinytorch.nn import CrossEntropyLoss
from tinytorch.optim import Adam, cosine_lr


def evaluate(model, loader):
    model.eval()
    correct = seen = 0
    with tinytorch.no_grad():
        for images, labels in loader:
            correct += int((model(images).argmax(dim=1) == labels).sum().item())
            seen += len(labels)
    return correct / seen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (0: all)")
    ap.add_argument("--checkpoint", default="", help="save the model here after training")
    args = ap.parse_args()

    tinytorch.manual_seed(0)
    train = DataLoader(FashionMNIST(train=True, limit=args.limit), args.batch, shuffle=True, seed=0)
    test = DataLoader(FashionMNIST(train=False), 1000)
    model = fashion_cnn()
    optimizer = Adam(model.parameters(), lr=args.lr)
    loss_fn = CrossEntropyLoss()
    for epoch in range(args.epochs):
        optimizer.lr = cosine_lr(args.lr, epoch, args.epochs, args.lr * 0.01)
        model.train()
        total = 0.0
        bar = tqdm(train, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
        for i, (images, labels) in enumerate(bar):
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (i + 1):.4f}")
        accuracy = evaluate(model, test)
        print(f"epoch {epoch + 1}: train loss {total / len(train):.4f}, test accuracy {100 * accuracy:.2f}%")
    if args.checkpoint:
        tinytorch.save_checkpoint(args.checkpoint, model, optimizer, {"epoch": str(args.epochs)})


if __name__ == "__main__":
    main()

"""Datasets and the DataLoader, in PyTorch's and upstream TinyTorch's shape.

    train = FashionMNIST(train=True)                      # Debian's dataset-fashion-mnist files
    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for images, labels in loader:                         # Tensor (64, 1, 28, 28), int64 Tensor (64,)
        ...

    xs, ys = np.random.randn(100, 3).astype(np.float32), np.arange(100) % 2
    for x, y in DataLoader(TensorDataset(xs, ys), batch_size=10):
        ...

Order: with shuffle, epoch e (the e-th iteration over the loader) visits the samples in a
permutation drawn from (seed, e), so the same seed gives the same batches on every run. A tensor
dataset (TensorDataset, FashionMNIST, MNIST) is batched in C++ (a gather per tensor, without the
GIL, the next batch prefetched on a second thread while Python trains on this one); any other
dataset is read sample by sample through __getitem__ and collated in Python.
"""
import concurrent.futures
import os

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor


class Dataset:
    """A map-style dataset: subclass it and define __len__ and __getitem__(index)."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Samples are rows of the given tensors (or numpy arrays): dataset[i] is
    (tensors[0][i], tensors[1][i], ...). All must have the same length."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        lengths = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in lengths or len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got shapes "
                             f"{[tuple(t.shape) for t in self.tensors]}")

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
        return tuple(t[index] for t in self.tensors)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


def random_split(dataset, lengths, seed=0):
    """Splits a dataset into Subsets of the given lengths (or fractions summing to 1), shuffled by
    `seed`."""
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1.0) < 1e-6:
        counts = [int(n * f) for f in lengths]
        counts[0] += n - sum(counts)
    else:
        counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"random_split: the lengths {list(lengths)} do not add up to the dataset's {n} samples")
    order = np.random.default_rng(seed).permutation(n)
    out, at = [], 0
    for c in counts:
        out.append(Subset(dataset, order[at:at + c]))
        at += c
    return out


def _mnist(root, train, limit, mean, std, name):
    if not os.path.isdir(root):
        raise _C.DataError(f"{name}: no folder {root!r} (on Debian: apt-get install dataset-fashion-mnist)")
    data = _C.load_mnist_folder(root, train=train, limit=limit, mean=mean, std=std)
    return TensorDataset(data.images, data.labels)


def FashionMNIST(root="/usr/share/datasets/fashion-mnist", train=True, limit=0):
    """Fashion-MNIST as a TensorDataset of images (N, 1, 28, 28) float32, normalised with the
    training set's mean and std, and int64 labels (N,)."""
    return _mnist(root, train, limit, 0.2860, 0.3530, "FashionMNIST")


def MNIST(root, train=True, limit=0):
    """MNIST from a folder of the four IDX files (gzipped or not), as FashionMNIST."""
    return _mnist(root, train, limit, 0.1307, 0.3081, "MNIST")


def default_collate(samples):
    """Stacks a list of samples into a batch: tensors, arrays and numbers become one Tensor with a
    leading batch dim; tuples and dicts are collated field by field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate([s[i] for s in samples]) for i in range(len(first))) \
            if isinstance(first, tuple) else [default_collate([s[i] for s in samples]) for i in range(len(first))]
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, Tensor):
        return _C.stack(samples, 0)
    return Tensor(np.stack([np.asarray(s) for s in samples]))


class DataLoader:
    """Batches of a dataset, iterable once per epoch.

    DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None,
    sampler=None). With seed=None a shuffled order comes from numpy's global generator
    (np.random.seed makes it reproducible); with a seed it is a function of (seed, epoch).
    sampler: an iterable of indices giving the order instead (tinytorch.distributed's
    DistributedSampler: one process's share); it excludes shuffle. len(loader) is the number of
    batches.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None,
                 sampler=None):
        if isinstance(dataset, _C.Dataset):  # what load_mnist_folder returns
            dataset = TensorDataset(dataset.images, dataset.labels)
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a dataset with __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.collate_fn = collate_fn or default_collate
        self.epoch = 0
        if sampler is not None and self.shuffle:
            raise ValueError("DataLoader: give shuffle or a sampler, not both (the sampler decides the order)")
        self.sampler = sampler

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size

    def _order(self, epoch):
        if self.sampler is not None:
            order = np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
            if len(order) and (order.min() < 0 or order.max() >= len(self.dataset)):
                raise IndexError(f"DataLoader: the sampler gave an index outside the dataset of {len(self.dataset)}")
            return order
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng([int(self.seed), epoch]) if self.seed is not None else np.random
        return rng.permutation(n).astype(np.int64)

    def __iter__(self):
        order = self._order(self.epoch)
        self.epoch += 1
        count = len(order) // self.batch_size if self.drop_last else -(-len(order) // self.batch_size)
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(count)]
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
            return self._tensor_batches(batches)
        return (self.collate_fn([self.dataset[int(i)] for i in rows]) for rows in batches)

    def _tensor_batches(self, batches):
        tensors = list(self.dataset.tensors)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_C._gather_rows, tensors, Tensor(batches[0])) if batches else None
            for k in range(len(batches)):
                batch = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(_C._gather_rows, tensors, Tensor(batches[k + 1]))
                yield tuple(batch)


__all__ = ["DataLoader", "Dataset", "FashionMNIST", "MNIST", "Subset", "TensorDataset", "default_collate",
           "random_split"]

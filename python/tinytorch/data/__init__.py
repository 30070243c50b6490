"""Data: Dataset, TensorDataset, DataLoader (tinytorch.data.loader), Fashion-MNIST and MNIST, and
upstream TinyTorch's augmentations (tinytorch.data.transforms).

    from tinytorch.data import DataLoader, FashionMNIST
    for images, labels in DataLoader(FashionMNIST(train=True), batch_size=64, shuffle=True, seed=0):
        ...
"""
from tinytorch._tinytorch import DataError, load_mnist_folder
from tinytorch.data.loader import (DataLoader, Dataset, FashionMNIST, MNIST, Subset, TensorDataset, default_collate,
                                   random_split)
from tinytorch.data.transforms import Compose, RandomCrop, RandomHorizontalFlip

__all__ = ["Compose", "DataError", "DataLoader", "Dataset", "FashionMNIST", "MNIST", "RandomCrop",
           "RandomHorizontalFlip", "Subset", "TensorDataset", "default_collate", "load_mnist_folder", "random_split"]

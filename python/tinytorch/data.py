"""Fashion-MNIST (or any MNIST-format folder) and a seeded DataLoader.

    train = load_mnist_folder("/usr/share/datasets/fashion-mnist", train=True)
    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for i in range(len(loader)):
        images, labels = loader.batch(i)   # Tensor (64, 1, 28, 28), list of 64 ints
"""
from tinytorch._tinytorch import DataError, DataLoader, Dataset, load_mnist_folder

__all__ = ["DataError", "DataLoader", "Dataset", "load_mnist_folder"]

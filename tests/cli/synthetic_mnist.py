"""A small MNIST-format folder for the CLI tests: gzip IDX files of 28x28 images whose class shows
in where the bright square sits, so a short run learns something, and training, evaluation and
resume take seconds instead of reading all of Fashion-MNIST."""
import gzip
import os
import struct

import numpy as np


def write_idx(path, array):
    dims = array.shape
    header = struct.pack(">I", 0x800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_mnist(folder, train=640, test=200, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            r, c = 2 + 8 * (label // 4), 2 + 8 * (label % 4)
            images[i, r:r + 7, c:c + 7] += 180
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return folder

"""Image augmentations as upstream TinyTorch has them: callables on one image, (C, H, W) or
(H, W), a Tensor or numpy array, returning a Tensor. Compose chains them."""
import numpy as np

from tinytorch._tensor import Tensor


def _array(image):
    return image.numpy() if isinstance(image, Tensor) else np.asarray(image, dtype=np.float32)


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability p."""

    def __init__(self, p=0.5, seed=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p, self.rng = p, np.random.default_rng(seed)

    def __call__(self, image):
        a = _array(image)
        return Tensor(np.ascontiguousarray(a[..., ::-1]) if self.rng.random() < self.p else a.copy())


class RandomCrop:
    """Pads the image by `padding` zeros on each side, then cuts a random size x size window."""

    def __init__(self, size, padding=0, seed=None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if padding < 0 or min(self.size) < 1:
            raise ValueError(f"RandomCrop: expected a positive size and padding >= 0, got {size}, {padding}")
        self.padding, self.rng = padding, np.random.default_rng(seed)

    def __call__(self, image):
        a = _array(image)
        p = self.padding
        a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(p, p), (p, p)])
        h, w = self.size
        if a.shape[-2] < h or a.shape[-1] < w:
            raise ValueError(f"RandomCrop: a {h}x{w} crop does not fit an image of {a.shape[-2:]} after padding")
        top = int(self.rng.integers(0, a.shape[-2] - h + 1))
        left = int(self.rng.integers(0, a.shape[-1] - w + 1))
        return Tensor(np.ascontiguousarray(a[..., top:top + h, left:left + w]))


class Compose:
    """Applies the transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for t in self.transforms:
            image = t(image)
        return image


__all__ = ["Compose", "RandomCrop", "RandomHorizontalFlip"]

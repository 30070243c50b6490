"""Creating tensors, as torch's functions do: tensor, from_numpy, zeros/ones/full (and _like),
arange, randn/rand (from the generator tinytorch.manual_seed seeds)."""
import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of data (as torch.tensor): floats float32, integers int64."""
    source = data.detach().numpy() if isinstance(data, Tensor) else data
    return Tensor(np.array(source, copy=True), dtype=dtype, requires_grad=requires_grad)


def from_numpy(array):
    """A tensor sharing the numpy array's memory (float32, int64 and bool arrays; others are
    converted, which copies)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros of t's shape and (unless given) dtype."""
    return _C.zeros(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    """Ones of t's shape and (unless given) dtype."""
    return _C.ones(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    """fill_value in t's shape and (unless given) dtype."""
    return _C.full(tuple(t.shape), fill_value, dtype=t.dtype if dtype is None else dtype,
                   requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Values from start (0 if only one bound is given) up to end, by step: int64 when all three
    are integers, float32 otherwise, as torch.arange."""
    if end is None:
        start, end = 0, start
    values = np.arange(start, end, step)
    return Tensor(values, dtype=dtype, requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """steps float32 values evenly spaced from start to end, both included."""
    return Tensor(np.linspace(start, end, steps, dtype=np.float64), dtype=dtype, requires_grad=requires_grad)


def manual_seed(seed):
    """Seeds tinytorch's global generator (randn, rand, Dropout, layer initialisation)."""
    _C.manual_seed(int(seed))


zeros, ones, full, randn, rand = _C.zeros, _C.ones, _C.full, _C.randn, _C.rand

__all__ = ["arange", "from_numpy", "full", "full_like", "linspace", "manual_seed", "ones", "ones_like", "rand",
           "randn", "tensor", "zeros", "zeros_like"]

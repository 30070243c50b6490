"""The Python half of Tensor: what is easier to say in Python than in the binding.

- Indexing: ``t[0]``, ``t[1:3, ::2]``, ``t[..., None]`` give views (as NumPy and PyTorch do);
  integer arrays and bool masks (``t[[0, 2]]``, ``t[t > 0]``) give copies, with PyTorch's rules.
  Assignment (``t[mask] = 0``) writes through.
- Reductions with PyTorch's ``dim``/``keepdim`` and NumPy's ``axis``/``keepdims`` spellings.
- ``t.size`` is the element count (NumPy, upstream TinyTorch) and ``t.size()`` / ``t.size(0)`` the
  shape (PyTorch): both spellings work.
- pickle, copy.deepcopy, numpy ufuncs (``np.exp(t)`` is a Tensor), and Parameter.
"""
import collections
import copy

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tinytorch import Tensor

float32 = np.dtype("float32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


class _Size(int):
    """A tensor's element count that can also be called like ``torch.Tensor.size``."""

    def __new__(cls, tensor):
        obj = super().__new__(cls, tensor.numel())
        obj._shape = tensor.shape
        return obj

    def __call__(self, dim=None):
        return self._shape if dim is None else self._shape[dim]


def _size(self):
    """Number of elements (``t.size``); call it for the shape: ``t.size()``, ``t.size(0)``."""
    return _Size(self)


# --- indexing --------------------------------------------------------------------------------------

def _is_integer(k):
    if isinstance(k, (bool, np.bool_)):
        return False
    if isinstance(k, (int, np.integer)):
        return True
    return isinstance(k, Tensor) and k.ndim == 0 and k.dtype == int64


def _consumed(k):
    """How many dims of the tensor an index entry uses."""
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, (slice, int, np.integer)) or _is_integer(k):
        return 1
    arr = k if isinstance(k, Tensor) else np.asarray(k)
    return arr.ndim if arr.dtype == bool_ else 1


def _normalize_key(key, ndim):
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_consumed(k) for k in key)
    if used > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    if Ellipsis in [k for k in key if not isinstance(k, (Tensor, np.ndarray, list))]:
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + (slice(None),) * (ndim - used) + key[at + 1:]
    return key


def _apply_basic(t, key):
    """Applies ints, slices and None as views; returns the view and {dim: int64 index tensor}."""
    dim = 0
    advanced = {}
    for k in key:
        if k is None:
            t = t.unsqueeze(dim)
            dim += 1
        elif _is_integer(k):
            t = t.select(dim, int(k))
        elif isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            if step <= 0:
                raise ValueError("slice step must be positive (tinytorch, like PyTorch, has no negative steps)")
            size = t.shape[dim]
            start = 0 if k.start is None else int(k.start)
            stop = size if k.stop is None else int(k.stop)
            t = t._slice(dim, start, stop, step)
            dim += 1
        else:
            idx = k if isinstance(k, Tensor) else Tensor(np.asarray(k))
            if idx.dtype == bool_:
                if tuple(idx.shape) != tuple(t.shape[dim:dim + idx.ndim]):
                    raise IndexError(f"the boolean mask of shape {tuple(idx.shape)} does not match the indexed "
                                     f"dims {tuple(t.shape[dim:dim + idx.ndim])}")
                for j, coords in enumerate(_C._nonzero(idx)):
                    advanced[dim + j] = coords
                dim += idx.ndim
            elif idx.dtype == int64:
                advanced[dim] = idx
                dim += 1
            else:
                raise IndexError(f"tensors used as indices must be int64 or bool, got {idx.dtype}")
    return t, advanced


def _getitem(self, key):
    t, advanced = _apply_basic(self, _normalize_key(key, self.ndim))
    if not advanced:
        return t
    return _C._index(t, [advanced.get(d) for d in range(max(advanced) + 1)])


def _setitem(self, key, value):
    if self.requires_grad and _C.is_grad_enabled():
        raise ValueError("assigning into a tensor that requires grad is not supported; do it under "
                         "`with tinytorch.no_grad():` or build the result with tinytorch.where")
    t, advanced = _apply_basic(self, _normalize_key(key, self.ndim))
    if not advanced:
        t.copy_(value if isinstance(value, Tensor) else Tensor(np.asarray(value), dtype=self.dtype))
        return
    _C._index_put(t, [advanced.get(d) for d in range(max(advanced) + 1)], value)


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(len(self)))


def _split(self, split_size_or_sections, dim=0):
    """Views of consecutive pieces along dim, as torch.Tensor.split: pieces of split_size (the last
    may be shorter), or of the listed sizes, which must sum to the dim's size."""
    d = dim + self.ndim if dim < 0 else dim
    if not 0 <= d < self.ndim:
        raise IndexError(f"split: dim {dim} is out of range for a {self.ndim}-D tensor")
    n = self.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be non-negative and sum to {n} (dim {dim})")
    else:
        size = int(split_size_or_sections)
        if size < 1 and n > 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
    pieces, start = [], 0
    for s in sizes:
        pieces.append(self._slice(d, start, start + s, 1))
        start += s
    return tuple(pieces)


def _chunk(self, chunks, dim=0):
    """At most `chunks` views along dim of ceil(size / chunks) each, as torch.Tensor.chunk."""
    if chunks < 1:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = dim + self.ndim if dim < 0 else dim
    if not 0 <= d < self.ndim:
        raise IndexError(f"chunk: dim {dim} is out of range for a {self.ndim}-D tensor")
    n = self.shape[d]
    return _split(self, max(1, -(-n // chunks)), d)


# --- reductions ------------------------------------------------------------------------------------

def _dims(dim, axis):
    if dim is not None and axis is not None:
        raise TypeError("give dim or axis, not both")
    return axis if dim is None else dim


def _no_out(out):
    if out is not None:
        raise TypeError("out= is not supported; use the returned tensor")


def _sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None, out=None):
    """Sum over dim (an int, a tuple, or None for all); ``axis``/``keepdims`` as in NumPy."""
    _no_out(out)
    out = self._sum(_dims(dim, axis), bool(keepdims) if keepdims is not None else keepdim)
    return out if dtype is None else out.to(dtype)


def _mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None, out=None):
    """Mean over dim (an int, a tuple, or None for all); ``axis``/``keepdims`` as in NumPy."""
    _no_out(out)
    source = self if dtype is None else self.to(dtype)
    if source.dtype != float32:
        source = source.float()
    return source._mean(_dims(dim, axis), bool(keepdims) if keepdims is not None else keepdim)


def _extremum(self, largest, dim, keepdim, axis, keepdims):
    keep = bool(keepdims) if keepdims is not None else keepdim
    if axis is not None:  # NumPy / upstream TinyTorch spelling: the values only
        return self.amax(axis, keep) if largest else self.amin(axis, keep)
    if dim is None:
        return self.amax() if largest else self.amin()
    values, indices = self._max_dim(dim, keep) if largest else self._min_dim(dim, keep)
    return MaxResult(values, indices)


def _max(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """The largest element (0-d), or with dim the (values, indices) along it, as torch.max; with
    NumPy's axis= the values only."""
    _no_out(out)
    if isinstance(dim, Tensor):
        return _C.maximum(self, dim)
    return _extremum(self, True, dim, keepdim, axis, keepdims)


def _min(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """The smallest element (0-d), or with dim the (values, indices) along it, as torch.min."""
    _no_out(out)
    if isinstance(dim, Tensor):
        return _C.minimum(self, dim)
    return _extremum(self, False, dim, keepdim, axis, keepdims)


# --- conversions, pickling, numpy ------------------------------------------------------------------

def _clip(self, min=None, max=None):
    """The same as clamp: NumPy's name."""
    return self.clamp(min, max)


def _bool(self):
    """A one-element tensor is its value. A bool tensor of several elements (a comparison) is
    ambiguous, as in PyTorch and NumPy. A float or int tensor of several elements is true, as any
    object is: the seed's and upstream TinyTorch's ``if self.bias:`` tests whether there is one."""
    if self.numel() == 1:
        return bool(self.item())
    if self.dtype == bool_:
        raise ValueError("the truth value of a bool tensor with more than one element is ambiguous; "
                         "use .any() or .all()")
    return True


def _index(self):
    if self.dtype == float32 or self.numel() != 1:
        raise TypeError("only one-element integer tensors can be used as an index")
    return int(self.item())


def _format(self, spec):
    return format(self.item(), spec) if self.ndim == 0 else format(repr(self), spec)


def _rebuild(cls, array, requires_grad, grad):
    t = cls.__new__(cls)
    Tensor.__init__(t, array)
    if grad is not None:
        t.grad = grad
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_ex(self, protocol):
    grad = self.grad
    return (_rebuild, (type(self), np.array(self.numpy(), copy=True), self.requires_grad,
                       None if grad is None else np.array(grad.numpy(), copy=True)))


def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    out = _rebuild(type(self), np.array(self.numpy(), copy=True), self.requires_grad,
                   None if self.grad is None else np.array(self.grad.numpy(), copy=True))
    if hasattr(self, "__dict__"):  # a subclass's own attributes
        out.__dict__.update(copy.deepcopy(self.__dict__, memo))
    memo[id(self)] = out
    return out


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


_UFUNCS = {
    np.add: _C.add, np.subtract: _C.sub, np.multiply: _C.mul, np.true_divide: _C.div, np.power: _C.pow,
    np.matmul: _C.matmul, np.maximum: _C.maximum, np.minimum: _C.minimum,
    np.exp: _C.exp, np.log: _C.log, np.sqrt: _C.sqrt, np.tanh: _C.tanh, np.absolute: _C.abs,
    np.negative: lambda a: -_t(a),
    np.equal: lambda a, b: _t(a) == b, np.not_equal: lambda a, b: _t(a) != b,
    np.less: lambda a, b: _t(a) < b, np.less_equal: lambda a, b: _t(a) <= b,
    np.greater: lambda a, b: _t(a) > b, np.greater_equal: lambda a, b: _t(a) >= b,
}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """numpy ufuncs on tensors give tensors: the arithmetic ones run tinytorch's ops (so they are
    differentiable); any other is computed by numpy on the data and wrapped."""
    if method == "__call__" and not kwargs and ufunc in _UFUNCS:
        return _UFUNCS[ufunc](*inputs)
    arrays = [x.numpy() if isinstance(x, Tensor) else x for x in inputs]
    result = getattr(ufunc, method)(*arrays, **kwargs)
    if isinstance(result, tuple):
        return tuple(Tensor(r) if isinstance(r, np.ndarray) else r for r in result)
    return Tensor(result) if isinstance(result, np.ndarray) else result


class Parameter(Tensor):
    """A Tensor that is a module's parameter: requires grad by default, and assigning one to a
    Module attribute registers it (as torch.nn.Parameter)."""

    def __init__(self, data=None, requires_grad=True):
        super().__init__(np.zeros((0,), np.float32) if data is None else data, dtype=float32,
                         requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _install():
    Tensor.size = property(_size)
    Tensor.__getitem__ = _getitem
    Tensor.__setitem__ = _setitem
    Tensor.__iter__ = _iter
    Tensor.sum = _sum
    Tensor.mean = _mean
    Tensor.max = _max
    Tensor.min = _min
    Tensor.__bool__ = _bool
    Tensor.__float__ = lambda self: float(self.item())
    Tensor.__int__ = lambda self: int(self.item())
    Tensor.__index__ = _index
    Tensor.__format__ = _format
    Tensor.__reduce_ex__ = _reduce_ex
    Tensor.__deepcopy__ = _deepcopy
    Tensor.__copy__ = lambda self: self
    Tensor.__array_ufunc__ = _array_ufunc
    Tensor.__array_priority__ = 1000
    Tensor.clip = _clip
    Tensor.split = _split
    Tensor.chunk = _chunk
    Tensor.any = lambda self: bool((self != 0).sum().item() > 0)
    Tensor.all = lambda self: bool((self != 0).sum().item() == self.numel())
    Tensor.zero_grad = lambda self: setattr(self, "grad", None)
    Tensor.zeros = staticmethod(_C.zeros)
    Tensor.ones = staticmethod(_C.ones)
    Tensor.randn = staticmethod(_C.randn)


_install()

__all__ = ["MaxResult", "Parameter", "Tensor", "bool_", "float32", "int64"]

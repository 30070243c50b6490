"""The small PyTorch spellings scripts use in passing: devices (tinytorch runs on the CPU, so
"cpu" is accepted and ignored, "cuda" refused with a clear error), Tensor.to(device or dtype),
.cpu(), and module-level forms of the tensor methods (tinytorch.max(x, 1), tinytorch.argmax, ...),
which also take numpy arrays (torch code passes ``outputs.data``, a numpy array here)."""
import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor


class device:
    """torch.device's shape: device("cpu"), .type; any CUDA device is refused."""

    def __init__(self, type="cpu", index=None):
        name = type.type if isinstance(type, device) else str(type)
        kind = name.split(":")[0]
        if kind != "cpu":
            raise RuntimeError(f"tinytorch runs on the CPU only; got device {name!r}")
        self.type, self.index = "cpu", index

    def __eq__(self, other):
        return str(other).split(":")[0] == "cpu" if isinstance(other, (str, device)) else NotImplemented

    def __hash__(self):
        return hash("cpu")

    def __repr__(self):
        return "device(type='cpu')"

    def __str__(self):
        return "cpu"


class cuda:
    """torch.cuda's one question scripts ask: no CUDA here."""

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0


def _is_device(x):
    return isinstance(x, device) or (isinstance(x, str) and x.split(":")[0] in ("cpu", "cuda", "mps"))


_to_dtype = Tensor.to


def _to(self, *args, **kwargs):
    """t.to(dtype), t.to(device), t.to(device, dtype), t.to(other_tensor): a copy in the dtype
    asked for (the tensor itself if nothing changes); devices are checked and otherwise ignored."""
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None), kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to(): unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif _is_device(a):
            dev = a
        else:
            dtype = a
    if dev is not None:
        device(dev)  # refuses anything but the CPU
    if dtype is None or _C.zeros(0, dtype=dtype).dtype == self.dtype:  # the dtype it would become
        return self
    return _to_dtype(self, dtype)


def _cuda(self, *args, **kwargs):
    raise RuntimeError("tinytorch runs on the CPU only: there is no .cuda()")


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _function(name):
    def call(input, *args, **kwargs):
        return getattr(_as_tensor(input), name)(*args, **kwargs)
    call.__name__ = name
    call.__doc__ = f"tinytorch.{name}(input, ...) is input.{name}(...) (input may be a numpy array)."
    return call


FUNCTIONS = ["sum", "mean", "max", "min", "argmax", "argmin", "amax", "amin", "softmax", "log_softmax", "relu",
             "reshape", "transpose", "permute", "squeeze", "unsqueeze", "clone", "detach", "numel", "allclose",
             "equal", "neg", "erf", "split", "chunk"]


def _install():
    Tensor.to = _to
    Tensor.cpu = lambda self: self
    Tensor.cuda = _cuda
    Tensor.is_cuda = property(lambda self: False)
    Tensor.device = property(lambda self: device("cpu"))
    _C.Module.cuda = _cuda


_install()
namespace = {name: _function(name) for name in FUNCTIONS}

__all__ = ["cuda", "device"]

"""The modules written in Python over the tensor ops: activations, losses and containers. The
layers with kernels of their own (Conv2d, Linear, pooling, BatchNorm2d, Dropout, ReLU, Flatten,
Sequential) are the C++ classes, re-exported by tinytorch.nn."""
import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._module import Module
from tinytorch.nn import functional as F


class Identity(Module):
    """Returns its input."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise."""

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x), elementwise."""

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.tanh(input)


class GELU(Module):
    """x * Phi(x) (exact, or approximate='tanh'), as torch.nn.GELU."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class ReLU6(Module):
    """min(max(x, 0), 6), elementwise. ``inplace`` is accepted and changes nothing (F.relu)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu6(input)


class Hardtanh(Module):
    """min(max(x, min_val), max_val), elementwise."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Hardsigmoid(Module):
    """relu6(x + 3) / 6, elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardsigmoid(input)


class Hardswish(Module):
    """x * relu6(x + 3) / 6, elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input)


class SiLU(Module):
    """x * sigmoid(x), elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x, elementwise."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class AdaptiveAvgPool2d(Module):
    """Averages over windows that cut the last two dims into output_size (an int or a pair; None
    keeps that dim), as torch.nn.AdaptiveAvgPool2d: (1, 1) is the global average pool."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along dim (default -1, the last: upstream TinyTorch's choice and what
    PyTorch's implicit dim picks for a batch of vectors)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along dim, computed stably."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, input, target):
        return self.forward(input, target)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error between predictions and targets of one shape (broadcast)."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (N, C) against class indices (N,) (an int64 Tensor, a numpy array or
    a list) or class probabilities (N, C)."""

    def __init__(self, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction, self.ignore_index, self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,)."""

    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.reduction, self.ignore_index)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (after a sigmoid) against targets in [0, 1]."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, fused with the sigmoid for stability."""

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.reduction)


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ... (attributes under those names, as
    PyTorch keeps them)."""

    def __init__(self, modules=()):
        super().__init__()
        self.__dict__["_length"] = 0
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        self.__dict__[str(self._length)] = module
        self.__dict__["_length"] += 1
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        items = [self.__dict__[str(k)] for k in range(self._length)]
        return ModuleList(items[i]) if isinstance(i, slice) else items[i]

    def __len__(self):
        return self._length

    def __iter__(self):
        return iter([self.__dict__[str(k)] for k in range(self._length)])

    def forward(self, input):
        raise NotImplementedError("ModuleList has no forward; iterate over it")


class ModuleDict(Module):
    """A dict of modules, registered as children by key."""

    def __init__(self, modules=None):
        super().__init__()
        self.__dict__["_keys"] = []
        for k, m in dict(modules or {}).items():
            self[k] = m

    def __setitem__(self, key, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: expected a Module, got {type(module).__name__}")
        key = str(key)
        if key not in self._keys:
            self._keys.append(key)
        self.__dict__[key] = module

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        return self.__dict__[key]

    def __contains__(self, key):
        return key in self._keys

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(list(self._keys))

    def keys(self):
        return list(self._keys)

    def values(self):
        return [self.__dict__[k] for k in self._keys]

    def items(self):
        return [(k, self.__dict__[k]) for k in self._keys]

    def forward(self, input):
        raise NotImplementedError("ModuleDict has no forward; index it")


def _dropout_call(self, input, training=None):
    """Dropout in the module's mode, or in the one given: upstream TinyTorch calls
    dropout(x, training=False)."""
    return F.dropout(input, self.p, self.training if training is None else bool(training))


_C.Dropout.__call__ = _dropout_call
_C.Dropout.forward = _dropout_call
del np

__all__ = ["AdaptiveAvgPool2d", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "GELU", "Hardsigmoid", "Hardswish",
           "Hardtanh", "Identity", "L1Loss", "LeakyReLU", "LogSoftmax", "MSELoss", "ModuleDict", "ModuleList",
           "NLLLoss", "ReLU6", "SiLU", "Sigmoid", "Softmax", "Tanh"]

"""Module, Linear, Sequential, ReLU, BatchNorm2d and Dropout over the C++ core.

A Python subclass of Module defines ``forward`` and calls ``super().__init__()``; its Tensor and
Module attributes count as its parameters and children, as in torch.nn.
"""
from tinytorch._tinytorch import BatchNorm2d, Dropout, Linear, Module, ReLU, Sequential
from tinytorch._tinytorch import Tensor


def _walk(module, prefix, own, memo):
    """(name, Tensor) pairs, depth first: the module's own C++ tensors (``own``), its C++ children
    (such as a Sequential's), then a Python subclass's Module attributes (and, for parameters, its
    Tensor attributes). A module met twice (shared, or a cycle) is walked once, as torch.nn does."""
    if id(module) in memo:
        return []
    memo.add(id(module))
    out = [(prefix + name, t) for name, t in own(module)]
    for name, child in module._children():
        out.extend(_walk(child, prefix + name + ".", own, memo))
    for name, value in getattr(module, "__dict__", {}).items():
        if isinstance(value, Module):
            out.extend(_walk(value, prefix + name + ".", own, memo))
        elif isinstance(value, Tensor) and own is _own_parameters:
            out.append((prefix + name, value))
    return out


def _own_parameters(module):
    return module._own_parameters()


def _own_buffers(module):
    return module._own_buffers()


def _named_parameters(self, prefix=""):
    """(name, Tensor) pairs of every parameter, depth first, with PyTorch's dotted names."""
    return _walk(self, prefix, _own_parameters, set())


def _named_buffers(self, prefix=""):
    """(name, Tensor) pairs of every buffer (BatchNorm2d's running statistics), depth first."""
    return _walk(self, prefix, _own_buffers, set())


def _parameters(self):
    return [t for _, t in self.named_parameters()]


Module.named_parameters = _named_parameters
Module.named_buffers = _named_buffers
Module.parameters = _parameters

__all__ = ["BatchNorm2d", "Dropout", "Linear", "Module", "ReLU", "Sequential"]

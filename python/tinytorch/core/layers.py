"""Module, Linear, Sequential, ReLU, BatchNorm2d and Dropout over the C++ core.

A Python subclass of Module defines ``forward`` and calls ``super().__init__()``; its Tensor and
Module attributes count as its parameters and children, as in torch.nn.
"""
from tinytorch._tinytorch import BatchNorm2d, Dropout, Linear, Module, ReLU, Sequential
from tinytorch._tinytorch import Tensor


def _named_parameters(self, prefix=""):
    """(name, Tensor) pairs, depth first: the module's own C++ parameters, its C++ children (such
    as a Sequential's), then a Python subclass's Tensor and Module attributes."""
    out = [(prefix + name, t) for name, t in self._own_parameters()]
    for name, child in self._children():
        out.extend(child.named_parameters(prefix + name + "."))
    for name, value in getattr(self, "__dict__", {}).items():
        if isinstance(value, Tensor):
            out.append((prefix + name, value))
        elif isinstance(value, Module):
            out.extend(value.named_parameters(prefix + name + "."))
    return out


def _parameters(self):
    return [t for _, t in self.named_parameters()]


Module.named_parameters = _named_parameters
Module.parameters = _parameters

__all__ = ["BatchNorm2d", "Dropout", "Linear", "Module", "ReLU", "Sequential"]

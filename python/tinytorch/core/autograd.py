"""Autograd: always on in tinytorch. enable_autograd() is accepted (and does nothing) where
upstream TinyTorch code calls it; no_grad / enable_grad switch recording as in PyTorch."""
from tinytorch.autograd import enable_autograd, enable_grad, is_grad_enabled, no_grad

__all__ = ["enable_autograd", "enable_grad", "is_grad_enabled", "no_grad"]

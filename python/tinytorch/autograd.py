"""Autograd from Python: tensors carry requires_grad, grad and backward(); no_grad() turns
recording off, as torch.no_grad() does.

    w = Tensor(np.random.randn(3, 4)).requires_grad_()
    loss = cross_entropy(linear(x, w), [0, 2])
    loss.backward()          # w.grad is now a Tensor
    with no_grad():
        ...                  # no graph recorded
"""
from tinytorch._tinytorch import _EnableGradGuard, _NoGradGuard, is_grad_enabled


class no_grad:
    """Context manager (and decorator) under which ops record no graph."""

    def __init__(self):
        self._guards = []  # one per entry: the same object may be entered again while inside

    def __enter__(self):
        self._guards.append(_NoGradGuard())
        return self

    def __exit__(self, *exc):
        self._guards.pop()
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


inference_mode = no_grad  # torch.inference_mode: here the same as no_grad


class enable_grad:
    """Context manager that turns recording back on inside a no_grad block (torch.enable_grad)."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        self._guard = None if self._previous else _EnableGradGuard()
        return self

    def __exit__(self, *exc):
        self._guard = None
        return False


def enable_autograd(quiet=True):
    """Accepted where upstream TinyTorch code calls it: tinytorch's autograd is always on."""
    return None


__all__ = ["enable_autograd", "enable_grad", "inference_mode", "is_grad_enabled", "no_grad"]

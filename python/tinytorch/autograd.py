"""Autograd from Python: tensors carry requires_grad, grad and backward(); no_grad() turns
recording off, as torch.no_grad() does.

    w = Tensor(np.random.randn(3, 4)).requires_grad_()
    loss = cross_entropy(linear(x, w), [0, 2])
    loss.backward()          # w.grad is now a Tensor
    with no_grad():
        ...                  # no graph recorded
"""
from tinytorch._tinytorch import _NoGradGuard, is_grad_enabled


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


__all__ = ["is_grad_enabled", "no_grad"]

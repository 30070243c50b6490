"""Optimizers with torch.optim's update rules (the C++ ones), in torch.optim's shape: they take
any iterable of parameters (model.parameters(), a generator, a list), default to PyTorch's
hyper-parameters, and expose param_groups so schedules written for PyTorch can set the lr.

    optimizer = tinytorch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    for group in optimizer.param_groups: group["lr"] *= 0.1

cosine_lr / step_lr are per-epoch schedules as plain functions.
"""
from tinytorch import _tinytorch as _C
from tinytorch import lr_scheduler  # noqa: F401  (tinytorch.optim.lr_scheduler, as in torch)
from tinytorch._tinytorch import Optimizer, cosine_lr, step_lr


def _params(params, name):
    params = list(params)
    if params and isinstance(params[0], dict):
        raise TypeError(f"{name}: parameter groups (dicts) are not supported; pass the parameters themselves")
    if not params:
        raise ValueError(f"{name}: got an empty parameter list")
    return params


class _Group(dict):
    """param_groups[0]: a dict whose 'lr' is the optimizer's lr."""

    def __init__(self, optimizer, params):
        super().__init__(params=params)
        self._optimizer = optimizer

    def __getitem__(self, key):
        return self._optimizer.lr if key == "lr" else super().__getitem__(key)

    def __setitem__(self, key, value):
        if key == "lr":
            self._optimizer.lr = float(value)
        else:
            super().__setitem__(key, value)


def _zero_grad(self, set_to_none=True):
    """Clears the parameters' gradients: to None (PyTorch's default), or to zeros."""
    for p in self.param_groups[0]["params"]:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad.zero_()


class SGD(_C.SGD):
    """Stochastic gradient descent with momentum, Nesterov and weight decay (torch.optim.SGD)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        params = _params(params, "SGD")
        super().__init__(params, lr, momentum, weight_decay, nesterov)
        self.param_groups = [_Group(self, params)]

    zero_grad = _zero_grad


class Adam(_C.Adam):
    """Adam (torch.optim.Adam): weight decay added to the gradient (L2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        params = _params(params, "Adam")
        super().__init__(params, lr, tuple(betas), eps, weight_decay)
        self.param_groups = [_Group(self, params)]

    zero_grad = _zero_grad


class AdamW(_C.AdamW):
    """AdamW (torch.optim.AdamW): weight decay applied to the weights, decoupled."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        params = _params(params, "AdamW")
        super().__init__(params, lr, tuple(betas), eps, weight_decay)
        self.param_groups = [_Group(self, params)]

    zero_grad = _zero_grad


__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "cosine_lr", "lr_scheduler", "step_lr"]

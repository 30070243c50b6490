"""Stateless ops in torch.nn.functional's shape. All are differentiable.

The convolution, pooling, linear, batch-norm, dropout and fused cross-entropy ops run in C++;
the losses with other reductions and the activations without a kernel of their own are written
here from the tensor ops, so their gradients come from those ops' rules.
"""
import math

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor
from tinytorch._tinytorch import avg_pool2d, batch_norm, conv2d, dropout, flatten, linear, max_pool2d, relu

_REDUCTIONS = ("mean", "sum", "none")


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _reduce(loss, reduction, name):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def sigmoid(input):
    """1 / (1 + exp(-x)), elementwise."""
    return _C.sigmoid(input)


def tanh(input):
    """The hyperbolic tangent, elementwise."""
    return _C.tanh(input)


def gelu(input, approximate="none"):
    """x * Phi(x), with the exact erf form (approximate='none') or the tanh one, as PyTorch."""
    x = _tensor(input)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + (math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + _C.erf(x * (1.0 / math.sqrt(2.0))))


def softmax(input, dim=-1):
    """exp(x) / sum(exp(x)) along dim."""
    return _C.softmax(input, dim)


def log_softmax(input, dim=-1):
    """log(softmax(x)) along dim, computed stably."""
    return _C.log_softmax(input, dim)


def _class_targets(target, n):
    t = Tensor(target) if not isinstance(target, Tensor) else target
    if t.dtype == np.float32:
        return t
    t = t.long()
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"cross_entropy: expected {n} class indices of shape ({n},), got shape {tuple(t.shape)}")
    return t


def nll_loss(input, target, reduction="mean", ignore_index=-100):
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,)."""
    logp = _tensor(input)
    t = _class_targets(target, logp.shape[0])
    keep = t != ignore_index
    rows = Tensor(np.arange(logp.shape[0]))
    safe = _C.where(keep, t, 0)
    picked = -logp[rows, safe]
    picked = _C.where(keep, picked, 0.0)
    if reduction == "mean":
        count = keep.sum().item()
        if count == 0:
            raise ValueError("nll_loss: every target is ignore_index")
        return picked.sum() / count
    return _reduce(picked, reduction, "nll_loss")


def cross_entropy(input, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross-entropy of logits (N, C) against class indices (N,) (int64 Tensor, numpy array or
    list) or class probabilities (N, C) (float32). The common case (indices, mean, no smoothing,
    nothing ignored) runs the fused C++ kernel."""
    logits = _tensor(input)
    t = _class_targets(target, logits.shape[0] if logits.ndim == 2 else 1)
    if t.dtype == np.float32:  # soft targets
        if tuple(t.shape) != tuple(logits.shape):
            raise ValueError(f"cross_entropy: probability targets need the logits' shape {tuple(logits.shape)}, "
                             f"got {tuple(t.shape)}")
        return _reduce(-(t * logits.log_softmax(-1)).sum(-1), reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    ignored = bool((t == ignore_index).any())
    if reduction == "mean" and label_smoothing == 0.0 and not ignored and logits.ndim == 2:
        return _C.cross_entropy(logits, t)
    logp = logits.log_softmax(-1)
    loss = nll_loss(logp, t, reduction="none", ignore_index=ignore_index)
    if label_smoothing > 0.0:  # (1 - e) * nll + e * (the mean over classes of -log p), as PyTorch
        smooth = -logp.mean(-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * _C.where(t != ignore_index, smooth, 0.0)
    if reduction == "mean":
        return loss.sum() / max(int((t != ignore_index).sum().item()), 1)
    return _reduce(loss, reduction, "cross_entropy")


def mse_loss(input, target, reduction="mean"):
    """Mean (or sum, or none) of (input - target) ** 2, broadcasting."""
    diff = _tensor(input) - _tensor(target)
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean (or sum, or none) of |input - target|, broadcasting."""
    return _reduce(abs(_tensor(input) - _tensor(target)), reduction, "l1_loss")


def binary_cross_entropy(input, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) on probabilities p, with each log clamped at -100 as
    PyTorch does (so p = 0 or 1 gives a finite loss)."""
    p, t = _tensor(input), _tensor(target).float()
    loss = -(t * p.log().clamp(min=-100.0) + (1.0 - t) * (1.0 - p).log().clamp(min=-100.0))
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE on logits in the stable form max(x, 0) - x t + log(1 + exp(-|x|))."""
    x, t = _tensor(input), _tensor(target).float()
    loss = x.relu() - x * t + (1.0 + (-abs(x)).exp()).log()
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


__all__ = ["avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d",
           "cross_entropy", "dropout", "flatten", "gelu", "l1_loss", "linear", "log_softmax", "max_pool2d",
           "mse_loss", "nll_loss", "relu", "sigmoid", "softmax", "tanh"]

"""Stateless ops in torch.nn.functional's shape. All are differentiable.

The convolution, pooling, linear, batch-norm, dropout and fused cross-entropy ops run in C++;
the losses with other reductions and the activations without a kernel of their own are written
here from the tensor ops, so their gradients come from those ops' rules.
"""
import math

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor
from tinytorch._tinytorch import avg_pool2d, batch_norm, conv2d, dropout, flatten, linear, max_pool2d

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


def relu(input, inplace=False):
    """max(x, 0), elementwise. ``inplace`` is accepted for PyTorch code and changes nothing: the
    result is always a new tensor, and code written for either library uses the returned one."""
    return _C.relu(input)


def relu6(input, inplace=False):
    """min(max(x, 0), 6), elementwise (MobileNet's activation)."""
    return _tensor(input).clamp(0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """min(max(x, min_val), max_val), elementwise."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})")
    return _tensor(input).clamp(float(min_val), float(max_val))


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6, elementwise (MobileNetV3's gate)."""
    return _C.hardsigmoid(_tensor(input))


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6, elementwise (MobileNetV3's activation), in PyTorch's order."""
    return _C.hardswish(_tensor(input))


def silu(input, inplace=False):
    """x * sigmoid(x), elementwise (swish; EfficientNet's activation)."""
    return _C.silu(_tensor(input))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x, elementwise."""
    x = _tensor(input)
    return _C.where(x > 0.0, x, x * float(negative_slope))


def _pair_size(output_size, input_hw):
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    try:
        sizes = tuple(output_size)
    except TypeError:
        raise TypeError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}") from None
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(int(i) if s is None else int(s) for s, i in zip(sizes, input_hw))
    if min(sizes) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output sizes must be positive, got {output_size!r}")
    return sizes


def adaptive_avg_pool2d(input, output_size):
    """The mean over windows that split the last two dims into output_size (an int, a pair, None
    for the input's size): output cell i averages input rows floor(i * H / OH) to ceil((i + 1) * H
    / OH), as torch.nn.functional.adaptive_avg_pool2d. A 1x1 output is a mean over both dims, a
    size that divides the input an average pool; any other size is cut window by window."""
    x = _tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape {tuple(x.shape)}")
    H, W = x.shape[-2], x.shape[-1]
    OH, OW = _pair_size(output_size, (H, W))
    if (OH, OW) == (1, 1):
        return x.mean((-2, -1), keepdim=True)
    if H % OH == 0 and W % OW == 0:
        if (OH, OW) == (H, W):
            return x
        window = (H // OH, W // OW)
        if x.ndim == 3:
            return avg_pool2d(x.unsqueeze(0), window, window)[0]
        return avg_pool2d(x, window, window)
    rows = []
    for i in range(OH):
        r0, r1 = i * H // OH, -(-(i + 1) * H // OH)
        cells = [x[..., r0:r1, j * W // OW:-(-(j + 1) * W // OW)].mean((-2, -1), keepdim=True) for j in range(OW)]
        rows.append(_C.cat(cells, x.ndim - 1))
    return _C.cat(rows, x.ndim - 2)


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


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "conv2d", "cross_entropy", "dropout", "flatten", "gelu", "hardsigmoid",
           "hardswish", "hardtanh", "l1_loss", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
           "nll_loss", "relu", "relu6", "sigmoid", "silu", "softmax", "tanh"]

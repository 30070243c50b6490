"""Parameter initialisation in torch.nn.init's shape: in place, under no_grad, from the generator
tinytorch.manual_seed seeds (through numpy's, seeded from it)."""
import math

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch.autograd import no_grad


def _fans(t):
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of 2 or more dims, got shape {tuple(t.shape)}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t, values):
    with no_grad():
        t.copy_(values.astype(np.float32))
    return t


def _rng():
    return np.random.default_rng(int(_C.randn(1).numpy().view(np.uint32)[0]))


def uniform_(t, a=0.0, b=1.0):
    return _fill(t, _rng().uniform(a, b, t.shape))


def normal_(t, mean=0.0, std=1.0):
    return _fill(t, _rng().normal(mean, std, t.shape))


def constant_(t, val):
    with no_grad():
        t.fill_(val)
    return t


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain=1.0):
    fan_in, fan_out = _fans(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0):
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _gain(nonlinearity, a):
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return 1.0


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = _fans(t)[0 if mode == "fan_in" else 1]
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = _fans(t)[0 if mode == "fan_in" else 1]
    return normal_(t, 0.0, _gain(nonlinearity, a) / math.sqrt(fan))


__all__ = ["constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_", "uniform_", "xavier_normal_",
           "xavier_uniform_", "zeros_"]

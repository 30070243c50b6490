"""Backward cross-checks against PyTorch's autograd: input, weight and bias gradients of conv2d on
120 randomized configurations, max/avg pooling on 60, and one full optimizer step of the default
model compared with PyTorch's (same weights, same batch).

Tolerances follow test_crosscheck_torch.py: the oracle is PyTorch in float64, and a float32 sum of
L terms is within (L + 2) u sum|terms| of exact (u = 2^-24). For dx, L = OC/groups * KH * KW; for
dw and db, L = N * OH * OW. The sums of |terms| are PyTorch's gradients of the same expression with
absolute values. Winograd (which our dx may run on, for 3x3 stride-1 layers) gets 128x that.
"""
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinytorch
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor
from tinytorch.functional import conv2d as tt_conv2d

from test_crosscheck_torch import conv_config, pool_config

U = 2.0 ** -24


def torch_grads(cfg, x, w, b, r, absolute=False):
    t = lambda a: None if a is None else torch.from_numpy(np.abs(a) if absolute else a).double().requires_grad_()
    xt, wt, bt = t(x), t(w), t(b)
    y = F.conv2d(xt, wt, bt, stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                 groups=cfg["groups"])
    (y * torch.from_numpy(np.abs(r) if absolute else r).double()).sum().backward()
    return xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy(), y.shape


@pytest.mark.parametrize("seed", range(120))
def test_conv2d_gradients_match_torch(seed):
    cfg = conv_config(300 + seed)
    rs = np.random.RandomState(seed)
    x = rs.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(np.float32)
    w = rs.standard_normal((cfg["oc"], cfg["c"] // cfg["groups"], *cfg["k"])).astype(np.float32)
    b = rs.standard_normal(cfg["oc"]).astype(np.float32) if cfg["bias"] else None
    xs, ws = Tensor(x).requires_grad_(), Tensor(w).requires_grad_()
    bs = Tensor(b).requires_grad_() if b is not None else None
    y = tt_conv2d(xs, ws, bs, stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                  groups=cfg["groups"])
    r = rs.standard_normal(y.shape).astype(np.float32)
    y.backward(Tensor(r))
    dx, dw, db, oshape = torch_grads(cfg, x, w, b, r)
    mx, mw, mb, _ = torch_grads(cfg, x, w, b, r, absolute=True)
    winograd_able = cfg["k"] == (3, 3) and cfg["stride"] == (1, 1) and cfg["dilation"] == (1, 1) and cfg["groups"] == 1
    lx = (cfg["oc"] // cfg["groups"]) * cfg["k"][0] * cfg["k"][1]
    lw = cfg["n"] * oshape[2] * oshape[3]
    assert np.all(np.abs(xs.grad.data - dx) <= (128 if winograd_able else 1) * (lx + 2) * U * mx + 1e-30), cfg
    assert np.all(np.abs(ws.grad.data - dw) <= (lw + 10) * U * mw + 1e-30), cfg
    if b is not None:
        assert np.all(np.abs(bs.grad.data - db) <= (lw + 2) * U * mb + 1e-30), cfg


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradients_match_torch(seed, kind):
    cfg = pool_config(2000 + seed, kind)
    shape = (cfg["n"], cfg["c"], cfg["h"], cfg["w"])
    # Distinct values, so max pooling has one winner per window in both libraries.
    x = (np.random.RandomState(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.01).astype(np.float32)
    if kind == "max":
        layer = MaxPool2D(cfg["k"], stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                          ceil_mode=cfg["ceil_mode"])
        fn = lambda t: F.max_pool2d(t, cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                                    dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    else:
        layer = AvgPool2D(cfg["k"], stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                          count_include_pad=cfg["count_include_pad"])
        fn = lambda t: F.avg_pool2d(t, cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                                    ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"])
    xs = Tensor(x).requires_grad_()
    y = layer(xs)
    r = np.random.RandomState(seed + 1).standard_normal(y.shape).astype(np.float32)
    y.backward(Tensor(r))
    xt = torch.from_numpy(x).double().requires_grad_()
    (fn(xt) * torch.from_numpy(r).double()).sum().backward()
    # Each input gets at most KH*KW contributions: a short float sum.
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=str(cfg))


def torch_fashion_cnn():
    n = torch.nn
    return n.Sequential(n.Conv2d(1, 32, 3, padding=1), n.BatchNorm2d(32), n.ReLU(), n.MaxPool2d(2),
                        n.Conv2d(32, 64, 3, padding=1), n.BatchNorm2d(64), n.ReLU(), n.MaxPool2d(2), n.Flatten(),
                        n.Linear(3136, 128), n.ReLU(), n.Dropout(0.25), n.Linear(128, 10))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_one_optimizer_step_matches_torch(optimizer):
    tinytorch.manual_seed(0)
    ours = tinytorch.models.fashion_cnn()
    peer = torch_fashion_cnn().double()
    params = ours.parameters()
    with torch.no_grad():
        for p, q in zip(params, peer.parameters()):
            q.copy_(torch.from_numpy(p.data))
    for p in params:
        p.requires_grad_()
    # Dropout draws differ between libraries: compare in a mode without it, batch norm training.
    ours[11].eval()
    peer[11].eval()
    rs = np.random.RandomState(1)
    x = rs.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rs.randint(0, 10, 16)
    make = {"sgd": (lambda ps: tinytorch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True),
                    lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)),
            "adam": (lambda ps: tinytorch.optim.Adam(ps, lr=1e-3, weight_decay=1e-4),
                     lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=1e-4)),
            "adamw": (lambda ps: tinytorch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2),
                      lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2))}[optimizer]
    opt, topt = make[0](params), make[1](peer.parameters())
    loss = tinytorch.functional.cross_entropy(ours(Tensor(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    tloss = F.cross_entropy(peer(torch.from_numpy(x).double()), torch.from_numpy(y))
    topt.zero_grad()
    tloss.backward()
    topt.step()
    assert abs(loss.item() - tloss.item()) < 1e-4
    lr = 0.05 if optimizer == "sgd" else 1e-3
    for i, (p, q) in enumerate(zip(params, peer.parameters())):
        g = q.grad.numpy()
        # Where the true gradient is numerically zero (the conv biases feeding batch norm, whose
        # mean it removes), Adam's first step is lr * sign(rounding noise) in both libraries:
        # there only the size of the step can be checked.
        live = np.abs(g) > 1e-6
        got, want = p.data, q.detach().numpy()
        # Adam's first step is lr * g / (|g| + eps): for small |g| its slope is large, and float32's
        # gradient errors (batch norm's backward cancels terms) then show as a few % of a step on
        # a handful of weights. So: 5% of a step for the Adam family; SGD is linear in g.
        atol = 0.05 * lr if optimizer != "sgd" else 1e-5
        np.testing.assert_allclose(got[live], want[live], rtol=1e-4, atol=atol,
                                   err_msg=f"parameter {i} after one {optimizer} step")
        close = np.abs(got[live] - want[live]) <= 1e-4 * np.abs(want[live]) + 2e-5
        assert close.size == 0 or close.mean() > 0.9999, f"parameter {i}: {close.mean():.6f} within 2% of a step"
        assert np.all(np.abs(got[~live] - want[~live]) <= 2.01 * lr), f"parameter {i}"

"""Forward cross-checks against torch.nn.functional on randomized configurations.

Each configuration is drawn from its own seed: batch 1-4, channels 1-17, sizes 1-40, kernels 1-7
(non-square), stride 1-3, padding (ints, pairs, 'same', 'valid'), dilation 1-3, groups (depthwise
too), bias on and off, ceil_mode and count_include_pad.

Tolerances. The oracle is PyTorch in float64 on the same float32 inputs, i.e. the exact answer to
within 1e-16. Any float32 evaluation of a sum of K products, in any order and with or without FMA,
is within gamma_K * sum|x_i w_i| of the exact sum, gamma_K = K u / (1 - K u), u = 2^-24
(Higham, Accuracy and Stability of Numerical Algorithms, 3.1). So each output element gets the
bound (K + 2) u (conv(|x|, |w|) + |b|): K multiply-adds plus the bias add and the final rounding.
It holds for our double-accumulating reference (which is far inside it) and for any fast kernel
that accumulates in float32; PyTorch's own float32 result obeys it as well, and is checked too.
Average pooling is a sum of at most KH*KW values and a divide: (KH*KW + 2) u avg_pool(|x|).
Max pooling selects an input element, so it must match PyTorch exactly.
"""
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinytorch

from tinytorch._tinytorch import conv2d as tt_conv2d
from tinytorch.core.spatial import AvgPool2D, MaxPool2D
from tinytorch.core.tensor import Tensor

U = 2.0 ** -24
torch.set_num_threads(1)


def conv_config(seed):
    """A random valid conv2d configuration (PyTorch accepts it)."""
    rng = random.Random(seed)
    while True:
        g = rng.choice([1, 1, 1, 2, 3, "depthwise"])
        if g == "depthwise":
            c = rng.randint(1, 17)
            g, oc = c, c * rng.randint(1, 2)
        else:
            c, oc = g * rng.randint(1, 17 // g), g * rng.randint(1, 17 // g)
        kh, kw = rng.randint(1, 7), rng.randint(1, 7)
        stride = (rng.randint(1, 3), rng.randint(1, 3))
        dilation = (rng.randint(1, 3), rng.randint(1, 3))
        padding = rng.choice(["int", "pair", "same", "valid"])
        if padding == "int":
            padding = rng.randint(0, 3)
        elif padding == "pair":
            padding = (rng.randint(0, 3), rng.randint(0, 3))
        elif padding == "same":
            stride = (1, 1)
        cfg = dict(n=rng.randint(1, 4), c=c, oc=oc, h=rng.randint(1, 40), w=rng.randint(1, 40), k=(kh, kw),
                   stride=stride, padding=padding, dilation=dilation, groups=g, bias=rng.random() < 0.7)
        try:
            _torch_conv(cfg, *_conv_inputs(cfg, np.random.RandomState(0)))
            return cfg
        except RuntimeError:
            continue  # the kernel does not fit this input: draw again


def _conv_inputs(cfg, rs):
    x = rs.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(np.float32)
    w = rs.standard_normal((cfg["oc"], cfg["c"] // cfg["groups"], *cfg["k"])).astype(np.float32)
    b = rs.standard_normal(cfg["oc"]).astype(np.float32) if cfg["bias"] else None
    return x, w, b


def _torch_conv(cfg, x, w, b, dtype=torch.float64, absolute=False):
    t = lambda a: None if a is None else torch.from_numpy(np.abs(a) if absolute else a).to(dtype)
    return F.conv2d(t(x), t(w), t(b), stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                    groups=cfg["groups"]).numpy()


@pytest.mark.parametrize("seed", range(200))
def test_conv2d_matches_torch(seed):
    cfg = conv_config(seed)
    x, w, b = _conv_inputs(cfg, np.random.RandomState(seed))
    ours = tt_conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=cfg["stride"],
                     padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"]).data
    exact = _torch_conv(cfg, x, w, b)
    assert ours.shape == exact.shape, cfg
    k = (cfg["c"] // cfg["groups"]) * cfg["k"][0] * cfg["k"][1]
    bound = (k + 2) * U * _torch_conv(cfg, x, w, b, absolute=True)
    err = np.abs(ours - exact)
    assert np.all(err <= bound), f"{cfg}: max error {err.max()} at {np.unravel_index(err.argmax(), err.shape)}"
    torch32 = _torch_conv(cfg, x, w, b, dtype=torch.float32)
    assert np.all(np.abs(ours - torch32) <= 2 * bound), cfg


ALGORITHMS = ("im2col", "gemm1x1", "packed", "direct", "winograd", "depthwise", "batched", "ocblock", "blocked")


@pytest.mark.parametrize("seed", range(120))
def test_conv2d_every_algorithm_matches_torch(seed):
    """Each algorithm forced on the configurations it supports (the heuristic alone would leave
    some untried), on the configurations above and on larger ones (up to 64 channels, 48x48,
    batch 6) where the kernels' blocking and image-spanning tiles come into play. Winograd is
    allowed 128x the bound at stride 1 (see tests/cpp/test_conv_algorithms.cpp)."""
    cfg = conv_config(seed)
    if seed % 3 == 0:  # larger
        rng = random.Random(5000 + seed)
        g = cfg["groups"] if cfg["groups"] == cfg["c"] and cfg["groups"] > 1 else 1
        c = rng.randint(8, 64) if g == 1 else cfg["c"]
        cfg = dict(cfg, n=rng.randint(2, 6), c=c, oc=rng.randint(8, 64) if g == 1 else cfg["oc"], groups=g,
                   h=rng.randint(20, 48), w=rng.randint(20, 48))
        try:
            _torch_conv(cfg, *_conv_inputs(cfg, np.random.RandomState(0)))
        except RuntimeError:
            pytest.skip("kernel larger than the input")
    x, w, b = _conv_inputs(cfg, np.random.RandomState(seed))
    exact = _torch_conv(cfg, x, w, b)
    k = (cfg["c"] // cfg["groups"]) * cfg["k"][0] * cfg["k"][1]
    bound = (k + 2) * U * _torch_conv(cfg, x, w, b, absolute=True)
    tried = 0
    for algorithm in ALGORITHMS:
        try:
            ours = tt_conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=cfg["stride"],
                             padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"],
                             algorithm=algorithm).data
        except ValueError as e:
            assert "does not support this shape" in str(e)
            continue
        tried += 1
        slack = 128 if algorithm == "winograd" and tuple(cfg["stride"]) == (1, 1) else 1
        err = np.abs(ours - exact)
        assert np.all(err <= slack * bound), f"{algorithm} {cfg}: max error {err.max()}"
    assert tried >= 2  # im2col and packed support every shape


@pytest.mark.parametrize("seed", range(40))
def test_conv2d_winograd_stride2_matches_torch(seed):
    """Winograd's stride-2 scheme (3x3, stride 2, any padding) against PyTorch in float64, within
    the plain float32 bound but for a fixed chain of transform roundings (no multiplicative slack:
    on many channels its error is about half the direct kernel's)."""
    rng = random.Random(9000 + seed)
    pad = rng.choice([rng.randint(0, 3), (rng.randint(0, 3), rng.randint(0, 3))])
    cfg = dict(n=rng.randint(1, 5), c=rng.randint(1, 48), oc=rng.randint(1, 48), h=rng.randint(3, 41),
               w=rng.randint(3, 41), k=(3, 3), stride=(2, 2), padding=pad, dilation=(1, 1), groups=1,
               bias=rng.random() < 0.7)
    x, w, b = _conv_inputs(cfg, np.random.RandomState(seed))
    ours = tt_conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=2, padding=pad,
                     algorithm="winograd").data
    exact = _torch_conv(cfg, x, w, b)
    assert ours.shape == exact.shape, cfg
    # + 10, not + 2: the scheme's transforms add a fixed chain of roundings per output (see
    # MatchReferenceOnRandomShapes in tests/cpp/test_conv_algorithms.cpp), which shows on 1 channel.
    bound = (cfg["c"] * 9 + 10) * U * _torch_conv(cfg, x, w, b, absolute=True)
    err = np.abs(ours - exact)
    assert np.all(err <= bound), f"{cfg}: max error {err.max()}"


@pytest.mark.parametrize("seed", range(30))
def test_conv2d_winograd_stride1_chosen_by_the_heuristic_matches_torch(seed):
    """Winograd F(4x4, 3x3) on layers where the heuristic itself chooses it (asserted: the random
    configurations above are too small to reach it unforced), forward and all three gradients
    against PyTorch in float64. Allowed 128x the plain bound (see WinogradErrorBound)."""
    rng = random.Random(11000 + seed)
    pad = rng.randint(0, 1)
    # At least 4 tile panels (4 * 32 tiles of 4x4 on AVX-512, 4 * 16 on AVX2): 4 * 6 * 6 = 144 tiles.
    cfg = dict(n=rng.randint(4, 6), c=rng.randint(16, 40), oc=rng.randint(16, 40), h=rng.randint(24, 40),
               w=rng.randint(24, 40), k=(3, 3), stride=(1, 1), padding=pad, dilation=(1, 1), groups=1,
               bias=rng.random() < 0.7)
    chosen = tinytorch.backends.select_conv2d_algorithm((cfg["n"], cfg["c"], cfg["h"], cfg["w"]),
                                                        (cfg["oc"], cfg["c"], 3, 3), padding=pad)
    assert chosen == "winograd", cfg
    x, w, b = _conv_inputs(cfg, np.random.RandomState(seed))
    xt, wt = Tensor(x).requires_grad_(), Tensor(w).requires_grad_()
    bt = None if b is None else Tensor(b).requires_grad_()
    y = tt_conv2d(xt, wt, bt, padding=pad)
    exact = _torch_conv(cfg, x, w, b)
    bound = (cfg["c"] * 9 + 2) * U * _torch_conv(cfg, x, w, b, absolute=True)
    assert np.all(np.abs(y.data - exact) <= 128 * bound), cfg
    r = np.random.RandomState(seed + 1).standard_normal(exact.shape).astype(np.float32)
    (y * Tensor(r)).sum().backward()

    def torch_grads(absolute):
        t = lambda a: None if a is None else torch.from_numpy(np.abs(a) if absolute else a).double().requires_grad_()
        xd, wd, bd = t(x), t(w), t(b)
        rd = torch.from_numpy(np.abs(r) if absolute else r).double()
        (F.conv2d(xd, wd, bd, padding=pad) * rd).sum().backward()
        return xd.grad.numpy(), wd.grad.numpy(), None if bd is None else bd.grad.numpy()

    want, magnitude = torch_grads(False), torch_grads(True)
    # dx runs on Winograd too (a stride-1 convolution with flipped weights): 128x; dw and db are GEMMs.
    for i, (got, terms, slack) in enumerate(((xt.grad.data, cfg["oc"] * 9, 128),
                                             (wt.grad.data, cfg["n"] * cfg["h"] * cfg["w"], 1),
                                             (None if b is None else bt.grad.data, cfg["n"] * cfg["h"] * cfg["w"], 1))):
        if got is None:
            continue
        assert np.all(np.abs(got - want[i]) <= slack * (terms + 2) * U * magnitude[i] + 1e-30), (i, cfg)


def pool_config(seed, kind):
    rng = random.Random(1000 + seed)
    while True:
        kh, kw = rng.randint(1, 7), rng.randint(1, 7)
        cfg = dict(n=rng.randint(1, 4), c=rng.randint(1, 17), h=rng.randint(1, 40), w=rng.randint(1, 40),
                   k=(kh, kw), stride=rng.choice([None, (rng.randint(1, 3), rng.randint(1, 3))]),
                   padding=(rng.randint(0, kh // 2), rng.randint(0, kw // 2)),
                   dilation=(rng.randint(1, 3), rng.randint(1, 3)) if kind == "max" else (1, 1),
                   ceil_mode=rng.random() < 0.5, count_include_pad=rng.random() < 0.5)
        try:
            _torch_pool(kind, cfg, np.zeros((cfg["n"], cfg["c"], cfg["h"], cfg["w"]), np.float32))
            return cfg
        except RuntimeError:
            continue


def _torch_pool(kind, cfg, x, dtype=torch.float64):
    t = torch.from_numpy(x).to(dtype)
    if kind == "max":
        return F.max_pool2d(t, cfg["k"], stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                            ceil_mode=cfg["ceil_mode"]).numpy()
    return F.avg_pool2d(t, cfg["k"], stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                        count_include_pad=cfg["count_include_pad"]).numpy()


@pytest.mark.parametrize("seed", range(60))
def test_max_pool2d_matches_torch_exactly(seed):
    cfg = pool_config(seed, "max")
    x = np.random.RandomState(seed).standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(np.float32)
    pool = MaxPool2D(cfg["k"], stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                     ceil_mode=cfg["ceil_mode"])
    ours = pool(Tensor(x)).data
    np.testing.assert_array_equal(ours, _torch_pool("max", cfg, x, torch.float32), err_msg=str(cfg))


@pytest.mark.parametrize("seed", range(60))
def test_avg_pool2d_matches_torch(seed):
    cfg = pool_config(seed, "avg")
    x = np.random.RandomState(seed).standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(np.float32)
    pool = AvgPool2D(cfg["k"], stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                     count_include_pad=cfg["count_include_pad"])
    ours = pool(Tensor(x)).data
    exact = _torch_pool("avg", cfg, x)
    assert ours.shape == exact.shape, cfg
    bound = (cfg["k"][0] * cfg["k"][1] + 2) * U * _torch_pool("avg", cfg, np.abs(x))
    assert np.all(np.abs(ours - exact) <= bound), cfg


@pytest.mark.parametrize("seed", range(40))
def test_invalid_pool_configs_raise_like_torch(seed):
    """Where PyTorch refuses a pooling configuration (output too small), we raise ValueError."""
    rng = random.Random(5000 + seed)
    while True:
        k = (rng.randint(2, 7), rng.randint(2, 7))
        cfg = dict(k=k, stride=(rng.randint(1, 3), rng.randint(1, 3)), padding=(rng.randint(0, k[0] // 2), 0),
                   dilation=(rng.randint(1, 3), rng.randint(1, 3)), ceil_mode=rng.random() < 0.5,
                   n=1, c=2, h=rng.randint(1, 6), w=rng.randint(1, 6))
        x = np.zeros((1, 2, cfg["h"], cfg["w"]), np.float32)
        try:
            _torch_pool("max", cfg, x)
        except RuntimeError:
            break
    pool = MaxPool2D(cfg["k"], stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                     ceil_mode=cfg["ceil_mode"])
    with pytest.raises(ValueError, match="too small"):
        pool(Tensor(x))

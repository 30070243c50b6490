"""PyTorch-style CNN code as torchvision writes it runs on tinytorch with the same results: the
activations MobileNets and EfficientNets use (relu6, hardtanh, hardsigmoid, hardswish, silu,
leaky_relu), adaptive average pooling, chunk and split, each against PyTorch forward and backward
and against finite differences; then the four networks of examples/torchvision_models.py with one
set of weights in both libraries."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
from torchvision_models import models  # noqa: E402

# (ours, theirs, points where the derivative jumps: finite differences stay away from them)
ACTIVATIONS = {
    "relu6": (F.relu6, TF.relu6, (0.0, 6.0)),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 3.0), lambda x: TF.hardtanh(x, -2.0, 3.0), (-2.0, 3.0)),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, (-3.0, 3.0)),
    "hardswish": (F.hardswish, TF.hardswish, (-3.0, 3.0)),
    "silu": (F.silu, TF.silu, ()),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), (0.0,)),
    "relu_inplace": (lambda x: F.relu(x, inplace=True), TF.relu, (0.0,)),
}


def values(seed, n=400):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-8, 8, n).astype(np.float32)
    x[:12] = [-3, 3, 0, 6, -2, -6, 2.999, -2.999, 5.999, 6.001, -0.0, 1e-30]
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch_forward_and_backward(name):
    ours, theirs, _ = ACTIVATIONS[name]
    x = values(1).reshape(4, 100)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    a = tinytorch.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ya, yb = ours(a), theirs(b)
    np.testing.assert_allclose(ya.numpy(), yb.detach().numpy(), rtol=2e-7, atol=1e-7)
    (ya * tinytorch.tensor(dy)).sum().backward()
    (yb * torch.from_numpy(dy)).sum().backward()
    kinks = ACTIVATIONS[name][2]
    away = np.all([np.abs(x - k) > 1e-6 for k in kinks], axis=0) if kinks else np.ones_like(x, bool)
    np.testing.assert_allclose(a.grad.numpy()[away], b.grad.numpy()[away], rtol=1e-6, atol=1e-7)
    # NaN passes through, as in PyTorch
    nan = tinytorch.tensor(np.array([np.nan, 1.0], np.float32))
    assert np.isnan(ours(nan).numpy()[0])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient_matches_finite_differences(name):
    ours, _, kinks = ACTIVATIONS[name]
    x = values(3, 64)[12:].astype(np.float64)
    x = x[np.all([np.abs(x - k) > 0.05 for k in kinks], axis=0)] if kinks else x
    a = tinytorch.tensor(x.astype(np.float32), requires_grad=True)
    ours(a).sum().backward()
    h = 1e-2
    numeric = (ours(tinytorch.tensor((x + h).astype(np.float32))).numpy().astype(np.float64) -
               ours(tinytorch.tensor((x - h).astype(np.float32))).numpy().astype(np.float64)) / (2 * h)
    np.testing.assert_allclose(a.grad.numpy(), numeric, rtol=2e-3, atol=2e-3)


def test_modules_are_the_functions_and_accept_inplace():
    x = tinytorch.tensor(values(4).reshape(2, 2, 10, 10))
    pairs = [(nn.ReLU(inplace=True), F.relu), (nn.ReLU6(inplace=True), F.relu6), (nn.Hardswish(True), F.hardswish),
             (nn.Hardsigmoid(inplace=True), F.hardsigmoid), (nn.SiLU(inplace=True), F.silu),
             (nn.LeakyReLU(0.1), lambda t: F.leaky_relu(t, 0.1)), (nn.Hardtanh(-1.5, 2.5), lambda t: F.hardtanh(t, -1.5, 2.5))]
    for module, function in pairs:
        np.testing.assert_array_equal(module(x).numpy(), function(x).numpy())
    assert "negative_slope=0.1" in repr(nn.LeakyReLU(0.1))
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(2.0, 1.0)


def test_clamp_gives_torch_s_bits_on_special_values():
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1, 7, 6, 0.1, 5.9, 1e-40], np.float32)
    for lo, hi in [(0.0, 6.0), (0.1, None), (None, -0.5), (-0.0, 0.0)]:
        got = tinytorch.tensor(x).clamp(lo, hi).numpy()
        want = torch.tensor(x).clamp(lo, hi).numpy()
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("size", [1, (1, 1), (2, 3), (None, 2), 5, (7, 9), (3, 4)])
@pytest.mark.parametrize("hw", [(7, 9), (6, 8), (1, 5)])
def test_adaptive_avg_pool2d_matches_torch(size, hw):
    if hw == (1, 5) and size in [(2, 3), 5, (7, 9), (3, 4)]:
        size = (1, 3)  # an output larger than the input is legal in torch but says nothing more here
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3) + hw).astype(np.float32)
    dy_shape = TF.adaptive_avg_pool2d(torch.from_numpy(x), size).shape
    dy = rng.standard_normal(tuple(dy_shape)).astype(np.float32)
    a, b = tinytorch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, yb = nn.AdaptiveAvgPool2d(size)(a), TF.adaptive_avg_pool2d(b, size)
    assert tuple(ya.shape) == tuple(yb.shape)
    np.testing.assert_allclose(ya.numpy(), yb.detach().numpy(), rtol=1e-5, atol=1e-6)
    (ya * tinytorch.tensor(dy)).sum().backward()
    (yb * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)
    # a 3-D input (one image) as well
    np.testing.assert_allclose(F.adaptive_avg_pool2d(tinytorch.tensor(x[0]), size).numpy(),
                               TF.adaptive_avg_pool2d(torch.from_numpy(x[0]), size).numpy(), rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool2d_errors_say_what_was_given():
    x = tinytorch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="positive"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="an int or a pair"):
        F.adaptive_avg_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.adaptive_avg_pool2d(tinytorch.zeros(4, 4), 1)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_chunk_and_split_match_torch(dim):
    x = np.arange(7 * 10 * 3, dtype=np.float32).reshape(7, 10, 3)
    a, b = tinytorch.tensor(x), torch.from_numpy(x)
    for chunks in [1, 2, 3, 4, 7, 11]:
        got, want = a.chunk(chunks, dim), b.chunk(chunks, dim)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    for split in [1, 2, 3, 5, 100]:
        got, want = tinytorch.split(a, split, dim), torch.split(b, split, dim)
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    n = x.shape[dim]
    sizes = [1, n - 3, 2]
    for g, w in zip(a.split(sizes, dim), b.split(sizes, dim)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    with pytest.raises(ValueError, match="sum to"):
        a.split([1, 1], dim)


def test_chunk_gradients_reach_the_input():
    a = tinytorch.tensor(np.ones((4, 6), np.float32), requires_grad=True)
    x1, x2 = a.chunk(2, dim=1)
    (x1 * 2.0 + x2 * 3.0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.repeat([[2.0] * 3 + [3.0] * 3], 4, 0).astype(np.float32))


def randomize_batch_norms(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2"])
def test_torchvision_style_network_matches_torch(name):
    torch.manual_seed(0)
    theirs = models(torch)[name](num_classes=10)
    randomize_batch_norms(theirs)
    theirs.eval()
    ours = models(tinytorch)[name](num_classes=10)
    result = ours.load_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours.eval()
    x = np.random.default_rng(6).standard_normal((2, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    with tinytorch.no_grad():
        got = ours(tinytorch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    # with autograd on (a training call's weights are prepared afresh, and few-pixel layers may
    # run another algorithm: the same values to rounding)
    again = ours(tinytorch.from_numpy(x)).numpy()
    assert np.abs(again - got).max() <= 1e-5 * np.abs(got).max()

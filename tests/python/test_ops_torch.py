"""Forward values of the ops besides convolution and pooling against PyTorch (float64 as the
oracle), on odd shapes with several channels: batch norm (training, evaluation, the running
statistics' update, affine off), dropout (its scaling and its identity in evaluation), the
elementwise ops, log_softmax and cross-entropy; and five steps of every optimizer on a small CNN,
weights and batch-norm buffers compared after each step. Backward of each op is checked by
finite differences in tests/cpp/test_autograd.cpp and against PyTorch in test_autograd_torch.py.

Tolerances: a float32 op over L terms is within (L + 2) u sum|terms| of exact (u = 2^-24); the
per-element ops here are within a few u of their inputs' magnitude."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinytorch
from tinytorch.core.layers import BatchNorm2d, Dropout, Linear, Module
from tinytorch.core.spatial import Conv2D, Flatten
from tinytorch.core.tensor import Tensor
from tinytorch.functional import cross_entropy, log_softmax, relu

U = 2.0 ** -24


def rand(shape, seed):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(3, 5, 4, 7), (2, 3, 1, 9), (5, 2, 3, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_eval_and_running_statistics(shape, affine):
    x = rand(shape, 1) * 3 + 1.5
    ours = BatchNorm2d(shape[1], eps=1e-5, momentum=0.1, affine=affine)
    peer = torch.nn.BatchNorm2d(shape[1], eps=1e-5, momentum=0.1, affine=affine).double()
    if affine:
        w, b = rand((shape[1],), 2), rand((shape[1],), 3)
        ours.weight.data, ours.bias.data = w, b
        with torch.no_grad():
            peer.weight.copy_(torch.from_numpy(w))
            peer.bias.copy_(torch.from_numpy(b))
    for step in range(3):  # the running statistics follow several updates
        xs = x * (step + 1)
        got = ours(Tensor(xs)).numpy()
        want = peer(torch.from_numpy(xs).double()).detach().numpy()
        n = shape[0] * shape[2] * shape[3]
        np.testing.assert_allclose(got, want, rtol=0, atol=(n + 8) * U * (1 + np.abs(want).max()))
        np.testing.assert_allclose(ours.running_mean.numpy(), peer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.running_var.numpy(), peer.running_var.numpy(), rtol=1e-5, atol=1e-6)
    ours.eval()
    peer.eval()
    got = ours(Tensor(x)).numpy()
    want = peer(torch.from_numpy(x).double()).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    before = ours.running_mean.numpy().copy()
    ours(Tensor(x))
    np.testing.assert_array_equal(ours.running_mean.numpy(), before)  # evaluation leaves them


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.8])
def test_dropout_scaling_and_evaluation_identity(p):
    tinytorch.manual_seed(3)
    x = np.abs(rand((64, 3, 17, 11), 4)) + 0.5  # no zeros of its own
    layer = Dropout(p)
    y = layer(Tensor(x)).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=2 * U * 4)  # PyTorch's inverted dropout
    # The dropped fraction is p within 5 standard deviations of a binomial over 35904 draws.
    n = x.size
    assert abs((~kept).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    layer.eval()
    np.testing.assert_array_equal(layer(Tensor(x)).numpy(), x)
    assert not np.array_equal(Dropout(p)(Tensor(x)).numpy(), y)  # a new mask per call


def test_elementwise_ops_match_torch():
    a, b = rand((3, 4, 5), 5), rand((3, 4, 5), 6)
    ta, tb = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    for got, want in [((Tensor(a) + Tensor(b)).numpy(), ta + tb),
                      ((Tensor(a) - Tensor(b)).numpy(), ta - tb),
                      ((Tensor(a) * Tensor(b)).numpy(), ta * tb),
                      ((Tensor(a) * 2.5).numpy(), ta * 2.5),
                      ((2.5 * Tensor(a)).numpy(), 2.5 * ta),
                      ((-Tensor(a)).numpy(), -ta),
                      (relu(Tensor(a)).numpy(), torch.relu(ta))]:
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * U * np.abs(want).max())
    assert abs(Tensor(a).sum().item() - ta.sum().item()) <= (a.size + 2) * U * np.abs(a).sum()
    assert abs(Tensor(a).mean().item() - ta.mean().item()) <= (a.size + 2) * U * np.abs(a).mean()


@pytest.mark.parametrize("shape", [(7, 10), (1, 3), (16, 129)])
def test_log_softmax_and_cross_entropy_match_torch(shape):
    logits = rand(shape, 7) * 4
    targets = np.random.RandomState(8).randint(0, shape[1], shape[0])
    t = torch.from_numpy(logits).double()
    want = F.log_softmax(t, dim=1).numpy()
    got = log_softmax(Tensor(logits)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=(shape[1] + 4) * U * (1 + np.abs(want).max()))
    loss = cross_entropy(Tensor(logits), targets.tolist()).item()
    want_loss = F.cross_entropy(t, torch.from_numpy(targets)).item()
    assert abs(loss - want_loss) <= (shape[1] + shape[0] + 4) * U * (1 + abs(want_loss)) * 4


class Small(Module):
    def __init__(self):
        super().__init__()
        self.conv = Conv2D(3, 6, 3, padding=1, bias=False)  # no bias before batch norm: its gradient is 0
        self.bn = BatchNorm2d(6)
        self.flat = Flatten()
        self.fc = Linear(6 * 5 * 4, 4)

    def forward(self, x):
        return self.fc(self.flat(relu(self.bn(self.conv(x)))))


def torch_small():
    n = torch.nn
    return n.Sequential(n.Conv2d(3, 6, 3, padding=1, bias=False), n.BatchNorm2d(6), n.ReLU(), n.Flatten(),
                        n.Linear(6 * 5 * 4, 4)).double()


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_nesterov", "adam", "adamw"])
def test_five_optimizer_steps_match_torch(optimizer):
    tinytorch.manual_seed(11)
    ours = Small()
    peer = torch_small()
    pairs = [(ours.conv.weight, peer[0].weight), (ours.bn.weight, peer[1].weight), (ours.bn.bias, peer[1].bias),
             (ours.fc.weight, peer[4].weight), (ours.fc.bias, peer[4].bias)]
    with torch.no_grad():
        for p, q in pairs:
            q.copy_(torch.from_numpy(p.numpy()))
    params = [p for p, _ in pairs]
    for p in params:
        p.requires_grad = True
    make = {"sgd": (lambda ps: tinytorch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
                    lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3)),
            "sgd_nesterov": (lambda ps: tinytorch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
                             lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
            "adam": (lambda ps: tinytorch.optim.Adam(ps, lr=0.01, weight_decay=1e-3),
                     lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=1e-3)),
            "adamw": (lambda ps: tinytorch.optim.AdamW(ps, lr=0.01, weight_decay=0.05),
                      lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05))}[optimizer]
    opt, topt = make[0](params), make[1]([q for _, q in pairs])
    for step in range(5):
        x = rand((8, 3, 5, 4), 100 + step)
        y = np.random.RandomState(200 + step).randint(0, 4, 8)
        loss = cross_entropy(ours(Tensor(x)), y.tolist())
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = F.cross_entropy(peer(torch.from_numpy(x).double()), torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) < 1e-4 * (1 + abs(tloss.item())), f"loss at step {step}"
        for i, (p, q) in enumerate(pairs):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{optimizer}: parameter {i} after step {step + 1}")
        np.testing.assert_allclose(ours.bn.running_mean.numpy(), peer[1].running_mean.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours.bn.running_var.numpy(), peer[1].running_var.numpy(), rtol=1e-4, atol=1e-6)
    assert opt.steps == 5

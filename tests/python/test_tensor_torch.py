"""The Python Tensor against PyTorch: every op forward and backward on the same values, with
broadcasting shapes and every dim above 1; indexing, dtypes, in-place rules, interop (DLPack,
pickle, deepcopy, numpy ufuncs) and upstream TinyTorch's spellings (axis=, keepdims=, .size)."""
import copy
import pickle

import numpy as np
import pytest
import torch

import tinytorch
from tinytorch import Tensor

RS = np.random.RandomState(0)


def pair(*shapes, positive=False):
    """(ours, torch) leaf tensors requiring grad, with the same float32 values."""
    out = []
    for shape in shapes:
        a = RS.uniform(0.3, 2.0, shape) * (1 if positive else RS.choice([-1, 1], shape))
        a = a.astype(np.float32)
        out.append((Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)))
    return out


def check(ours_out, torch_out, ours_in, torch_in, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(ours_out.numpy(), torch_out.detach().numpy(), rtol=rtol, atol=atol)
    weights = RS.standard_normal(tuple(torch_out.shape)).astype(np.float32)
    (ours_out * Tensor(weights)).sum().backward()
    (torch_out * torch.from_numpy(weights)).sum().backward()
    for o, t in zip(ours_in, torch_in):
        assert o.grad is not None, "no gradient reached an input"
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


BINARY = {
    "add": (lambda a, b: a + b, (3, 1, 4), (5, 4), False),
    "sub": (lambda a, b: a - b, (2, 3), (3,), False),
    "mul": (lambda a, b: a * b, (4, 1), (1, 5), False),
    "div": (lambda a, b: a / b, (2, 3, 4), (4,), True),
    "pow": (lambda a, b: a ** b, (3, 4), (3, 1), True),
    "matmul": (lambda a, b: a @ b, (2, 3, 4), (4, 5), False),
    "matmul_vec": (lambda a, b: a @ b, (3, 4), (4,), False),
    "matmul_batched": (lambda a, b: a @ b, (2, 1, 3, 4), (5, 4, 2), False),
    "rsub_scalar": (lambda a, b: 2.5 - a * b, (3, 2), (2,), False),
    "rdiv_scalar": (lambda a, b: 1 / (a + b * b + 4), (3, 2), (3, 2), True),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_match_torch(name):
    fn, sa, sb, positive = BINARY[name]
    (a, ta), (b, tb) = pair(sa, sb, positive=positive)
    check(fn(a, b), fn(ta, tb), [a, b], [ta, tb])


def test_maximum_minimum_where_clamp_match_torch():
    (a, ta), (b, tb) = pair((3, 4), (4,))
    check(tinytorch.maximum(a, b) + tinytorch.minimum(a, b * 2), torch.maximum(ta, tb) + torch.minimum(ta, tb * 2),
          [a, b], [ta, tb])
    (a, ta), (b, tb) = pair((3, 4), (3, 4))
    check(tinytorch.where(a > b, a * 2, b), torch.where(ta > tb, ta * 2, tb), [a, b], [ta, tb])
    (a, ta), = pair((5, 3))
    check(a.clamp(-0.8, 1.1), ta.clamp(-0.8, 1.1), [a], [ta])


UNARY = {
    "neg": (lambda x: -x, False), "abs": (lambda x: abs(x), False), "exp": (lambda x: x.exp(), False),
    "log": (lambda x: x.log(), True), "sqrt": (lambda x: x.sqrt(), True), "tanh": (lambda x: x.tanh(), False),
    "sigmoid": (lambda x: x.sigmoid(), False), "relu": (lambda x: x.relu(), False),
    "softmax0": (lambda x: x.softmax(0), False), "softmax-1": (lambda x: x.softmax(-1), False),
    "log_softmax1": (lambda x: x.log_softmax(1), False),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_match_torch(name):
    fn, positive = UNARY[name]
    (a, ta), = pair((3, 4, 5), positive=positive)
    check(fn(a), fn(ta), [a], [ta])


REDUCTIONS = {
    "sum": (lambda x: x.sum(), lambda x: x.sum()),
    "sum_dim": (lambda x: x.sum(dim=1), lambda x: x.sum(dim=1)),
    "sum_dims_keep": (lambda x: x.sum((0, 2), keepdim=True), lambda x: x.sum((0, 2), keepdim=True)),
    "mean_axis": (lambda x: x.mean(axis=-1, keepdims=True), lambda x: x.mean(dim=-1, keepdim=True)),
    "max": (lambda x: x.max(), lambda x: x.max()),
    "max_dim": (lambda x: x.max(dim=1).values, lambda x: x.max(dim=1).values),
    "min_dim_keep": (lambda x: x.min(2, keepdim=True)[0], lambda x: x.min(2, keepdim=True)[0]),
    "amax": (lambda x: x.amax((0, 1)), lambda x: x.amax((0, 1))),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_match_torch(name):
    ours, theirs = REDUCTIONS[name]
    (a, ta), = pair((3, 4, 5))
    check(ours(a), theirs(ta), [a], [ta])


def test_argmax_and_indices_match_torch():
    x = RS.standard_normal((4, 6)).astype(np.float32)
    t = torch.from_numpy(x)
    assert Tensor(x).argmax().item() == t.argmax().item()
    np.testing.assert_array_equal(Tensor(x).argmax(dim=1).numpy(), t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(Tensor(x).max(dim=0).indices.numpy(), t.max(dim=0).indices.numpy())
    assert Tensor(x).argmax(dim=1).dtype == np.int64


VIEWS = {
    "transpose": lambda x: x.transpose(0, 2) * 1.5,
    "permute": lambda x: x.permute(2, 0, 1).reshape(5, -1),
    "T": lambda x: x.reshape(12, 5).T @ x.reshape(12, 5),
    "slice": lambda x: x[1:, ::2, 1:4],
    "select": lambda x: x[1, :, -1] * x[:, 2, 0].sum(),
    "none_ellipsis": lambda x: x[..., None, 2] + x[None, 0, 0],
    "flatten_squeeze": lambda x: x.unsqueeze(1).flatten(2).squeeze(1),
    "expand": lambda x: x[:, :1, :].expand(3, 4, 5) * x,
    "int_array": lambda x: x[[2, 0, 2]],
    "two_arrays": lambda x: x[[0, 2], :, [1, 4]],
    "mask": lambda x: x[x > 0.5],
    "cat_stack": lambda x: None,
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_and_indexing_match_torch(name):
    (a, ta), = pair((3, 4, 5))
    if name == "cat_stack":
        check(tinytorch.cat([a, a * 2], dim=1) + 0, torch.cat([ta, ta * 2], dim=1), [a], [ta])
        (b, tb), = pair((3, 4, 5))
        check(tinytorch.stack([a, b], dim=-1), torch.stack([ta, tb], dim=-1), [a, b], [ta, tb])
        return
    check(VIEWS[name](a), VIEWS[name](ta), [a], [ta])


def test_basic_indexing_gives_views_and_assignment_writes_through():
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(base)
    v = t[1, :, ::2]
    assert np.shares_memory(v.numpy(), base) and not v.is_contiguous()
    v[0] = -1.0
    assert base[1, 0, 0] == -1 and base[1, 0, 2] == -1
    t[t < 0] = 7.0
    assert base[1, 0, 0] == 7
    t[[0, 1], 0, [3, 3]] = Tensor([100.0, 200.0])
    assert base[0, 0, 3] == 100 and base[1, 0, 3] == 200
    assert t.T.shape == (4, 3, 2)


def test_dtypes_and_promotion_follow_torch():
    i = Tensor([1, 2, 3])
    f = Tensor([0.5, 1.0, 1.5])
    assert i.dtype == np.int64 and f.dtype == np.float32 and (i > 1).dtype == np.bool_
    for ours, theirs in [(i + 1, torch.tensor([1, 2, 3]) + 1), (i * 0.5, torch.tensor([1, 2, 3]) * 0.5),
                         (i / 2, torch.tensor([1, 2, 3]) / 2), (i // 2, torch.tensor([1, 2, 3]) // 2),
                         (-i % 2, -torch.tensor([1, 2, 3]) % 2), (i + f, torch.tensor([1, 2, 3]) + torch.tensor(
                             [0.5, 1.0, 1.5])), ((i > 1) & (i < 3), (torch.tensor([1, 2, 3]) > 1) & (torch.tensor(
                                 [1, 2, 3]) < 3)), (i.sum(), torch.tensor([1, 2, 3]).sum())]:
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "")), (ours, theirs)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert Tensor(np.array([1, 2], np.int32)).dtype == np.int64
    assert Tensor(np.array([1, 2], np.float64)).dtype == np.float32
    assert Tensor([1, 2], dtype="float32").dtype == np.float32 and Tensor([1.5], dtype=int).item() == 1
    assert isinstance(Tensor([2]).item(), int) and isinstance(Tensor(2.5).item(), float)
    with pytest.raises(TypeError):
        Tensor(["a"])
    with pytest.raises(TypeError):
        Tensor([1, 2], requires_grad=True)  # only float tensors take gradients, as in PyTorch


def test_inplace_ops_follow_torch_rules():
    t = Tensor(np.zeros(3, np.float32))
    alias = t
    t += 1
    t *= Tensor([1.0, 2.0, 3.0])
    assert t is alias and t.tolist() == [1.0, 2.0, 3.0]
    w = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="in place"):
        w -= 1
    with tinytorch.no_grad():
        w -= 1
    assert w.tolist() == [0.0, 0.0]
    h = w * 2
    h += 1  # part of a graph: rebinds, gradients stay right
    h.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


def test_size_spellings_of_both_audiences():
    t = Tensor(np.zeros((2, 3)))
    assert t.size == 6 and t.size * 2 == 12  # numpy / upstream TinyTorch
    assert t.size() == (2, 3) and t.size(1) == 3 and t.size(-1) == 3  # PyTorch
    assert t.numel() == 6 and t.dim() == 2 and len(t) == 2


def test_dlpack_is_zero_copy_both_ways():
    src = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    ours = tinytorch.from_dlpack(src)
    src[0, 0] = 42.0
    assert ours[0, 0].item() == 42.0
    back = torch.from_dlpack(ours.T)
    ours[1, 2] = -5.0
    assert back[2, 1].item() == -5.0 and back.shape == (4, 3)
    labels = tinytorch.from_dlpack(torch.tensor([3, 1]))
    assert labels.dtype == np.int64 and labels.tolist() == [3, 1]
    arr = np.arange(6, dtype=np.float32)
    assert np.shares_memory(np.from_dlpack(Tensor(arr)), arr)
    grads = Tensor(torch.ones(2, requires_grad=True))  # a torch leaf that requires grad is read detached
    assert grads.tolist() == [1.0, 1.0]


def test_pickle_and_deepcopy_round_trip():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    (t * t).sum().backward()
    for copied in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert copied.tolist() == t.tolist() and copied.requires_grad
        assert copied.grad.tolist() == t.grad.tolist()
        copied.data[0, 0] = 9.0
        assert t[0, 0].item() == 0.0  # a copy, not a view
    ints = pickle.loads(pickle.dumps(Tensor([4, 5])))
    assert ints.dtype == np.int64


def test_numpy_functions_and_ufuncs_on_tensors():
    t = Tensor(np.array([1.0, 4.0], np.float32), requires_grad=True)
    y = np.sqrt(t) * 2  # a tinytorch op: differentiable
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [1.0, 0.5])
    assert np.allclose(t.detach(), [1.0, 4.0]) and np.sum(t.detach()) == 5.0
    assert isinstance(np.cos(t.detach()), Tensor)
    assert isinstance(np.ones(2, np.float32) + t, Tensor)

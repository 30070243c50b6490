"""The module system against torch.nn: a Python subclass holding C++ layers behaves as the same
torch.nn model does (parameters, names, train/eval, state_dict both ways, errors, repr), and
survives saving, pickling and copying; optimizers and DataLoader in PyTorch's shape."""
import copy
import json
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.data import DataLoader, Dataset, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
        self.scale = nn.Parameter(np.full((5,), 1.5, np.float32))
        self.register_buffer("offset", Tensor(np.arange(5, dtype=np.float32)))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.head(self.drop(x)) * self.scale + self.offset


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5))
        self.scale = torch.nn.Parameter(torch.full((5,), 1.5))
        self.register_buffer("offset", torch.arange(5, dtype=torch.float32))

    def forward(self, x):
        x = TF.max_pool2d(TF.relu(self.bn(self.conv(x))), 2)
        return self.head(self.drop(x)) * self.scale + self.offset


def batch(seed=0):
    return np.random.RandomState(seed).standard_normal((3, 2, 8, 8)).astype(np.float32)


def to_torch(state):
    return {k: torch.from_dlpack(v) for k, v in state.items()}  # zero-copy


def test_names_and_order_match_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert all(p.requires_grad for p in ours.parameters())  # by default, as in PyTorch
    assert isinstance(ours.scale, nn.Parameter) and len(ours.parameters()) == len(list(theirs.parameters()))


def test_state_dict_moves_both_ways_with_the_same_outputs():
    tinytorch.manual_seed(3)
    ours, theirs = Net(), TorchNet()
    ours.train()
    ours(Tensor(batch(1)))  # moves the running statistics and num_batches_tracked
    theirs.load_state_dict(to_torch(ours.state_dict()), strict=True)
    assert theirs.bn.num_batches_tracked.item() == 1
    ours.eval(), theirs.eval()
    x = batch(2)
    want = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(Tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
    # The reverse: a torch model's state_dict (int64 num_batches_tracked included) into a fresh one of ours.
    torch.manual_seed(5)
    other = TorchNet().eval()
    fresh = Net().eval()
    result = fresh.load_state_dict(other.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert fresh.bn.num_batches_tracked.dtype == np.int64
    np.testing.assert_allclose(fresh(Tensor(x)).numpy(), other(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)


def test_load_state_dict_errors_list_keys_as_torch_does_and_change_nothing():
    net = Net()
    before = net.conv.weight.numpy().copy()
    state = {k: v.numpy() for k, v in Net().state_dict().items()}
    del state["bn.running_var"]
    state["extra.weight"] = np.zeros(2, np.float32)
    with pytest.raises(RuntimeError) as ours:
        net.load_state_dict(state)
    with pytest.raises(RuntimeError) as theirs:
        TorchNet().load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    for line in ('Missing key(s) in state_dict: "bn.running_var"', 'Unexpected key(s) in state_dict: "extra.weight"',
                 "Error(s) in loading state_dict for"):
        assert line in str(ours.value) and line in str(theirs.value)
    np.testing.assert_array_equal(net.conv.weight.numpy(), before)
    state = {k: v for k, v in Net().state_dict().items()}
    state["conv.weight"] = Tensor(np.zeros((4, 2, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="size mismatch for conv.weight"):
        net.load_state_dict(state, strict=False)
    result = net.load_state_dict({"conv.bias": np.ones(4, np.float32)}, strict=False)
    assert "conv.weight" in result.missing_keys and net.conv.bias.tolist() == [1.0] * 4


def test_eval_reaches_every_child_of_a_python_subclass():
    net = Net()
    x = Tensor(batch())
    net.eval()
    assert not net.drop.training and not net.bn.training and not net.head[1].training
    mean = net.bn.running_mean.numpy().copy()
    a, b = net(x).numpy(), net(x).numpy()
    np.testing.assert_array_equal(a, b)  # dropout off: deterministic
    np.testing.assert_array_equal(net.bn.running_mean.numpy(), mean)  # statistics frozen
    net.train()
    assert net.drop.training and net.bn.training
    net(x)
    assert not np.array_equal(net.bn.running_mean.numpy(), mean)


def test_gradients_reach_parameters_by_default_and_zero_grad_clears_them():
    net = Net()
    out = net(Tensor(batch()))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_subclass_trains_saves_loads_and_evaluates(tmp_path):
    tinytorch.manual_seed(0)
    net = Net()
    opt = tinytorch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = Tensor(batch(4)), np.array([0, 1, 2])
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    net.eval()
    tinytorch.save(net.state_dict(), tmp_path / "net.safetensors")
    tinytorch.save_checkpoint(tmp_path / "ckpt.safetensors", net, opt, {"note": "x"})
    fresh = Net()
    fresh.load_state_dict(tinytorch.load(tmp_path / "net.safetensors"))
    fresh.eval()
    np.testing.assert_array_equal(fresh(x).numpy(), net(x).numpy())
    again = Net()
    assert tinytorch.load_checkpoint(tmp_path / "ckpt.safetensors", again, None)["note"] == "x"
    np.testing.assert_array_equal(again.eval()(x).numpy(), net(x).numpy())


def test_pickle_and_deepcopy_modules():
    tinytorch.manual_seed(1)
    net = Net().eval()
    x = Tensor(batch())
    for copied in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert type(copied) is Net and not copied.training and not copied.drop.training
        np.testing.assert_array_equal(copied(x).numpy(), net(x).numpy())
        with tinytorch.no_grad():
            copied.conv.weight.fill_(0.0)
        assert float(abs(net.conv.weight).sum().item()) > 0  # independent copies
    seq = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    clone = pickle.loads(pickle.dumps(seq))
    np.testing.assert_array_equal(clone(x).numpy(), seq(x).numpy())


def test_repr_is_a_tree_like_torch():
    text = repr(Net())
    lines = text.splitlines()
    assert lines[0] == "Net(" and lines[-1] == ")"
    assert "  (conv): Conv2D(2, 4, kernel_size=(3, 3)" in text
    assert "  (head): Sequential(" in text and "    (1): Linear(" in text


def test_apply_children_modules_and_optimizers_in_torch_shape():
    net = Net()
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited[-1] == "Net" and visited.count("Linear") == 1
    assert len(list(net.children())) == 4 and len(list(net.modules())) == 7
    first = next(net.parameters())
    assert first is not None
    opt = tinytorch.optim.SGD((p for p in net.parameters()), lr=0.1, momentum=0.9)
    opt.param_groups[0]["lr"] = 0.05
    assert opt.lr == pytest.approx(0.05) and opt.param_groups[0]["lr"] == pytest.approx(0.05)
    lst = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 3)])
    holder = nn.Module()
    holder.layers = lst
    assert [n for n, _ in holder.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                                         "layers.1.bias"]


def write_safetensors(path, tensors):
    """A safetensors file written by hand, in the dtypes PyTorch saves (F16, BF16, I64, F64)."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_files_in_torch_dtypes_load_converted(tmp_path):
    w = np.random.RandomState(0).standard_normal((4, 3)).astype(np.float32)
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)  # truncation: exact in bfloat16
    write_safetensors(tmp_path / "t.safetensors", {
        "half": ("F16", [4, 3], w.astype(np.float16).tobytes()),
        "brain": ("BF16", [4, 3], bf16.tobytes()),
        "double": ("F64", [4, 3], w.astype(np.float64).tobytes()),
        "count": ("I64", [], np.int64(7).tobytes()),
    })
    state = tinytorch.load(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(state["half"].numpy(), w.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(state["brain"].numpy(), (bf16.astype(np.uint32) << 16).view(np.float32))
    np.testing.assert_array_equal(state["double"].numpy(), w)
    assert state["count"].dtype == np.int64 and state["count"].item() == 7


def test_safetensors_package_reads_ours_and_we_read_its():
    st = pytest.importorskip("safetensors.torch")
    import tempfile
    ours = Net()
    with tempfile.TemporaryDirectory() as d:
        tinytorch.save(ours.state_dict(), d + "/ours.safetensors")
        theirs = TorchNet()
        theirs.load_state_dict(st.load_file(d + "/ours.safetensors"), strict=True)
        half = TorchNet().half()
        st.save_file(half.state_dict(), d + "/half.safetensors")
        Net().load_state_dict(tinytorch.load(d + "/half.safetensors"), strict=True)


class Squares(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return np.array([i, i * i], np.float32), i % 3


def test_dataloader_order_is_a_function_of_the_seed():
    data = TensorDataset(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10))
    first = [y.tolist() for _, y in DataLoader(data, batch_size=4, shuffle=True, seed=7)]
    again = [y.tolist() for _, y in DataLoader(data, batch_size=4, shuffle=True, seed=7)]
    other = [y.tolist() for _, y in DataLoader(data, batch_size=4, shuffle=True, seed=8)]
    assert first == again and first != other
    assert sorted(sum(first, [])) == list(range(10)) and [len(b) for b in first] == [4, 4, 2]
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=7, drop_last=True)
    epochs = [[y.tolist() for _, y in loader] for _ in range(2)]
    assert len(loader) == 2 and all(len(e) == 2 for e in epochs) and epochs[0] != epochs[1]
    x, y = next(iter(DataLoader(Squares(), batch_size=4)))
    assert x.shape == (4, 2) and x.dtype == np.float32 and y.dtype == np.int64 and y.tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError):
        DataLoader(data, batch_size=0)

"""Hardening from Python: subclass models save and load every tensor, checkpoints load strictly,
sizes and thread counts are bounded, cycles are refused, a weight replaced while another thread
runs the layer is seen whole, and paths, integers and no_grad behave as Python users expect. Each
test reproduces a defect that once lost data silently or crashed the interpreter."""
import threading

import numpy as np
import pytest

import tinytorch
from tinytorch.core.layers import BatchNorm2d, Linear, Module, ReLU, Sequential
from tinytorch.core.spatial import Conv2D, Flatten
from tinytorch.data import DataError
from tinytorch.optim import Adam


class Net(Module):
    def __init__(self):
        super().__init__()
        self.c = Conv2D(1, 2, 3)
        self.bn = BatchNorm2d(2)
        self.head = Sequential(Flatten(), Linear(8, 4), ReLU(), Linear(4, 3))

    def forward(self, x):
        return self.head(self.bn(self.c(x)))


def state(model):
    return {name: t.numpy().copy() for name, t in model.named_parameters() + model.named_buffers()}


def test_python_subclass_saves_and_loads_every_tensor(tmp_path):
    tinytorch.manual_seed(1)
    a = Net()
    a.bn.running_mean.data = np.array([0.5, -0.5], dtype=np.float32)  # a buffer that differs from a fresh one
    path = tmp_path / "m.safetensors"
    tinytorch.save_checkpoint(path, a)  # once: metadata only
    names = sorted(state(a))
    assert names == ["bn.bias", "bn.num_batches_tracked", "bn.running_mean", "bn.running_var", "bn.weight", "c.bias",
                     "c.weight", "head.1.bias", "head.1.weight", "head.3.bias", "head.3.weight"]
    tinytorch.manual_seed(2)
    b = Net()
    assert not np.array_equal(state(b)["c.weight"], state(a)["c.weight"])
    tinytorch.load_checkpoint(path, b)  # once: nothing loaded, no error
    for name, value in state(a).items():
        np.testing.assert_array_equal(state(b)[name], value, err_msg=name)


def test_loading_is_strict_and_names_what_differs(tmp_path):
    class Small(Module):
        def __init__(self):
            super().__init__()
            self.c = Conv2D(1, 2, 3)

        def forward(self, x):
            return self.c(x)

    path = tmp_path / "small.safetensors"
    tinytorch.save_checkpoint(path, Small())
    with pytest.raises(DataError, match=r"missing 'bn.weight', 'bn.bias', 'bn.running_mean'"):
        tinytorch.load_checkpoint(path, Net())
    net = Net()
    before = net.head[1].weight.numpy().copy()
    tinytorch.load_checkpoint(path, net, strict=False)  # loads c.*, leaves the rest
    np.testing.assert_array_equal(net.head[1].weight.numpy(), before)
    tinytorch.save_checkpoint(tmp_path / "full.safetensors", Net())
    with pytest.raises(DataError, match="unexpected 'bn.weight', 'bn.bias'"):
        tinytorch.load_checkpoint(tmp_path / "full.safetensors", Small())


def test_optimizer_state_round_trips(tmp_path):
    model = Net()
    params = model.parameters()
    for p in params:
        p.requires_grad = True
    opt = Adam(params, lr=0.01)
    x = tinytorch.Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    tinytorch.save_checkpoint(tmp_path / "o.st", model, opt, {"epoch": "2"})
    fresh = Net()
    fresh_opt = Adam(fresh.parameters(), lr=0.01)
    meta = tinytorch.load_checkpoint(tmp_path / "o.st", fresh, fresh_opt)
    assert meta["epoch"] == "2" and fresh_opt.steps == 2


def test_writes_fail_loudly(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        tinytorch.save_checkpoint("/dev/full", Net())
    with pytest.raises(ValueError, match="is a directory"):
        tinytorch.save_checkpoint(tmp_path, Net())
    with pytest.raises(OSError, match="cannot write '/nonexistent-dir/x'"):
        tinytorch.save_checkpoint("/nonexistent-dir/x", Net())
    with pytest.raises(ValueError, match="NUL byte"):  # once: a silently truncated name
        tinytorch.save_checkpoint(str(tmp_path / "a\0b"), Net())
    assert not (tmp_path / "a").exists()


def test_sizes_and_threads_are_bounded():
    with pytest.raises(ValueError, match=r"thread count in \[1, 1024\], got 100000"):
        tinytorch._tinytorch.measure_fma_peak_gflops(100000)  # once a segfault
    with pytest.raises(ValueError, match="got -1"):
        tinytorch._tinytorch.measure_fma_peak_gflops(-1)  # once ended the interpreter
    with pytest.raises(ValueError, match=r"\[1, 1024\], got 40000"):
        tinytorch.set_num_threads(40000)
    with pytest.raises(ValueError, match="got 1099511627776"):
        tinytorch.set_num_threads(2**40)  # beyond int: the same ValueError, not a TypeError
    with pytest.raises(ValueError, match="must fit in a signed 64-bit integer"):
        tinytorch.set_num_threads(2**70)
    saved = tinytorch.get_num_threads()
    tinytorch.set_num_threads(np.int64(1))
    assert tinytorch.get_num_threads() == 1
    tinytorch.set_num_threads(saved)
    with pytest.raises(ValueError, match="kernel_size must fit in a signed 64-bit integer, got 9223372036854775808"):
        Conv2D(1, 1, 2**63)  # once a bare RuntimeError
    assert Conv2D(1, 1, np.int64(3)).kernel_size == (3, 3)  # numpy integers are integers
    assert Conv2D(1, 1, (np.int32(3), 2)).kernel_size == (3, 2)
    with pytest.raises(TypeError):
        Conv2D(1, 1, 3.0)
    with pytest.raises(TypeError):
        Conv2D(1, 1, True)


def test_sequential_refuses_cycles():
    s = Sequential(ReLU())
    with pytest.raises(ValueError, match="cycle"):
        s.append(s)  # once a segfault on call or repr
    outer = Sequential(s)
    with pytest.raises(ValueError, match="cycle"):
        s.append(outer)
    assert len(s) == 1 and "ReLU" in repr(outer)


def test_no_grad_object_can_be_reentered():
    ng = tinytorch.no_grad()
    with ng:
        with ng:  # once an AttributeError on the way out
            assert not tinytorch.autograd.is_grad_enabled()
        assert not tinytorch.autograd.is_grad_enabled()
    assert tinytorch.autograd.is_grad_enabled()


def test_weight_replaced_while_another_thread_runs_the_layer():
    # The forward releases the GIL; the setter once swapped the tensor under it ("Expected
    # 5962330948816022552 input channels"). Every output must be the layer's with one weight or the other.
    conv = Conv2D(3, 4, 3, padding=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    wa = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    wb = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    conv.weight = wa.copy()
    ya = conv(x).numpy().copy()
    conv.weight = wb.copy()
    yb = conv(x).numpy().copy()
    stop, bad, calls = threading.Event(), [], [0]

    def run():
        while not stop.is_set():
            y = conv(x).numpy()
            if not (np.array_equal(y, ya) or np.array_equal(y, yb)):
                bad.append(y)
            calls[0] += 1

    t = threading.Thread(target=run)
    t.start()
    for i in range(20000):
        conv.weight = (wa if i % 2 else wb).copy()
    stop.set()
    t.join()
    assert not bad and calls[0] > 0
    with pytest.raises(ValueError, match=r"Conv2D.weight: expected shape \(4, 3, 3, 3\), got \(1,\)"):
        conv.weight = np.zeros((1,), np.float32)


"""ONNX export: models written with tinytorch (PyTorch style, TinyTorch style, the C++ layers)
traced to ONNX, run by ONNX Runtime (when installed) and by tinytorch's own importer on inputs of
another batch size, against the model itself; every op the tracer writes; what it refuses, each
with a clear error; tinytorch.compile; and the model `tinytorch train --export-onnx` writes."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
import tinytorch.onnx
from tinytorch.data import DataError

pytestmark = pytest.mark.skipif(not tinytorch.onnx.available(), reason="built without libonnx-dev")

try:
    import onnxruntime
except ImportError:  # Debian's python3 has no onnxruntime: the round trip is then through tinytorch only
    onnxruntime = None


def run_both(data, inputs):
    """The exported bytes run by tinytorch's importer and, when installed, by ONNX Runtime."""
    model = tinytorch.onnx.load_from_bytes(data)
    names = [name for name, _ in model.inputs]
    ours = [o.numpy() for o in model.run(dict(zip(names, [tt.Tensor(x) for x in inputs])))]
    theirs = None
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        theirs = session.run(None, dict(zip(names, inputs)))
    return ours, theirs


def close(got, want, tol=1e-5):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max(initial=0) <= tol * max(np.abs(want).max(initial=0), 1.0)


def check_export(model, shape, batch=3, **kwargs):
    """Exports at `shape`, then compares both runtimes with the model at batch size `batch`."""
    data = tinytorch.onnx.export_to_bytes(model, shape, **kwargs)
    rng = np.random.default_rng(7)
    shapes = shape if isinstance(shape[0], (tuple, list)) else [shape]
    inputs = [rng.standard_normal((batch,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    if hasattr(model, "eval"):
        model.eval()
    want = model(*[tt.Tensor(x) for x in inputs])
    want = [w.numpy() for w in (want if isinstance(want, (tuple, list)) else [want])]
    ours, theirs = run_both(data, inputs)
    for got, w in zip(ours, want):
        close(got, w)
    if theirs is not None:
        for got, w in zip(theirs, want):
            close(got, w)
    return data


class PyTorchStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
        self.fc = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.relu(self.conv2(x))
        return self.fc(x.view(x.size(0), -1)).log_softmax(1)


def trained_batch_norm(model, shape):
    """Moves the running statistics off (0, 1), so that a wrong fold would show."""
    model.train()
    with tt.no_grad():
        for seed in range(3):
            model(tt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 2 + 0.5))
    model.eval()


def test_pytorch_style_model_round_trips():
    model = PyTorchStyle()
    trained_batch_norm(model, (8, 1, 28, 28))
    data = check_export(model, (2, 1, 28, 28), batch=5)
    ops = [n for n in tinytorch.onnx.load_from_bytes(data, optimize=False).op_types]
    assert ops == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "Relu", "Reshape", "Gemm", "LogSoftmax"]


def test_initializers_take_the_state_dict_names_and_the_mode_is_restored():
    onnx = pytest.importorskip("onnx")
    model = PyTorchStyle()
    assert model.training
    proto = onnx.load_from_string(tinytorch.onnx.export_to_bytes(model, (1, 1, 28, 28)))
    assert model.training  # exported in eval mode, left in training mode
    names = {i.name for i in proto.graph.initializer}
    assert {"conv1.weight", "conv1.bias", "bn.running_mean", "bn.running_var", "fc.weight"} <= names
    assert proto.opset_import[0].version == 13 and proto.producer_name == "tinytorch"
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    fixed = onnx.load_from_string(tinytorch.onnx.export_to_bytes(model, (1, 1, 28, 28), dynamic_batch=False))
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    onnx.checker.check_model(proto, full_check=True)


def test_tinytorch_style_and_cpp_layers():
    seed_style = tt.Sequential(tt.Conv2D(3, 6, kernel_size=(3, 3)), tt.ReLU(), tt.MaxPool2D(pool_size=(2, 2)),
                               tt.Flatten(), tt.Linear(6 * 7 * 7, 4), tt.Softmax(dim=1))
    check_export(seed_style, (1, 3, 16, 16))
    check_export(tt.models.fashion_cnn(), (2, 1, 28, 28), batch=4)


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=4, out_channels=6, kernel_size=3),
    dict(in_channels=4, out_channels=8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=False),
    dict(in_channels=4, out_channels=8, kernel_size=3, groups=4, dilation=2, padding="same"),
    dict(in_channels=4, out_channels=4, kernel_size=4, padding="same"),
    dict(in_channels=4, out_channels=6, kernel_size=1, padding="valid", groups=2),
])
def test_conv_options(kwargs):
    check_export(nn.Conv2d(**kwargs), (2, 4, 11, 9))


@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool2d(3, stride=2, padding=1),
    lambda: nn.MaxPool2d(2, ceil_mode=True),
    lambda: nn.MaxPool2d(3, stride=1, dilation=2),
    lambda: nn.AvgPool2d(3, stride=2, padding=1),
    lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    lambda: nn.AvgPool2d(2, ceil_mode=True),
])
def test_pool_options(layer):
    check_export(layer(), (2, 3, 11, 9))


def test_three_dimensional_images_and_vectors():
    conv, pool, fc = nn.Conv2d(2, 4, 3), nn.MaxPool2d(2), nn.Linear(12, 3)

    def single_image(x):  # (C, H, W) and a 1-D Linear, as the seed's layers take them
        return fc(tt.flatten(pool(conv(x)))[:12])

    check_export(single_image, (2, 9, 9), dynamic_batch=False, batch=2)


class EveryOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = tt.Parameter(tt.Tensor(np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)))

    def forward(self, x):  # x: (N, 3, 5, 4)
        a = (x * 2.0 + 1) / (x.abs() + 1) - tt.exp(-x) * 0.1
        b = tt.maximum(tt.minimum(a, x), -x).clamp(-0.5, 2.0) + (x.abs() + 1e-3).sqrt().log()
        c = tt.tanh(b) + tt.sigmoid(b) + tt.erf(b) + b ** 2 + (-b)
        d = tt.where(c > 0.3, c, tt.zeros(1)) + (c <= -0.2).float() + (c != c).float()
        e = d.permute(0, 2, 3, 1).reshape(x.shape[0], 5, 12)[:, 1:4, ::2]  # slices and views
        f = tt.matmul(e.transpose(1, 2), tt.ones(3, 5)) @ self.w  # (N, 6, 4)
        g = tt.cat([f, f.mean(dim=1, keepdim=True), f.sum(1, keepdim=True)], 1)  # (N, 8, 4)
        h = g.amax(dim=2) + g.max(dim=2).values - g.amin(dim=2) + g.argmax(2).float() + g.select(2, 1)
        i = tt.softmax(h, 1) + tt.log_softmax(h, 1) + h.unsqueeze(1).expand(-1, 2, -1).sum(1)
        return i.squeeze(), x.mean()


def test_every_traced_op():
    check_export(EveryOp(), (2, 3, 5, 4))


class MobileActivations(nn.Module):
    """MobileNetV3's and EfficientNet's activations, and a squeeze-excitation gate."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)

    def forward(self, x):
        x = F.hardswish(self.conv(x)) + F.silu(x.mean(1, keepdim=True)) + F.relu6(x.sum(1, keepdim=True) * 3.0)
        gate = F.hardsigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return F.adaptive_avg_pool2d(x * gate, (2, 3))


def test_mobile_activations_export_as_opset_13_nodes():
    data = check_export(MobileActivations(), (2, 3, 8, 12))
    ops = tinytorch.onnx.load_from_bytes(data, optimize=False).op_types
    assert ops.count("HardSigmoid") == 2 and ops.count("Sigmoid") == 2 and "HardSwish" not in ops


def test_several_inputs_and_outputs_with_names():
    onnx = pytest.importorskip("onnx")
    conv = nn.Conv2d(3, 4, 3, padding=1)

    def two(a, b):
        y = conv(a) + conv(b)
        return y, F.relu(y).sum(dim=(2, 3))

    data = check_export(two, [(1, 3, 8, 8), (1, 3, 8, 8)], input_names=["left", "right"],
                        output_names=["sum", "pooled"])
    proto = onnx.load_from_string(data)
    assert [i.name for i in proto.graph.input] == ["left", "right"]
    assert [o.name for o in proto.graph.output] == ["sum", "pooled"]


def test_an_input_or_a_constant_as_output():
    data = check_export(lambda x: (x, tt.ones(2)), (1, 3))
    assert len(tinytorch.onnx.load_from_bytes(data).outputs) == 2


def test_ops_that_cannot_be_exported_are_refused_with_their_name():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(DataError, match="batch_norm in training mode.*model.eval"):
        tinytorch.onnx.export_to_bytes(lambda x: bn(x), (2, 3, 4, 4))  # a plain callable stays in training mode
    drop = nn.Dropout(0.5)
    with pytest.raises(DataError, match="dropout in training mode"):
        tinytorch.onnx.export_to_bytes(lambda x: drop(x), (2, 3))
    with pytest.raises(DataError, match="indexing with a tensor|nonzero"):
        tinytorch.onnx.export_to_bytes(lambda x: x[x > 0].sum() + x, (2, 3))
    with pytest.raises(DataError, match="floor_divide"):
        tinytorch.onnx.export_to_bytes(lambda x: x // 2, (2, 3))


def test_a_step_the_trace_cannot_see_fails_the_check():
    with pytest.raises(DataError, match="second input"):
        tinytorch.onnx.export_to_bytes(lambda x: x * float(x.sum().item()), (2, 3))
    with pytest.raises(DataError, match="second input"):
        tinytorch.onnx.export_to_bytes(lambda x: x + tt.Tensor(np.exp(x.numpy())), (2, 3))
    fixed = lambda x: x.reshape(2, -1)  # noqa: E731  the example's batch size written into the view
    with pytest.raises(DataError, match="shape"):
        tinytorch.onnx.export_to_bytes(fixed, (2, 3, 4))
    check_export(fixed, (2, 3, 4), dynamic_batch=False, batch=2)
    with pytest.raises(DataError, match="fails on a second input"):
        tinytorch.onnx.export_to_bytes(lambda x: tt.where(x > 0, x, tt.zeros_like(x)), (2, 3))
    # Without the check the file is written as traced.
    assert tinytorch.onnx.export_to_bytes(fixed, (2, 3, 4), verify=False)


def test_bad_arguments(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="input_shape or example_input"):
        tinytorch.onnx.export(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="below 1"):
        tinytorch.onnx.export(model, tmp_path / "m.onnx", (0, 3))
    with pytest.raises(ValueError, match="path is empty"):
        tinytorch.onnx.export(model, "", (1, 3))
    with pytest.raises(TypeError, match="Module or a callable"):
        tinytorch.onnx.export(42, tmp_path / "m.onnx", (1, 3))
    with pytest.raises(ValueError, match="names given"):
        tinytorch.onnx.export(model, tmp_path / "m.onnx", (1, 3), output_names=["a", "b"])
    with pytest.raises(ValueError, match="both an input and an output"):
        tinytorch.onnx.export(model, tmp_path / "m.onnx", (1, 3), input_names=["x"], output_names=["x"])
    with pytest.raises(TypeError):
        tinytorch.onnx.export(lambda x: "not a tensor", tmp_path / "m.onnx", (1, 3))
    assert not (tmp_path / "m.onnx").exists()


def test_the_file_is_written_atomically(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(DataError):
        tinytorch.onnx.export(lambda x: x * float(x.sum().item()), path, (2, 3))
    assert path.read_bytes() == b"previous"  # a failed export leaves the file as it was
    tinytorch.onnx.export(nn.Linear(3, 2), path, (2, 3))
    assert tinytorch.onnx.load(path).inputs == [("input", (-1, 3))]
    with pytest.raises(OSError):
        tinytorch.onnx.export(nn.Linear(3, 2), tmp_path / "missing" / "m.onnx", (2, 3))


def test_compile_runs_the_graph():
    model = PyTorchStyle()
    trained_batch_norm(model, (8, 1, 28, 28))
    fast = tt.compile(model)
    x = np.random.default_rng(5).standard_normal((3, 1, 28, 28)).astype(np.float32)
    close(fast(x).numpy(), model(tt.Tensor(x)).numpy())
    close(fast(tt.Tensor(x[:1])).numpy(), model(tt.Tensor(x[:1])).numpy())  # the batch is free
    assert "1 traced shape" in repr(fast)
    conv = nn.Conv2d(2, 3, 3)
    fast_conv = tt.compile(conv)
    for size in (7, 9):  # a new image size is traced again
        x = np.random.default_rng(size).standard_normal((2, 2, size, size)).astype(np.float32)
        close(fast_conv(x).numpy(), conv(tt.Tensor(x)).numpy())
    assert "2 traced shape" in repr(fast_conv)
    assert tt.compile is tinytorch.onnx.compile


def cli_tool():
    tool = os.environ.get("TINYTORCH_CLI")
    if tool:
        return tool
    packaged = os.path.join(os.path.dirname(tt.__file__), "bin", "tinytorch")
    return packaged if os.access(packaged, os.X_OK) else shutil.which("tinytorch")


@pytest.mark.skipif(cli_tool() is None, reason="the tinytorch command is not installed")
def test_train_export_onnx_matches_the_checkpoint(tmp_path):
    model_path, ckpt = tmp_path / "fashion.onnx", tmp_path / "fashion.safetensors"
    r = subprocess.run([cli_tool(), "train", "--epochs", "1", "--limit", "640", "--export-onnx", str(model_path),
                        "--checkpoint", str(ckpt), "--plot", str(tmp_path / "curve")],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "cannot open" in r.stderr:
        pytest.skip("the Fashion-MNIST files are not installed (dataset-fashion-mnist)")
    assert r.returncode == 0, r.stderr
    assert f"wrote {model_path}" in r.stdout
    model = tt.models.fashion_cnn()
    tt.load_checkpoint(ckpt, model)
    model.eval()
    x = np.random.default_rng(0).standard_normal((6, 1, 28, 28)).astype(np.float32)
    want = model(tt.Tensor(x)).numpy()
    ours, theirs = run_both(model_path.read_bytes(), [x])
    close(ours[0], want)
    if theirs is not None:
        close(theirs[0], want)
        assert (theirs[0].argmax(1) == want.argmax(1)).all()
    bad = subprocess.run([cli_tool(), "train", "--export-onnx", str(tmp_path / "no" / "m.onnx")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "does not exist" in bad.stderr

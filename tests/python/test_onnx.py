"""ONNX import against PyTorch: torchvision's ten classification CNNs, exported at test time by
scripts/export_models.py (Debian's /usr/bin/python3 with PyTorch 1.13, torchvision 0.14 and onnx;
random weights and batch-norm statistics), must give PyTorch's outputs within 1e-4 of the largest
magnitude and the same top-1; every operator outside those models is checked on a small graph
against numpy; broken files and graphs give clear errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinytorch
import tinytorch.onnx
from tinytorch.data import DataError

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = os.path.join(HERE, "..", "..", "scripts", "export_models.py")
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0",
          "squeezenet1_1", "densenet121", "vgg11", "googlenet"]

pytestmark = pytest.mark.skipif(not tinytorch.onnx.available(), reason="built without libonnx-dev")


def exporter_available():
    probe = "import torch, torchvision, onnx"
    return os.path.exists("/usr/bin/python3") and subprocess.run(
        ["/usr/bin/python3", "-c", probe], capture_output=True).returncode == 0


needs_exporter = pytest.mark.skipif(not exporter_available(),
                                    reason="/usr/bin/python3 lacks python3-torch, python3-torchvision or python3-onnx")


def export(out_dir, models, opset, batch=2, size=224):
    subprocess.run(["/usr/bin/python3", EXPORT, str(out_dir), "--models", ",".join(models), "--opset", str(opset),
                    "--batch", str(batch), "--size", str(size)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    export(out, MODELS, 13)
    export(out / "opset17", ["resnet18", "mobilenet_v3_large"], 17)
    return out


def relative_error(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@needs_exporter
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_pytorch(exported, name):
    model = tinytorch.onnx.load(exported / f"{name}.onnx")
    x = np.load(exported / f"{name}.input.npy")
    want = np.load(exported / f"{name}.output.npy")
    got = model(x).numpy()
    assert got.shape == want.shape
    assert relative_error(got, want) <= 1e-4, name
    assert (got.argmax(1) == want.argmax(1)).all()
    # The batch is free: one image alone gives its row of the batch.
    one = model(x[1:2]).numpy()
    assert relative_error(one, want[1:2]) <= 1e-4
    assert model.inputs == [("input", (-1, 3, 224, 224))]
    assert model.opset == 13 and model.producer.startswith("pytorch")


@needs_exporter
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_opset_17(exported, name):
    d = exported / "opset17"
    model = tinytorch.onnx.load(str(d / f"{name}.onnx"))
    assert model.opset == 17
    got = model(tinytorch.Tensor(np.load(d / f"{name}.input.npy"))).numpy()
    assert relative_error(got, np.load(d / f"{name}.output.npy")) <= 1e-4


@needs_exporter
@pytest.mark.parametrize("name", MODELS)
def test_hundred_random_inputs_against_onnxruntime(exported, name):
    """100 random images per model (10 batches of 10) against ONNX Runtime (where installed): within
    1e-4 of the largest logit, and the same top-1 wherever ONNX Runtime's top two logits are more
    than that apart (closer than that, either answer is rounding)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(exported / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    model = tinytorch.onnx.load(exported / f"{name}.onnx")
    rng = np.random.default_rng(11)
    ties = 0
    for _ in range(10):
        x = rng.standard_normal((10, 3, 224, 224)).astype(np.float32)
        want = session.run(None, {"input": x})[0]
        got = model(x).numpy()
        assert relative_error(got, want) <= 1e-4, name
        top2 = np.sort(want, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4 * np.abs(want).max()
        assert (got.argmax(1) == want.argmax(1))[clear].all(), name
        ties += int((~clear).sum())
    assert ties <= 2, f"{name}: {ties} of 100 images have two logits within rounding"


@needs_exporter
def test_run_by_name_as_onnxruntime(exported):
    model = tinytorch.onnx.load(exported / "squeezenet1_1.onnx")
    x = np.load(exported / "squeezenet1_1.input.npy")
    [a] = model.run({"input": x})
    [b] = model.run(["output"], {"input": x})
    assert np.array_equal(a.numpy(), b.numpy())
    assert np.array_equal(a.numpy(), model(x).numpy())
    with pytest.raises(ValueError, match="no output named 'nope'"):
        model.run(["nope"], {"input": x})
    with pytest.raises(ValueError, match="input 'input' was not given"):
        model.run({"x": x})
    with pytest.raises(ValueError, match=r"expects shape \(N, 3, 224, 224\), got \(2, 3, 32, 32\)"):
        model(np.zeros((2, 3, 32, 32), np.float32))


# --- small graphs: every operator the ten models do not use, against numpy -------------------------

try:
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # this Python has no onnx package: the graphs cannot be built
    TensorProto = helper = numpy_helper = None
needs_onnx = pytest.mark.skipif(helper is None, reason="the onnx package is not installed for this Python")


def graph_model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
    return tinytorch.onnx.load_from_bytes(model.SerializeToString())


def vi(name, shape, dtype=None):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT if dtype is None else dtype, shape)


def run_one(node, x, out_shape, initializers=(), opset=13):
    model = graph_model([node], [vi("x", list(x.shape))], [vi("y", list(out_shape))], initializers, opset)
    return model(x).numpy()


rng = np.random.default_rng(3)


@needs_onnx
def test_activations():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 4
    y = run_one(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.3), x, x.shape)
    assert np.allclose(y, np.where(x >= 0, x, 0.3 * x), atol=1e-6)
    y = run_one(helper.make_node("HardSwish", ["x"], ["y"]), x, x.shape, opset=14)
    assert np.allclose(y, x * np.clip(x / 6 + 0.5, 0, 1), atol=1e-6)
    y = run_one(helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.25, beta=0.4), x, x.shape)
    assert np.allclose(y, np.clip(0.25 * x + 0.4, 0, 1), atol=1e-6)
    y = run_one(helper.make_node("Softmax", ["x"], ["y"], axis=1), x, x.shape)
    e = np.exp(x - x.max(1, keepdims=True))
    assert np.allclose(y, e / e.sum(1, keepdims=True), atol=1e-6)
    y = run_one(helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=2.0), x, x.shape, opset=6)
    assert np.array_equal(y, np.clip(x, -1, 2))


@needs_onnx
def test_conv_asymmetric_and_same_padding():
    import torch
    x = rng.standard_normal((1, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    init = [numpy_helper.from_array(w, "w")]
    y = run_one(helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 1, 2, 0], strides=[2, 1]), x, (1, 4, 5, 8), init)
    xp = np.pad(x, ((0, 0), (0, 0), (0, 2), (1, 0)))
    want = torch.nn.functional.conv2d(torch.from_numpy(xp), torch.from_numpy(w), stride=(2, 1)).numpy()
    assert np.allclose(y, want, atol=1e-5)
    y = run_one(helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2]), x, (1, 4, 5, 4), init)
    assert y.shape == (1, 4, 5, 4)  # ceil(9 / 2), ceil(8 / 2)
    # SAME_UPPER: the odd padding goes at the end (rows: total 2 -> 1 + 1; columns: total 0)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    want = torch.nn.functional.conv2d(torch.from_numpy(xp), torch.from_numpy(w), stride=2).numpy()
    assert np.allclose(y, want, atol=1e-5)


@needs_onnx
def test_gemm_matmul_and_shapes():
    a = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    c = rng.standard_normal((4,)).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)
    y = run_one(node, a, (3, 4), [numpy_helper.from_array(b, "b"), numpy_helper.from_array(c, "c")])
    assert np.allclose(y, 0.5 * a.T @ b.T + 2.0 * c, atol=1e-5)
    y = run_one(helper.make_node("MatMul", ["x", "b"], ["y"]), b.T.copy(), (5, 5), [numpy_helper.from_array(b, "b")])
    assert np.allclose(y, b.T @ b, atol=1e-5)
    x = rng.standard_normal((2, 6, 1, 3)).astype(np.float32)
    split = numpy_helper.from_array(np.array([2, 4], np.int64), "split")
    model = graph_model([helper.make_node("Split", ["x", "split"], ["p", "q"], axis=1),
                         helper.make_node("Squeeze", ["q", "axes"], ["y"])],
                        [vi("x", [2, 6, 1, 3])], [vi("p", [2, 2, 1, 3]), vi("y", [2, 4, 3])],
                        [split, numpy_helper.from_array(np.array([2], np.int64), "axes")])
    p, y = model(x)
    assert np.array_equal(p.numpy(), x[:, :2]) and np.array_equal(y.numpy(), x[:, 2:, 0])
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64), "pads")
    value = numpy_helper.from_array(np.array(7.0, np.float32), "v")
    y = run_one(helper.make_node("Pad", ["x", "pads", "v"], ["y"]), x, (2, 6, 5, 5), [pads, value])
    assert np.array_equal(y, np.pad(x, ((0, 0), (0, 0), (1, 3), (2, 0)), constant_values=7.0))
    # Integers given as floats that no int64 holds (a fuzzed file's): a clear error, not a wild cast.
    for bad in (np.nan, 1e30, -np.inf):
        fpads = numpy_helper.from_array(np.array([0, 0, 1, bad, 0, 0, 3, 0], np.float32), "pads")
        with pytest.raises(DataError, match=r"Pad node .*expected integers, got"):
            run_one(helper.make_node("Pad", ["x", "pads"], ["y"]), x, (2, 6, 5, 5), [fpads])


@needs_onnx
def test_unsupported_operator_names_it_its_node_and_opset():
    node = helper.make_node("TopK", ["x", "k"], ["y", "i"], name="pick_best")
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    with pytest.raises(DataError, match=r"unsupported operator TopK node 'pick_best' \(opset 13\)"):
        graph_model([node], [vi("x", [3, 4])], [vi("y", [3, 2]), vi("i", [3, 2], TensorProto.INT64)], [k])
    assert "Conv" in tinytorch.onnx.supported_operators()


@needs_onnx
def test_broken_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not an ONNX model"):
        tinytorch.onnx.load_from_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff\xff")
    with pytest.raises(DataError, match="not an ONNX model"):
        tinytorch.onnx.load_from_bytes(b"")
    good = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [vi("x", [2])],
                                               [vi("y", [2])]), opset_imports=[helper.make_opsetid("", 13)])
    data = good.SerializeToString()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(DataError):
            tinytorch.onnx.load_from_bytes(data[:cut])
    junk = tmp_path / "junk.onnx"
    for content in (b"\x08\x07garbage that is not a protobuf \xff\xff\xff", b""):
        junk.write_bytes(content)
        with pytest.raises(DataError, match="junk.onnx' is not an ONNX model"):
            tinytorch.onnx.load(junk)
    with pytest.raises(DataError, match="cannot open .*missing.onnx"):
        tinytorch.onnx.load(tmp_path / "missing.onnx")
    with pytest.raises(DataError, match="not a regular file"):
        tinytorch.onnx.load(tmp_path)
    # A name nothing defines.
    dangling = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "g", [vi("x", [2])],
                                 [vi("y", [2])])
    with pytest.raises(DataError):
        tinytorch.onnx.load_from_bytes(helper.make_model(dangling).SerializeToString())
    # A cycle: two nodes reading each other's outputs.
    cycle = helper.make_graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])],
                              "g", [vi("x", [2])], [vi("a", [2])])
    with pytest.raises(DataError):
        tinytorch.onnx.load_from_bytes(helper.make_model(cycle).SerializeToString())
    # Weights whose data does not match their dims.
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000000000, 1000000000], float_data=[1.0])
    absurd = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [vi("x", [2])], [vi("y", [2])],
                               [t])
    with pytest.raises(DataError, match="dims"):
        tinytorch.onnx.load_from_bytes(helper.make_model(absurd).SerializeToString())
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])
    short = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [vi("x", [3])], [vi("y", [3])], [t])
    with pytest.raises(DataError, match="holds 2 values, expected 3"):
        tinytorch.onnx.load_from_bytes(helper.make_model(short).SerializeToString())


@needs_onnx
def test_math_comparison_and_reduction_operators():
    """The operators ONNX export writes beyond the ten models', each against numpy."""
    import math
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    pos = np.abs(x) + 0.5
    for op, f, arg in [("Neg", np.negative, x), ("Abs", np.abs, x), ("Exp", np.exp, x), ("Log", np.log, pos),
                       ("Sqrt", np.sqrt, pos), ("Tanh", np.tanh, x),
                       ("Erf", np.vectorize(math.erf), x)]:
        assert np.allclose(run_one(helper.make_node(op, ["x"], ["y"]), arg, x.shape), f(arg), atol=1e-6), op
    y = run_one(helper.make_node("LogSoftmax", ["x"], ["y"], axis=1), x, x.shape)
    assert np.allclose(y, x - np.log(np.exp(x).sum(1, keepdims=True)), atol=1e-6)
    # Binary and variadic ops with broadcast constants.
    c = numpy_helper.from_array(np.array([0.5, -1.0, 2.0, 0.0], np.float32), "c")
    d = numpy_helper.from_array(np.array([[1.0], [0.0], [-1.0]], np.float32), "d")
    for op, f in [("Pow", lambda a, b: np.power(np.abs(a), b)), ("Max", np.maximum), ("Min", np.minimum),
                  ("Sum", np.add)]:
        inputs = ["a", "c"] if op == "Pow" else ["x", "c"]
        nodes = [helper.make_node("Abs", ["x"], ["a"])] if op == "Pow" else []
        nodes.append(helper.make_node(op, inputs, ["y"]))
        got = graph_model(nodes, [vi("x", list(x.shape))], [vi("y", list(x.shape))], [c])(x).numpy()
        assert np.allclose(got, f(x, numpy_helper.to_array(c)), atol=1e-5), op
    three = graph_model([helper.make_node("Max", ["x", "c", "d"], ["y"])], [vi("x", list(x.shape))],
                        [vi("y", list(x.shape))], [c, d])(x).numpy()
    assert np.array_equal(three, np.maximum(np.maximum(x, numpy_helper.to_array(c)), numpy_helper.to_array(d)))
    # Comparisons, Not and Where.
    for op, f in [("Equal", np.equal), ("Less", np.less), ("LessOrEqual", np.less_equal), ("Greater", np.greater),
                  ("GreaterOrEqual", np.greater_equal)]:
        z = np.round(x)
        model = graph_model([helper.make_node(op, ["x", "c"], ["y"])], [vi("x", list(x.shape))],
                            [vi("y", list(x.shape), TensorProto.BOOL)], [c])
        assert np.array_equal(model(z).numpy(), f(z, numpy_helper.to_array(c))), op
    model = graph_model([helper.make_node("Greater", ["x", "c"], ["m"]), helper.make_node("Not", ["m"], ["n"]),
                         helper.make_node("Where", ["n", "x", "c"], ["y"])], [vi("x", list(x.shape))],
                        [vi("y", list(x.shape))], [c])
    cv = numpy_helper.to_array(c)
    assert np.array_equal(model(x).numpy(), np.where(~(x > cv), x, cv))
    # Reductions: ReduceSum's axes as an input (opset 13), the others' as an attribute.
    axes = numpy_helper.from_array(np.array([0, 2], np.int64), "axes")
    model = graph_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)], [vi("x", list(x.shape))],
                        [vi("y", [3])], [axes])
    assert np.allclose(model(x).numpy(), x.sum((0, 2)), atol=1e-5)
    y = run_one(helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=1), x, (2, 1, 4))
    assert np.array_equal(y, x.max(1, keepdims=True))
    y = run_one(helper.make_node("ReduceMin", ["x"], ["y"], axes=[2], keepdims=0), x, (2, 3))
    assert np.array_equal(y, x.min(2))
    for op, f in [("ArgMax", np.argmax), ("ArgMin", np.argmin)]:
        model = graph_model([helper.make_node(op, ["x"], ["y"], axis=1, keepdims=0)], [vi("x", list(x.shape))],
                            [vi("y", [2, 4], TensorProto.INT64)])
        assert np.array_equal(model(x).numpy(), f(x, 1)), op
    shape = numpy_helper.from_array(np.array([2, 1, 3, 4], np.int64), "shape")
    model = graph_model([helper.make_node("Expand", ["x", "shape"], ["y"])], [vi("x", [3, 1])],
                        [vi("y", [2, 1, 3, 4])], [shape])
    v = rng.standard_normal((3, 1)).astype(np.float32)
    assert np.array_equal(model(v).numpy(), np.broadcast_to(v, (2, 1, 3, 4)))  # both ways, as numpy


@needs_onnx
def test_a_newer_ir_version_is_read():
    """Files of newer exporters (IR 9, 10, 11) pass the checker of ONNX 1.12, which knows IR 8."""
    x = rng.standard_normal((2, 3)).astype(np.float32)
    for ir in (8, 10, 11):
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [vi("x", [2, 3])], [vi("y", [2, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = ir
        assert np.array_equal(tinytorch.onnx.load_from_bytes(model.SerializeToString())(x).numpy(), np.maximum(x, 0))


@needs_onnx
def test_types_without_a_shape_are_read():
    """Later ONNX lets a tensor type leave its shape out (make_tensor_value_info(name, type, None)),
    which the checker of ONNX 1.12 refuses: outputs and annotations of unknown shape load and run."""
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "r"], ["y"])]
    graph = helper.make_graph(nodes, "g", [vi("x", list(x.shape))], [vi("y", None)], value_info=[vi("r", None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert not model.graph.output[0].type.tensor_type.HasField("shape")
    y = tinytorch.onnx.load_from_bytes(model.SerializeToString())(x).numpy()
    assert np.array_equal(y, np.maximum(x, 0) ** 2)


@needs_onnx
def test_an_absurd_computed_shape_is_a_clear_error():
    """ConstantOfShape asked for 2^42 floats: a DataError naming the node, not an abort."""
    shape = numpy_helper.from_array(np.array([1 << 21, 1 << 21], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["c"], name="huge"), helper.make_node("Add", ["x", "c"], ["y"])]
    model = graph_model(nodes, [vi("x", [1, 1])], [vi("y", [1 << 21, 1 << 21])], [shape])
    with pytest.raises(DataError, match="'huge'.*out of memory"):
        model(np.zeros((1, 1), np.float32))

"""The ONNX runtime's graph passes (src/onnx/optimize.cpp), each on small graphs: the optimized
graph against the same graph run as written (tinytorch.onnx.load_from_bytes(..., optimize=False)),
and what was fused, from describe_nodes(). The cases where a pass must not fire are here too: a
value someone else reads, a weight two Convs share, an operand computed after the Conv, bounds
that are not constants, a broadcasting Add. The blocked layout's pass runs after them and adds its
layout nodes (FromBlocked, ToBlocked); the fusion tests look at the other nodes (ops(), nodes()),
and the layout's own tests at the end check where it goes and where not."""
import numpy as np
import pytest

import tinytorch
import tinytorch.onnx

try:
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # this Python has no onnx package: the graphs cannot be built
    TensorProto = helper = numpy_helper = None

pytestmark = [pytest.mark.skipif(not tinytorch.onnx.available(), reason="built without libonnx-dev"),
              pytest.mark.skipif(helper is None, reason="the onnx package is not installed for this Python")]

rng = np.random.default_rng(7)
X_SHAPE = (2, 4, 9, 7)
# The kernels' blocks: 16 lanes with AVX-512, 8 with AVX2 (TINYTORCH_ISA=avx2 on any machine).
EIGHT_LANES = tinytorch.backends.peak_isa() != "avx512"


def arr(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def build(nodes, initializers, outputs=("y",), opset=13, x_shape=X_SHAPE):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * 4) for o in outputs],
                              [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def both(nodes, initializers, outputs=("y",), opset=13, x=None):
    """Runs the graph optimized and as written; checks they agree; returns the optimized model."""
    data = build(nodes, initializers, outputs, opset)
    fast = tinytorch.onnx.load_from_bytes(data)
    plain = tinytorch.onnx.load_from_bytes(data, optimize=False)
    x = arr(*X_SHAPE, scale=3.0) if x is None else x
    feed = {"x": x}
    for got, want in zip(fast.run(feed), plain.run(feed)):
        got, want = got.numpy(), want.numpy()
        assert got.shape == want.shape
        scale = max(float(np.abs(want).max()), 1e-30)
        assert np.abs(got - want).max() / scale <= 1e-5, fast.describe_nodes()
    return fast


LAYOUT = ("FromBlocked", "ToBlocked")


def ops(model):
    """The model's operators without the blocked layout's conversions."""
    return [t for t in model.op_types if t not in LAYOUT]


def described(model):
    """describe_nodes() without the blocked layout's conversions."""
    return [d for d in model.describe_nodes() if d.split(" ")[0] not in LAYOUT]


def conv(name, x, y, w="w", b=None, **attrs):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name=name, pads=[1, 1, 1, 1], **attrs)


def batch_norm(name, x, y, c=4):
    inits = {f"{name}.s": arr(c) + 1.5, f"{name}.b": arr(c), f"{name}.m": arr(c, scale=0.3),
             f"{name}.v": np.abs(arr(c)) + 0.5}
    node = helper.make_node("BatchNormalization", [x] + list(inits), [y], name=name, epsilon=1e-3)
    return node, inits


def test_batch_norm_folds_into_conv_then_relu_fuses():
    bn, inits = batch_norm("bn", "c", "n")
    model = both([conv("conv", "x", "c", b="b"), bn, helper.make_node("Relu", ["n"], ["y"], name="r")],
                 dict(w=arr(4, 4, 3, 3), b=arr(4), **inits))
    assert ops(model) == ["Conv"]
    assert described(model) == ["Conv 'conv' + relu  (took in BatchNormalization 'bn', Relu 'r')"]


def test_batch_norm_without_conv_bias_and_shared_weight_left_intact():
    bn, inits = batch_norm("bn", "c1", "n")
    nodes = [conv("c1", "x", "c1"), bn, conv("c2", "x", "c2"), helper.make_node("Add", ["n", "c2"], ["y"], name="a")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3), **inits))
    # The folded weight is a new constant: c2 still reads the original one (the outputs agree).
    assert ops(model) == ["Conv", "Conv"]
    assert "BatchNormalization 'bn'" in described(model)[0]
    assert "+ residual" in described(model)[1]


def test_no_fusion_where_the_intermediate_is_read_elsewhere():
    bn, inits = batch_norm("bn", "c", "n")
    model = both([conv("conv", "x", "c"), bn, helper.make_node("Relu", ["n"], ["y"], name="r")],
                 dict(w=arr(4, 4, 3, 3), **inits), outputs=("y", "c"))
    assert ops(model) == ["Conv", "BatchNormalization", "Relu"]
    model = both([conv("conv", "x", "c"), helper.make_node("Relu", ["c"], ["y"], name="r"),
                  helper.make_node("Sigmoid", ["c"], ["z"], name="s")], dict(w=arr(4, 4, 3, 3)), outputs=("y", "z"))
    assert ops(model) == ["Conv", "Relu", "Sigmoid"]


def test_residual_goes_to_the_conv_computed_last():
    nodes = [conv("a", "x", "p", w="w1"), conv("b", "x", "q", w="w2", b="b2"),
             helper.make_node("Add", ["p", "q"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"], name="r")]
    model = both(nodes, dict(w1=arr(4, 4, 3, 3), w2=arr(4, 4, 3, 3), b2=arr(4)))
    assert ops(model) == ["Conv", "Conv"]
    assert described(model)[1] == "Conv 'b' + residual + relu  (took in Add 'add', Relu 'r')"


def test_residual_computed_after_the_conv_is_not_fused():
    nodes = [conv("a", "x", "p"), helper.make_node("Sigmoid", ["x"], ["q"], name="s"),
             helper.make_node("Add", ["p", "q"], ["y"], name="add")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3)))
    assert ops(model) == ["Conv", "Sigmoid", "Add"]


def test_broadcasting_add_keeps_its_meaning():
    nodes = [conv("a", "x", "p"), helper.make_node("Add", ["p", "r"], ["y"], name="add")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3), r=arr(1, 4, 1, 1)))
    assert ops(model) == ["Conv"]  # fused; the runtime adds with broadcasting as Add would


@pytest.mark.parametrize("make, opset, fused", [
    (lambda: [helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="f")], 13, "clip(0, 6)"),
    (lambda: [helper.make_node("Clip", ["c"], ["y"], name="f", min=-1.0, max=2.5)], 6, "clip(-1, 2.5)"),
    (lambda: [helper.make_node("LeakyRelu", ["c"], ["y"], name="f", alpha=0.2)], 13, "leaky_relu(0.2)"),
    (lambda: [helper.make_node("HardSigmoid", ["c"], ["y"], name="f", alpha=0.3, beta=0.4)], 13, "hard_sigmoid"),
    (lambda: [helper.make_node("HardSwish", ["c"], ["y"], name="f")], 14, "hard_swish"),
    (lambda: [helper.make_node("Sigmoid", ["c"], ["y"], name="f")], 13, "sigmoid"),
    (lambda: [helper.make_node("Sigmoid", ["c"], ["s"], name="f"), helper.make_node("Mul", ["c", "s"], ["y"])], 13,
     "swish"),
    (lambda: [helper.make_node("Sigmoid", ["c"], ["s"], name="f"), helper.make_node("Mul", ["s", "c"], ["y"])], 13,
     "swish"),
    (lambda: [helper.make_node("HardSigmoid", ["c"], ["s"], name="f", alpha=1 / 6, beta=0.5),
              helper.make_node("Mul", ["c", "s"], ["y"])], 13, "hard_swish"),
])
def test_activation_fuses(make, opset, fused):
    inits = dict(w=arr(4, 4, 3, 3), b=arr(4), lo=np.array(0, np.float32), hi=np.array(6, np.float32))
    model = both([conv("conv", "x", "c", b="b")] + make(), inits, opset=opset)
    assert ops(model) == ["Conv"]
    assert f"+ {fused}" in described(model)[0]


def test_clip_with_bounds_from_the_graph_is_not_fused():
    nodes = [conv("conv", "x", "c"), helper.make_node("ReduceMean", ["x"], ["lo"], keepdims=0),
             helper.make_node("Clip", ["c", "lo"], ["y"], name="f")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3)))
    assert ops(model)[-1] == "Clip"


def test_identity_and_inference_dropout_go():
    nodes = [helper.make_node("Identity", ["x"], ["i"]), conv("conv", "i", "c"),
             helper.make_node("Dropout", ["c"], ["d"], name="drop"), helper.make_node("Relu", ["d"], ["y"], name="r")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3)))
    assert ops(model) == ["Conv"]


def test_a_pad_of_zeros_goes_and_a_real_pad_stays():  # DenseNet's export pads by zero before each pool
    nodes = [conv("conv", "x", "c"), helper.make_node("Pad", ["c", "zeros"], ["p"], name="none"),
             helper.make_node("AveragePool", ["p"], ["q"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Pad", ["q", "ones"], ["y"], name="real")]
    model = both(nodes, dict(w=arr(4, 4, 3, 3), zeros=np.zeros(8, np.int64), ones=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)))
    assert ops(model) == ["Conv", "AveragePool", "Pad"]
    assert model.run({"x": arr(*X_SHAPE)})[0].shape == (2, 4, 6, 5)  # the real Pad pads the image by one


def test_fused_model_propagates_nan_and_runs_twice_the_same():
    nodes = [conv("conv", "x", "c"), helper.make_node("Relu", ["c"], ["y"], name="r")]
    x = arr(*X_SHAPE)
    x[0, 0, 4, 3] = np.nan
    model = both(nodes, dict(w=arr(4, 4, 3, 3)), x=np.nan_to_num(x))
    y = model(x).numpy()
    assert np.isnan(y[0, :, 3:6, 2:5]).all() and not np.isnan(y[1]).any()
    assert np.array_equal(model(np.nan_to_num(x)).numpy(), model(np.nan_to_num(x)).numpy())


def test_models_loaded_one_after_another_keep_their_own_weights():
    # A loaded model's constant weights are prepared once and never compared again
    # (ops/prepared_weights.hpp, FrozenWeights): a model loaded after another one went, whose
    # weights may land at the same addresses, must still run its own. 3x3 over 32 channels takes
    # Winograd, whose transformed weights are the ones kept.
    x = arr(1, 32, 12, 12)
    for seed in range(4):
        w = np.random.default_rng(seed).standard_normal((32, 32, 3, 3)).astype(np.float32)
        data = build([conv("conv", "x", "y")], dict(w=w), x_shape=x.shape)
        fast = tinytorch.onnx.load_from_bytes(data)
        want = tinytorch.onnx.load_from_bytes(data, optimize=False)(x).numpy()
        for _ in range(2):
            got = fast(x).numpy()
            assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5, seed
        del fast


def test_shape_computations_follow_each_new_input_shape():
    # An exporter's dynamic reshape, y = x.view(x.size(0), -1) * 2: Shape -> Gather -> Unsqueeze ->
    # Concat -> Reshape. The nodes between Shape and Reshape run once per distinct input values and
    # are then taken from the runs before (model.cpp, ShapeMemo, four per node): batches that come
    # back, new ones, more than four, and a Reshape that reads the same shape at last.
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
             helper.make_node("Concat", ["n1", "minus_one"], ["to"], axis=0, name="concat"),
             helper.make_node("Reshape", ["x", "to"], ["flat"], name="reshape"),
             helper.make_node("Mul", ["flat", "two"], ["y"], name="mul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 60])],
                              [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                               numpy_helper.from_array(np.array([0], np.int64), "axes"),
                               numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
                               numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    model = tinytorch.onnx.load_from_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    for n in [2, 3, 2, 5, 7, 9, 11, 2, 3, 1, 1]:
        x = arr(n, 3, 4, 5)
        y = model(x).numpy()
        assert y.shape == (n, 60)
        assert np.array_equal(y, x.reshape(n, 60) * 2)


def test_shape_nodes_skipped_only_while_the_shapes_they_read_stay_the_same():
    # A run with input shapes seen before skips the Shape nodes and the shape-only nodes after them
    # (model.cpp, ShapeMemo::Run), each Shape node once the tensor it reads has the shape it read
    # then. Here that tensor's shape comes from a second input's values, not from the input shapes:
    # the same input shapes with other values must run the chain again.
    nodes = [helper.make_node("Reshape", ["x", "t"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["d"], axis=0),
             helper.make_node("Unsqueeze", ["d", "axes"], ["d1"]),
             helper.make_node("Concat", ["minus_one", "d1"], ["to"], axis=0),
             helper.make_node("Reshape", ["x", "to"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 12]),
                                           helper.make_tensor_value_info("t", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(1, np.int64), "one"),
                               numpy_helper.from_array(np.array([0], np.int64), "axes"),
                               numpy_helper.from_array(np.array([-1], np.int64), "minus_one")])
    model = tinytorch.onnx.load_from_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    x = arr(2, 12)
    for t in [[4, 6], [4, 6], [3, 8], [3, 8], [4, 6], [12, 2]]:
        y = model.run({"x": x, "t": np.array(t, np.int64)})[0].numpy()
        assert y.shape == (24 // t[1], t[1])
        assert np.array_equal(y, x.reshape(-1, t[1]))


def test_a_shape_the_model_outputs_stays_the_callers():
    # A Shape node whose output is a graph output runs every time: the tensor is the caller's, and
    # what the caller writes into it must not come back on the next run.
    graph = helper.make_graph([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("s", TensorProto.INT64, None),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = tinytorch.onnx.load_from_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    x = arr(2, 3)
    for _ in range(3):
        shape = model.run({"x": x})[0].numpy()
        assert shape.tolist() == [2, 3]
        shape[0] = 99  # the caller's own array (it shares the returned tensor's memory)


def test_inspect_counts_flops_params_and_plans_memory():
    # x -> conv a (+relu) -> conv b -> conv c: 4 -> 4 channels, 3x3, padding 1, over (1, 4, 9, 7).
    nodes = [conv("a", "x", "p", b="b"), helper.make_node("Relu", ["p"], ["q"], name="r"), conv("b", "q", "s"),
             conv("c", "s", "y")]
    x = arr(1, 4, 9, 7)
    model = tinytorch.onnx.load_from_bytes(build(nodes, dict(w=arr(4, 4, 3, 3), b=arr(4)), x_shape=x.shape))
    report = model.inspect(x, timed_runs=3)
    assert [n["op"] for n in report["nodes"]] == ["Conv", "Conv", "Conv"]
    a, b, c = report["nodes"]
    assert a["fused"].startswith("+ relu") and b["fused"] == ""
    assert a["output_shapes"] == [(1, 4, 9, 7)]
    per_output = 4 * 3 * 3  # multiply-adds per output value
    assert a["flops"] == 2 * 4 * 9 * 7 * per_output == report["flops"] // 3
    assert (a["params"], b["params"]) == (4 * 4 * 9 + 4, 4 * 4 * 9)
    assert report["params"] == a["params"] + 2 * b["params"]
    assert a["algorithm"] in tinytorch.backends.conv2d_algorithms()
    assert all(n["ms"] > 0 for n in report["nodes"]) and report["timed_runs"] == 3
    one = 4 * 9 * 7 * 4  # bytes of each conv's output
    # Three outputs in all; at most two alive at once (b reads a's, c reads b's); a's and c's
    # lifetimes do not meet, so the arena holds two.
    memory = report["memory"]
    planned = {k: memory.pop(k) for k in ("runtime_block_bytes", "runtime_tensors")}
    assert memory == dict(intermediate_bytes=3 * one, peak_live_bytes=2 * one, arena_bytes=2 * one)
    # The runtime's own block: a's and b's outputs at least (c's, the graph's output, outlives the
    # run and comes from the heap), each rounded up to 64 bytes.
    assert planned["runtime_tensors"] >= 2 and planned["runtime_block_bytes"] >= 2 * 1024
    assert report["input"] == (1, 4, 9, 7)


# The blocked layout (optimize.cpp, BlockedLayout).

def mobile_block(c_in, c_mid, prefix):
    """1x1 expand + clip, 3x3 depthwise + clip, 1x1 project, + the block's input: MobileNetV2's."""
    n = [helper.make_node("Conv", [f"{prefix}in", f"{prefix}w1", f"{prefix}b1"], [f"{prefix}e"], name=f"{prefix}expand"),
         helper.make_node("Clip", [f"{prefix}e", "lo", "hi"], [f"{prefix}ec"]),
         helper.make_node("Conv", [f"{prefix}ec", f"{prefix}w2"], [f"{prefix}d"], name=f"{prefix}dw", group=c_mid,
                          pads=[1, 1, 1, 1], strides=[1, 1]),
         helper.make_node("Clip", [f"{prefix}d", "lo", "hi"], [f"{prefix}dc"]),
         helper.make_node("Conv", [f"{prefix}dc", f"{prefix}w3"], [f"{prefix}p"], name=f"{prefix}project"),
         helper.make_node("Add", [f"{prefix}p", f"{prefix}in"], [f"{prefix}out"])]
    inits = {f"{prefix}w1": arr(c_mid, c_in, 1, 1, scale=0.3), f"{prefix}b1": arr(c_mid),
             f"{prefix}w2": arr(c_mid, 1, 3, 3, scale=0.3), f"{prefix}w3": arr(c_in, c_mid, 1, 1, scale=0.3)}
    return n, inits


@pytest.mark.parametrize("c, mid", [(16, 48), (20, 36), (24, 40)])
def test_blocked_layout_runs_a_mobile_network_and_converts_once(c, mid):
    # stem (3 -> c, stride 2) -> two MobileNetV2 blocks -> an SE-like gate -> GAP -> Flatten -> Gemm.
    # The stem fills a block of 8 (AVX2) or 16 (AVX-512) channels, the rule for a first layer; 20 and
    # 36 channels leave padding lanes in blocks of either width, 24 and 40 in blocks of 16.
    stem = helper.make_node("Conv", ["x", "ws"], ["s0"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2])
    relu = helper.make_node("Relu", ["s0"], ["b0in"])
    n1, i1 = mobile_block(c, mid, "b0")
    n1[-1].output[0] = "b1in"
    n2, i2 = mobile_block(c, mid, "b1")
    gate = [helper.make_node("GlobalAveragePool", ["b1out"], ["g"]),
            helper.make_node("Conv", ["g", "wg"], ["gs"], name="gate"),
            helper.make_node("HardSigmoid", ["gs"], ["gh"]),
            helper.make_node("Mul", ["b1out", "gh"], ["m"]),
            helper.make_node("GlobalAveragePool", ["m"], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["f"]),
            helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1)]
    inits = dict(ws=arr(c, 3, 3, 3, scale=0.3), wg=arr(c, c, 1, 1, scale=0.3), wf=arr(10, c),
                 lo=np.array(0, np.float32), hi=np.array(6, np.float32), **i1, **i2)
    graph = helper.make_graph([stem, relu] + n1 + n2 + gate, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 17, 15])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    fast = tinytorch.onnx.load_from_bytes(data)
    plain = tinytorch.onnx.load_from_bytes(data, optimize=False)
    x = arr(2, 3, 17, 15)
    got, want = fast(x).numpy(), plain(x).numpy()
    assert got.shape == want.shape == (2, 10)
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5
    # Every Conv, the activations, the Mul and the pools stay blocked: one conversion, before Flatten.
    assert fast.op_types.count("FromBlocked") == 1 and "ToBlocked" not in fast.op_types
    assert fast.op_types[fast.op_types.index("FromBlocked") + 1] == "Flatten"
    # Each block's expansion goes into its depthwise layer's node (too small here to fuse in bands).
    algorithms = [n["algorithm"] for n in fast.inspect(x, timed_runs=1)["nodes"] if n["op"] == "Conv"]
    assert algorithms == ["blocked"] + ["blocked pointwise, then depthwise", "blocked"] * 2 + ["blocked"]


def with_and_without(monkeypatch, data, x, variable):
    """The graph loaded with a pass and with `variable`=0 (the pass off), run on x: the same bits,
    and within 1e-5 of the graph as written. Returns the two models."""
    fused = tinytorch.onnx.load_from_bytes(data)
    monkeypatch.setenv(variable, "0")
    apart = tinytorch.onnx.load_from_bytes(data)
    monkeypatch.delenv(variable)
    want = tinytorch.onnx.load_from_bytes(data, optimize=False)(x).numpy()
    got = fused(x).numpy()
    assert np.array_equal(got, apart(x).numpy())
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5
    return fused, apart


def test_pointwise_then_depthwise_run_as_one_node_in_bands(monkeypatch):
    # A pointwise Conv whose output only a depthwise Conv reads becomes part of that node; where the
    # middle tensor is large (64 channels at 75x70: 1.3 MiB) it is computed a band of rows at a time.
    # The values are those of the two layers (bit for bit) and of the graph as written, for any
    # window of the depthwise layer.
    for k, stride, dilation, pads in [(3, 1, 1, [1, 1, 1, 1]), (3, 2, 1, [1, 1, 1, 1]), (5, 2, 1, [2, 2, 2, 2]),
                                      (3, 1, 2, [2, 2, 2, 2]), (3, 3, 1, [0, 1, 2, 0])]:
        nodes, inits = mobile_block(24, 64, "b")
        nodes[2] = helper.make_node("Conv", ["bec", "bw2"], ["bd"], name="bdw", group=64, pads=pads,
                                    strides=[stride, stride], dilations=[dilation, dilation])
        inits["bw2"] = arr(64, 1, k, k, scale=0.3)
        nodes = nodes[:-1]  # no residual: the depthwise layer may change the size
        nodes[-1].output[0] = "y"
        stem = [helper.make_node("Conv", ["x", "ws"], ["s0"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]),
                helper.make_node("Relu", ["s0"], ["bin"])]
        inits.update(ws=arr(24, 3, 3, 3, scale=0.3), lo=np.array(0, np.float32), hi=np.array(6, np.float32))
        graph = helper.make_graph(stem + nodes, "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 150, 140])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
                                  [numpy_helper.from_array(v, name) for name, v in inits.items()])
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
        x = arr(1, 3, 150, 140)
        fused, apart = with_and_without(monkeypatch, data, x, "TINYTORCH_FUSE_POINTWISE_DEPTHWISE")
        assert ops(fused) == ["Conv", "Conv", "Conv"] and ops(apart) == ["Conv"] * 4
        assert "Conv 'bexpand' (pointwise, + clip(0, 6))" in described(fused)[1]
        algorithms = [n["algorithm"] for n in fused.inspect(x, timed_runs=1)["nodes"] if n["op"] == "Conv"]
        assert algorithms[1] == "blocked pointwise + depthwise, fused in bands"
    # Not when someone else reads the expansion, nor for a strided first layer.
    nodes, inits = mobile_block(24, 64, "b")
    inits.update(ws=arr(24, 4, 3, 3, scale=0.3), lo=np.array(0, np.float32), hi=np.array(6, np.float32))
    stem = [helper.make_node("Conv", ["x", "ws"], ["s0"], name="stem", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["s0"], ["bin"])]
    seen = stem + nodes[:4] + [helper.make_node("Add", ["bdc", "bec"], ["y"])]
    assert ops(both(seen, inits)).count("Conv") == 3
    nodes[3].output[0] = "y"
    assert ops(both(stem + nodes[:4], inits)).count("Conv") == 2  # the same graph without the Add: one node
    nodes[0] = helper.make_node("Conv", ["bin", "bw1", "bb1"], ["be"], name="bexpand", strides=[2, 2])
    assert ops(both(stem + nodes[:4], inits)).count("Conv") == 3


def test_blocked_dense_layers_take_winograd_through_the_plain_layout_and_can_be_turned_off(monkeypatch):
    # A dense 3x3 layer on a blocked input stays blocked: where the plain selection picks Winograd
    # for its shape, the node converts its input to the plain layout and its output back.
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="pw2"),
             helper.make_node("Conv", ["b", "w3"], ["c"], name="dense", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "a"], ["r"]),  # a residual the dense layer adds, then its Relu
             helper.make_node("Relu", ["r"], ["y"])]
    inits = dict(w1=arr(32, 4, 1, 1), w2=arr(32, 32, 1, 1), w3=arr(32, 32, 3, 3))
    monkeypatch.setenv("TINYTORCH_BLOCKED_LAYOUT", "0")
    assert tinytorch.onnx.load_from_bytes(build(nodes, inits)).op_types == ["Conv", "Conv", "Conv"]
    monkeypatch.setenv("TINYTORCH_BLOCKED_LAYOUT", "1")
    data = build(nodes, inits, x_shape=(2, 4, 40, 36))
    model = tinytorch.onnx.load_from_bytes(data)
    x = arr(2, 4, 40, 36)
    want = tinytorch.onnx.load_from_bytes(data, optimize=False)(x).numpy()
    # A first layer feeding only a 3x3 layer of Winograd's kind (directly or through a pool: ResNet-18's
    # stem) stays plain; one feeding a pool then a pointwise layer (ResNet-50's) goes blocked.
    alone = build(nodes[:1] + [helper.make_node("Conv", ["a", "w3"], ["y"], name="dense", pads=[1, 1, 1, 1])],
                  dict(w1=arr(32, 4, 1, 1), w3=arr(32, 32, 3, 3)))
    assert tinytorch.onnx.load_from_bytes(alone).op_types == ["Conv", "Conv"]
    pool = helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    through = build([nodes[0], pool, helper.make_node("Conv", ["m", "w3"], ["y"], name="dense", pads=[1, 1, 1, 1])],
                    dict(w1=arr(32, 4, 1, 1), w3=arr(32, 32, 3, 3)))
    assert tinytorch.onnx.load_from_bytes(through).op_types == ["Conv", "MaxPool", "Conv"]
    into_pointwise = build([nodes[0], pool, helper.make_node("Conv", ["m", "w2"], ["y"], name="pw")],
                           dict(w1=arr(16, 4, 1, 1), w2=arr(16, 16, 1, 1)))
    assert tinytorch.onnx.load_from_bytes(into_pointwise).op_types == ["Conv", "MaxPool", "Conv", "FromBlocked"]
    assert model.op_types == ["Conv", "Conv", "Conv", "FromBlocked"]
    # Forced, so that the selection (which autotuning may move) is known: both ways of running it.
    # With 16 input channels Winograd's GEMMs are too short to pay for the layout changes: the
    # layer stays blocked whatever the plain selection says.
    sixteen = tinytorch.onnx.load_from_bytes(
        build(nodes, dict(w1=arr(16, 4, 1, 1), w2=arr(16, 16, 1, 1), w3=arr(16, 16, 3, 3)), x_shape=(2, 4, 40, 36)))
    # At stride 2 Winograd's scheme saves less: with 8-lane blocks it goes through the plain layout
    # where C * OC / (C + OC) >= 56 (128 channels in and out: 64), with 16 never.
    def strided(c):
        return build([nodes[0], helper.make_node("Conv", ["a", "w3"], ["y"], name="dense", pads=[1, 1, 1, 1],
                                                 strides=[2, 2])], dict(w1=arr(c, 4, 1, 1), w3=arr(c, c, 3, 3, scale=0.1)),
                     x_shape=(2, 4, 40, 36))
    wide_data = strided(128)
    wide, narrow = tinytorch.onnx.load_from_bytes(wide_data), tinytorch.onnx.load_from_bytes(strided(48))
    between = "winograd (plain, between layout changes)"
    for forced, net, ran in [("winograd", model, between), ("direct", model, "blocked"), ("winograd", sixteen, "blocked"),
                             ("winograd", wide, between if EIGHT_LANES else "blocked"), ("winograd", narrow, "blocked")]:
        tinytorch.backends.set_conv2d_algorithm(forced)
        try:
            if net is model:
                assert np.abs(model(x).numpy() - want).max() / np.abs(want).max() <= 1e-5
            if net is wide:
                got = wide(x).numpy()
                expected = tinytorch.onnx.load_from_bytes(wide_data, optimize=False)(x).numpy()
                assert np.abs(got - expected).max() / np.abs(expected).max() <= 1e-5
            dense = [n["algorithm"] for n in net.inspect(x, timed_runs=1)["nodes"] if n["name"] == "dense"]
        finally:
            tinytorch.backends.set_conv2d_algorithm("auto")
        assert dense == [ran]
    # A batch whose plain copies pass 8 MiB runs them in groups of images (ops.cpp,
    # kPlainGroupBytes), its residual too: the values of the graph as written.
    data = build(nodes, inits, x_shape=(24, 4, 40, 36))
    big = arr(24, 4, 40, 36)
    tinytorch.backends.set_conv2d_algorithm("winograd")
    try:
        got = tinytorch.onnx.load_from_bytes(data)(big).numpy()
        want = tinytorch.onnx.load_from_bytes(data, optimize=False)(big).numpy()
    finally:
        tinytorch.backends.set_conv2d_algorithm("auto")
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5


def test_blocked_layout_runs_pools_and_concat_of_an_inception_network():
    # stem 7x7 / 2 -> 1x1 -> MaxPool (ceil_mode) -> [1x1 | depthwise 3x3 | MaxPool -> 1x1 (the
    # last: padding lanes)] -> Concat -> BatchNormalization -> Relu -> a Pad of zeros ->
    # AveragePool (ceil_mode, padded) -> 1x1 -> GlobalAveragePool: one conversion, at the end, the
    # Relu folded into the BatchNormalization; the same values as the graph as written.
    for c in (16, 32):
        nodes = [helper.make_node("Conv", ["x", "ws"], ["s"], name="stem", pads=[3, 3, 3, 3], strides=[2, 2]),
                 helper.make_node("Relu", ["s"], ["sr"]),
                 helper.make_node("Conv", ["sr", "wp"], ["pre"], name="pre"),
                 helper.make_node("MaxPool", ["pre"], ["m"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
                 helper.make_node("Conv", ["m", "wa"], ["a"], name="branch1x1"),
                 helper.make_node("Conv", ["m", "wb"], ["b"], name="branch_dw", pads=[1, 1, 1, 1], group=c),
                 helper.make_node("MaxPool", ["m"], ["mp"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["mp", "wc"], ["cc"], name="pool_proj"),
                 helper.make_node("Concat", ["a", "b", "cc"], ["cat"], axis=1),
                 helper.make_node("BatchNormalization", ["cat", "bs", "bb", "bm", "bv"], ["bn"], epsilon=1e-3),
                 helper.make_node("Relu", ["bn"], ["br"]),
                 helper.make_node("Pad", ["br", "zeros"], ["bp"]),
                 helper.make_node("AveragePool", ["bp"], ["ap"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
                                  pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["ap", "wd"], ["d"], name="last"),
                 helper.make_node("GlobalAveragePool", ["d"], ["y"])]
        inits = dict(ws=arr(c, 3, 7, 7, scale=0.2), wp=arr(c, c, 1, 1, scale=0.3), wa=arr(c, c, 1, 1, scale=0.3),
                     wb=arr(c, 1, 3, 3, scale=0.3), wc=arr(12, c, 1, 1, scale=0.3), wd=arr(24, 2 * c + 12, 1, 1),
                     bs=arr(2 * c + 12), bb=arr(2 * c + 12), bm=arr(2 * c + 12),
                     bv=np.abs(arr(2 * c + 12)) + 0.5, zeros=np.zeros(8, np.int64))
        data = build(nodes, inits, x_shape=(2, 3, 45, 39))
        model = tinytorch.onnx.load_from_bytes(data)
        x = arr(2, 3, 45, 39)
        want = tinytorch.onnx.load_from_bytes(data, optimize=False)(x).numpy()
        got = model(x).numpy()
        assert got.shape == want.shape == (2, 24, 1, 1)
        assert np.abs(got - want).max() / np.abs(want).max() <= 1e-5
        assert model.op_types.count("FromBlocked") == 1 and "ToBlocked" not in model.op_types
        assert model.op_types[-1] == "FromBlocked" and "Relu" not in model.op_types
        # The BatchNormalization took the Concat in: it reads the branches and writes the affine
        # of their concatenation, which is never written.
        assert "Concat" not in model.op_types
        assert any(d.startswith("BatchNormalization") and "Concat" in d for d in model.describe_nodes())


def test_blocked_batch_norm_takes_in_only_a_concat_nobody_else_reads():
    # DenseNet's pattern, Concat -> BatchNormalization -> Relu -> Conv, twice: the first Concat is
    # also read by the second (as DenseNet's blocks are not, to hold the rule), so it stays; the
    # second is read by its BatchNormalization alone and goes into it. Padding lanes in the last
    # input (12 channels). The same values as the graph as written, on both block widths' rules.
    c = 16
    nodes = [helper.make_node("Conv", ["x", "w0"], ["f0"], name="stem"),
             helper.make_node("Conv", ["f0", "w1"], ["f1"], name="grow1"),
             helper.make_node("Concat", ["f0", "f1"], ["cat1"], axis=1),
             helper.make_node("BatchNormalization", ["cat1", "s1", "b1", "m1", "v1"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["f2"], name="grow2"),
             helper.make_node("Concat", ["cat1", "f2"], ["cat2"], axis=1),
             helper.make_node("BatchNormalization", ["cat2", "s2", "b2", "m2", "v2"], ["n2"]),
             helper.make_node("Relu", ["n2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3"], ["y"], name="last")]
    k1, k2 = 2 * c, 2 * c + 12
    inits = dict(w0=arr(c, 4, 1, 1), w1=arr(c, c, 1, 1), w2=arr(12, k1, 1, 1), w3=arr(8, k2, 1, 1),
                 s1=arr(k1), b1=arr(k1), m1=arr(k1), v1=np.abs(arr(k1)) + 0.5,
                 s2=arr(k2), b2=arr(k2), m2=arr(k2), v2=np.abs(arr(k2)) + 0.5)
    model = both(nodes, inits)
    assert model.op_types.count("Concat") == 1  # the one the second also reads
    took = [d for d in model.describe_nodes() if d.startswith("BatchNormalization") and "Concat" in d]
    assert len(took) == 1


def test_blocked_output_and_a_plain_residual_are_converted():
    # The graph's output comes from a blocked Conv; a residual computed in the plain layout (a
    # grouped layer's) is made blocked for the pointwise Conv that adds it.
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
             helper.make_node("Conv", ["a", "w0"], ["r"], name="grouped", pads=[1, 1, 1, 1], group=2),
             helper.make_node("Conv", ["a", "w2"], ["p"], name="pw2"),
             helper.make_node("Add", ["p", "r"], ["y"])]
    model = both(nodes, dict(w0=arr(16, 8, 3, 3), w1=arr(16, 4, 1, 1), w2=arr(16, 16, 1, 1)))
    assert "ToBlocked" in model.op_types and model.op_types[-1] == "FromBlocked"


def shuffle_graph(parts, groups, split_dims="ngkhw", back="nchw", others=()):
    """Convs from x into `parts` channel counts, Concat, and a channel shuffle as torch.onnx exports
    ShuffleNet's: the Reshape targets computed from Shape(concatenation) as the graph runs. split_dims
    / back name the Reshapes' targets ("n", "g" groups, "c" channels, "k" channels / groups, "h",
    "w", "x" for -1, "f" for h * w); the result feeds y through a 3x3 Conv of its channels when 4D."""
    nodes, inits = [], {}
    for i, c in enumerate(parts):
        inits[f"w{i}"] = arr(c, 4, 1, 1)
        nodes.append(helper.make_node("Conv", ["x", f"w{i}"], [f"p{i}"], name=f"part{i}"))
    names = [f"p{i}" for i in range(len(parts))]
    if len(parts) > 1:
        nodes.append(helper.make_node("Concat", names, ["cat"], name="concat", axis=1))
    else:
        nodes.append(helper.make_node("Identity", names, ["cat"], name="same"))
    inits.update(i0=np.array(0, np.int64), i1=np.array(1, np.int64), i2=np.array(2, np.int64),
                 i3=np.array(3, np.int64), ax0=np.array([0], np.int64), g=np.array([groups], np.int64),
                 gs=np.array(groups, np.int64), neg=np.array([-1], np.int64))
    nodes.append(helper.make_node("Shape", ["cat"], ["s"]))
    for d, i in zip("nchw", range(4)):
        nodes.append(helper.make_node("Gather", ["s", f"i{i}"], [f"s_{d}"]))
        nodes.append(helper.make_node("Unsqueeze", [f"s_{d}", "ax0"], [f"d_{d}"]))
    nodes.append(helper.make_node("Div", ["s_c", "gs"], ["s_k"]))
    nodes.append(helper.make_node("Unsqueeze", ["s_k", "ax0"], ["d_k"]))
    nodes.append(helper.make_node("Mul", ["s_h", "s_w"], ["s_f"]))
    nodes.append(helper.make_node("Unsqueeze", ["s_f", "ax0"], ["d_f"]))
    named = dict(n="d_n", g="g", c="d_c", k="d_k", h="d_h", w="d_w", x="neg", f="d_f")
    nodes.append(helper.make_node("Concat", [named[d] for d in split_dims], ["shape1"], axis=0))
    nodes.append(helper.make_node("Reshape", ["cat", "shape1"], ["r1"], name="split"))
    nodes.append(helper.make_node("Transpose", ["r1"], ["t"], name="swap", perm=[0, 2, 1, 3, 4]))
    nodes.append(helper.make_node("Concat", [named[d] for d in back], ["shape2"], axis=0))
    nodes.append(helper.make_node("Reshape", ["t", "shape2"], ["r2"], name="back"))
    nodes.extend(others)
    if len(back) == 4:
        inits["wy"] = arr(5, sum(parts), 3, 3)
        nodes.append(helper.make_node("Conv", ["r2", "wy"], ["y"], name="after", pads=[1, 1, 1, 1]))
    else:
        nodes.append(helper.make_node("Relu", ["r2"], ["y"]))
    return nodes, inits


def test_channel_shuffle_and_its_concat_run_as_one_node(monkeypatch):
    # Concat, Reshape, Transpose, Reshape: one ChannelShuffle node that copies each channel once,
    # bit for bit the four operators' values, for 1-3 inputs of any channel counts and 2-5 groups;
    # the Shape node that read the concatenation reads its inputs' shapes instead.
    for parts, groups in [((6, 6), 2), ((5, 7), 3), ((4, 3, 5), 4), ((12,), 3), ((9, 1), 5)]:
        nodes, inits = shuffle_graph(parts, groups)
        data = build(nodes, inits, x_shape=(3, 4, 5, 6))
        x = arr(3, 4, 5, 6)
        fused, apart = with_and_without(monkeypatch, data, x, "TINYTORCH_FUSE_CHANNEL_SHUFFLE")
        assert "ChannelShuffle" in fused.op_types and "Transpose" not in fused.op_types
        assert "Transpose" in apart.op_types and "ChannelShuffle" not in apart.op_types
        shuffle = [d for d in fused.describe_nodes() if d.startswith("ChannelShuffle")][0]
        assert "Reshape 'split'" in shuffle and "Transpose 'swap'" in shuffle
        assert ("Concat 'concat'" in shuffle) == (len(parts) > 1)
        assert ops(fused).count("Concat") == 2  # the two targets' only
        # The node on its own: a shuffled copy of the concatenation, channel i * g + j from j * C/g + i.
        probe_nodes, probe_inits = shuffle_graph(parts, groups)
        probe_nodes[-1] = helper.make_node("Identity", ["r2"], ["y"])
        probe = tinytorch.onnx.load_from_bytes(build(probe_nodes, probe_inits, x_shape=(3, 4, 5, 6)))
        cat = np.concatenate([np.einsum("oc,nchw->nohw", probe_inits[f"w{i}"][:, :, 0, 0], x)
                              for i in range(len(parts))], axis=1)
        C = cat.shape[1]
        order = [j * (C // groups) + i for i in range(C // groups) for j in range(groups)]
        np.testing.assert_allclose(probe(x).numpy(), cat[:, order], rtol=1e-5, atol=1e-5)


def test_channel_shuffle_runs_as_written_where_the_shapes_are_not_a_shuffle():
    # The targets are computed as the graph runs: where they are not [N, g, C/g, H, W] and back to
    # [N, C, H, W], the node runs the operators as written (the same values as the graph unoptimized).
    for split_dims, back in [("ngkwh", "nchw"), ("ngkhw", "ncf"), ("nkghw", "nxhw")]:
        nodes, inits = shuffle_graph((6, 10), 2, split_dims, back)
        data = build(nodes, inits, x_shape=(2, 4, 3, 5))
        x = arr(2, 4, 3, 5)
        model = tinytorch.onnx.load_from_bytes(data)
        assert "ChannelShuffle" in model.op_types
        got, want = model(x).numpy(), tinytorch.onnx.load_from_bytes(data, optimize=False)(x).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Not when the concatenation has another reader than the shuffle and Shape nodes, nor for
    # another permutation.
    nodes, inits = shuffle_graph((6, 6), 2, others=[helper.make_node("Relu", ["cat"], ["z"])])
    model = tinytorch.onnx.load_from_bytes(build(nodes, inits, outputs=("y", "z"), x_shape=(2, 4, 3, 5)))
    shuffle = [d for d in model.describe_nodes() if d.startswith("ChannelShuffle")]  # the Reshapes, Transpose
    assert len(shuffle) == 1 and "Concat" not in shuffle[0] and "Concat 'concat'" in model.describe_nodes()
    nodes, inits = shuffle_graph((6, 6), 2)
    nodes[[n.name for n in nodes].index("swap")] = helper.make_node("Transpose", ["r1"], ["t"], name="swap",
                                                                     perm=[0, 1, 2, 4, 3])
    model = tinytorch.onnx.load_from_bytes(build(nodes, inits, x_shape=(2, 4, 3, 3)))
    assert "ChannelShuffle" not in model.op_types and "Transpose" in model.op_types

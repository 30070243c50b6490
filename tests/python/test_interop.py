"""The Python module's contract: zero-copy numpy sharing, dtype conversion, error mapping, Python
subclasses of Module, parameters and reprs."""
import numpy as np
import pytest

import tinytorch
from tinytorch.core.layers import Linear, Module, ReLU, Sequential
from tinytorch.core.spatial import AvgPool2D, Conv2D, Flatten, MaxPool2D, conv2d_naive, flatten
from tinytorch.core.tensor import Parameter, Tensor


def test_tensor_shares_memory_with_a_float32_array_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = Tensor(a)
    assert np.shares_memory(t.data, a)
    a[1, 2] = 100.0  # numpy -> tensor
    assert t.data[1, 2] == 100.0
    t.data[0, 0] = -5.0  # tensor -> numpy
    assert a[0, 0] == -5.0
    assert np.shares_memory(t.data, t.data)  # every .data is a view of the same storage
    assert np.shares_memory(np.asarray(t), a)


def test_layer_output_is_not_copied_on_the_way_out():
    y = Conv2D(2, 3, 3)(Tensor(np.random.randn(2, 6, 6)))
    view = y.data
    view[0, 0, 0] = 42.0
    assert y.data[0, 0, 0] == 42.0
    assert view.flags["C_CONTIGUOUS"] and view.dtype == np.float32


def test_tensor_outlives_its_source_array_and_array_outlives_tensor():
    t = Tensor(np.ones((2, 2), np.float32))  # the temporary array is kept alive by the tensor
    assert t.data.sum() == 4.0
    view = Conv2D(1, 1, 1)(Tensor(np.ones((1, 2, 2)))).data  # the tensor dies, its view lives on
    assert view.shape == (1, 2, 2)


@pytest.mark.parametrize("dtype,becomes", [(np.float64, np.float32), (np.float16, np.float32), (np.int32, np.int64),
                                           (np.uint8, np.int64), (np.int16, np.int64)])
def test_other_dtypes_are_converted_to_their_kind(dtype, becomes):
    a = np.array([[1, 0], [3, 4]]).astype(dtype)
    t = Tensor(a)
    assert t.data.dtype == becomes
    assert not np.shares_memory(t.data, a)
    np.testing.assert_array_equal(t.data, a.astype(becomes))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_our_dtypes_are_shared_even_when_strided(dtype):
    a = (np.arange(24).reshape(4, 6) % 3).astype(dtype)
    view = a[::2, 1::2]
    t = Tensor(view)
    assert t.dtype == dtype and t.shape == (2, 3) and not t.is_contiguous()
    assert np.shares_memory(t.data, a)
    np.testing.assert_array_equal(t.numpy(), view)


def test_lists_numbers_and_noncontiguous_arrays():
    assert Tensor([[1, 2], [3, 4]]).shape == (2, 2)
    assert Tensor(3.5).shape == () and Tensor(3.5).item() == 3.5
    base = np.arange(20, dtype=np.float32).reshape(4, 5)
    t = Tensor(base[:, ::2])  # a strided view: shared as one
    np.testing.assert_array_equal(t.data, base[:, ::2])
    assert np.shares_memory(t.data, base) and t.stride() == (5, 2)
    readonly = np.ones(3, np.float32)
    readonly.flags.writeable = False
    assert not np.shares_memory(Tensor(readonly).data, readonly)  # never write through a read-only array


def test_shape_size_ndim_repr():
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.size == 24 and t.ndim == 3 and len(t) == 2
    assert repr(Tensor([[1.0, 2], [3, 4]])) == "tensor([[1, 2],\n        [3, 4]], shape=(2, 2))"
    assert repr(Tensor([[1, 2], [3, 4]])) == "tensor([[1, 2],\n        [3, 4]], shape=(2, 2), dtype=int64)"
    assert repr(Conv2D(3, 16, 3)) == "Conv2D(3, 16, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(MaxPool2D(pool_size=2)).startswith("MaxPool2D(kernel_size=(2, 2), stride=(2, 2)")


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        Tensor("not numbers")
    with pytest.raises(TypeError):
        Tensor(None)
    with pytest.raises(TypeError):
        Tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError):
        Conv2D(3, 16, "3")
    with pytest.raises(TypeError):
        Conv2D(3, 16, 3)(object())
    with pytest.raises(TypeError):
        MaxPool2D()


def test_cpp_errors_are_value_errors_with_the_same_message():
    conv = Conv2D(3, 16, 3)
    with pytest.raises(ValueError, match=r"^Expected 3D input \(channels, height, width\), got 2D"):
        conv(Tensor(np.zeros((28, 28))))
    with pytest.raises(ValueError, match=r"^Expected 3 input channels, got 1$"):
        conv(Tensor(np.zeros((1, 28, 28))))
    with pytest.raises(ValueError, match="groups=2 must be positive and divide in_channels=3"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="'valid' or 'same', got 'full'"):
        Conv2D(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="must be at most half the kernel size"):
        MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair of ints"):
        Conv2D(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="expected 800 input features, got 10"):
        Linear(input_size=800, output_size=10)(Tensor(np.zeros(10)))
    with pytest.raises(ValueError, match=r"thread count in \[1, 1024\], got 0"):
        tinytorch.set_num_threads(0)
    with pytest.raises(IndexError):
        Sequential(ReLU())[3]
    with pytest.raises(ValueError, match=r"expected shape \(16, 3, 3, 3\), got \(3, 3\)"):
        conv.weight = Tensor(np.zeros((3, 3)))


def test_conv2d_naive_takes_and_returns_numpy():
    x = np.random.randn(2, 5, 6)
    k = np.array([[1, 0], [0, -1]])
    out = conv2d_naive(x, k, bias=np.float64(0.5))
    assert isinstance(out, np.ndarray) and out.shape == (2, 4, 5)
    want = x[:, :-1, :-1] - x[:, 1:, 1:] + 0.5
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_layer_attributes_and_parameters():
    conv = Conv2D(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=(1, 2), groups=2, bias=False)
    assert conv.kernel_size == (3, 5) and conv.stride == (2, 2) and conv.padding == (1, 2)
    assert conv.dilation == (1, 2) and conv.groups == 2 and conv.bias is None and not conv.use_bias
    assert conv.weight.shape == (8, 2, 3, 5)
    assert Conv2D(1, 1, 3, padding="same").padding == "same"
    fc = Linear(input_size=5, output_size=2)
    assert [n for n, _ in fc.named_parameters()] == ["weight", "bias"]
    new_w = np.ones((2, 5), np.float32)
    fc.weight = Tensor(new_w)
    assert np.shares_memory(fc.weight.data, new_w)
    fc.bias.data[:] = 0.0
    np.testing.assert_allclose(fc(Tensor(np.ones(5))).data, [5.0, 5.0])
    fc.weight.data = np.zeros((2, 5))  # assigning .data copies values in
    np.testing.assert_allclose(fc(Tensor(np.ones(5))).data, [0.0, 0.0])


def test_python_subclass_of_module():
    class TinyNet(Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv2D(1, 2, 3)
            self.pool = MaxPool2D(pool_size=2)
            self.fc = Linear(input_size=2 * 2 * 2, output_size=3)
            self.scale = Parameter(np.array([2.0]))
            self.constant = Tensor(np.array([3.0]))  # a plain tensor: not a parameter, as in PyTorch

        def forward(self, x):
            return self.fc(flatten(self.pool(self.conv(x))))

    net = TinyNet()
    x = Tensor(np.random.randn(1, 6, 6))
    assert net(x).shape == (3,)
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "fc.weight", "fc.bias"]  # own first, as torch.nn
    # A Python module inside a C++ Sequential: forward is called back into Python.
    seq = Sequential(net, ReLU())
    del net
    out = seq(x)
    assert out.shape == (3,) and (out.data >= 0).all()
    assert [n for n, _ in seq.named_parameters()] == ["0.scale", "0.conv.weight", "0.conv.bias", "0.fc.weight",
                                                      "0.fc.bias"]


def test_sequential_with_batch_and_flatten_module():
    seq = Sequential(Conv2D(3, 4, 3, padding=1), ReLU(), AvgPool2D(2), Flatten(), Linear(4 * 4 * 4, 5))
    assert seq(Tensor(np.random.randn(6, 3, 8, 8))).shape == (6, 5)
    assert len(seq) == 5 and isinstance(seq[0], Conv2D)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]


def test_threads_setting_round_trips():
    before = tinytorch.get_num_threads()
    tinytorch.set_num_threads(1)
    assert tinytorch.get_num_threads() == 1
    tinytorch.set_num_threads(before)


def test_seeded_init_is_reproducible():
    tinytorch.manual_seed(123)
    a = Conv2D(3, 4, 3).weight.data.copy()
    tinytorch.manual_seed(123)
    np.testing.assert_array_equal(Conv2D(3, 4, 3).weight.data, a)


def test_forcing_a_conv_algorithm_from_python():
    import tinytorch.backends as tb
    assert "winograd" in tb.conv2d_algorithms() and tb.get_conv2d_algorithm() == "auto"
    x = Tensor(np.random.randn(2, 8, 9, 9))
    conv = Conv2D(8, 4, 3, padding=1)
    auto = conv(x).data.copy()
    try:
        tb.set_conv2d_algorithm("reference")
        assert tb.select_conv2d_algorithm((2, 8, 9, 9), (4, 8, 3, 3), padding=1) == "reference"
        np.testing.assert_allclose(conv(x).data, auto, rtol=1e-4, atol=1e-4)
        with pytest.raises(ValueError, match="unknown conv2d algorithm 'fft'"):
            tb.set_conv2d_algorithm("fft")
    finally:
        tb.set_conv2d_algorithm("auto")


def test_conv_autotune_from_python():
    """Autotuning times a new shape once, then reuses the winner; results match the reference."""
    import tinytorch.backends as tb
    x = Tensor(np.random.RandomState(3).randn(2, 16, 12, 12).astype(np.float32))
    conv = Conv2D(16, 24, 3, padding=1)
    assert tb.get_conv2d_autotune() is False
    try:
        tb.clear_conv2d_autotune_cache()
        tb.set_conv2d_autotune(True)
        first = conv(x).data.copy()
        assert tb.conv2d_autotune_cache_size() == 1
        np.testing.assert_array_equal(conv(x).data, first)
        assert tb.conv2d_autotune_cache_size() == 1
        chosen = tb.select_conv2d_algorithm((2, 16, 12, 12), (24, 16, 3, 3), padding=1)
        assert chosen in tb.conv2d_algorithms() and chosen != "reference"
        tb.set_conv2d_algorithm("reference")
        np.testing.assert_allclose(conv(x).data, first, rtol=1e-4, atol=1e-4)
    finally:
        tb.set_conv2d_algorithm("auto")
        tb.set_conv2d_autotune(False)
        tb.clear_conv2d_autotune_cache()
    assert tb.conv2d_autotune_cache_size() == 0


def test_weight_cache_from_python():
    """Prepared weights are kept between calls and re-made when the weight changes in place (here
    through the numpy array over the parameter's memory); the budget can be set, read and cleared."""
    import tinytorch.backends as tb
    saved = tb.get_weight_cache_bytes()
    x = Tensor(np.random.RandomState(4).randn(2, 8, 10, 10).astype(np.float32))
    conv = Conv2D(8, 12, 3, padding=1)
    try:
        tb.set_weight_cache_bytes(64 << 20)  # on, whatever TINYTORCH_WEIGHT_CACHE_MB says
        tb.set_conv2d_algorithm("winograd")
        tb.clear_weight_cache()
        first = conv(x).data.copy()
        assert tb.weight_cache_held_bytes() > 0
        np.testing.assert_array_equal(conv(x).data, first)
        conv.weight.data[0, 0, 1, 1] += 1.0  # in place, same address
        changed = conv(x).data.copy()
        tb.set_conv2d_algorithm("reference")
        np.testing.assert_allclose(changed, conv(x).data, rtol=1e-4, atol=1e-4)
        assert not np.array_equal(changed, first)
        tb.set_weight_cache_bytes(0)
        assert tb.get_weight_cache_bytes() == 0 and tb.weight_cache_held_bytes() == 0
        with pytest.raises(ValueError, match="expected a budget of 0 bytes or more, got -1"):
            tb.set_weight_cache_bytes(-1)
    finally:
        tb.set_conv2d_algorithm("auto")
        tb.set_weight_cache_bytes(saved)
        tb.clear_weight_cache()
    assert tb.weight_cache_held_bytes() == 0


def test_weight_writes_after_a_call_are_seen_by_the_next():
    """Whatever writes a weight between two calls, the second follows: a numpy view taken before
    the first call and kept across it (the view marks the storage exposed, so the weight is
    compared), and tinytorch's own copy_ and fill_ on a weight no view was taken of (they advance
    its storage's version). Each call against the reference algorithm."""
    import tinytorch.backends as tb
    rng = np.random.RandomState(5)
    x = Tensor(rng.randn(2, 8, 10, 10).astype(np.float32))
    kept, fresh = Conv2D(8, 12, 3, padding=1), Conv2D(8, 12, 3, padding=1)
    saved = tb.get_weight_cache_bytes()

    def check(conv):
        tb.set_conv2d_algorithm("winograd")
        got = conv(x).data.copy()
        tb.set_conv2d_algorithm("reference")
        np.testing.assert_allclose(got, conv(x).data, rtol=1e-4, atol=1e-4)
        return got
    try:
        tb.set_weight_cache_bytes(64 << 20)
        tb.clear_weight_cache()
        view = kept.weight.data
        first = check(kept)
        view[1, 2, 0, 0] -= 0.5
        assert not np.array_equal(check(kept), first)
        first = check(fresh)
        check(fresh)
        fresh.weight.copy_(rng.randn(12, 8, 3, 3).astype(np.float32))
        second = check(fresh)
        assert not np.array_equal(second, first)
        fresh.weight[3].fill_(0.5)
        assert not np.array_equal(check(fresh), second)
    finally:
        tb.set_conv2d_algorithm("auto")
        tb.set_weight_cache_bytes(saved)
        tb.clear_weight_cache()


def test_example_training_script_learns(tmp_path):
    """The Python example trains on 2000 images for one epoch and must beat chance by far."""
    import os
    import subprocess
    import sys
    if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train_fashion_mnist.py")
    ckpt = tmp_path / "model.safetensors"
    out = subprocess.run([sys.executable, script, "--epochs", "1", "--limit", "2000", "--checkpoint", str(ckpt)],
                         capture_output=True, text=True, check=True).stdout
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 65.0, out
    model = tinytorch.models.fashion_cnn()
    meta = tinytorch.load_checkpoint(str(ckpt), model)
    assert meta["epoch"] == "1" and meta["optimizer"] == "adam"


def test_bad_inputs_from_python_are_typed_errors():
    """The Python side of the bad-input matrix: each case a typed exception, never a crash."""
    import tinytorch.functional as F
    cases = [
        (ValueError, lambda: Conv2D(3, 4, 3)(Tensor(np.zeros((2, 3))))),                  # wrong ndim
        (ValueError, lambda: Conv2D(3, 4, 3)(Tensor(np.zeros((2, 5, 8, 8))))),            # wrong channels
        (ValueError, lambda: Conv2D(3, 4, 3, stride=0)),                                   # stride 0
        (ValueError, lambda: Conv2D(3, 4, 3, dilation=(1, 0))),                            # dilation 0
        (ValueError, lambda: Conv2D(3, 4, 3, groups=2)),                                   # groups
        (ValueError, lambda: Conv2D(1, 1, 9)(Tensor(np.zeros((1, 4, 4))))),                # kernel > input
        (ValueError, lambda: Conv2D(-1, 4, 3)),                                             # negative size
        (ValueError, lambda: Tensor(np.zeros(4)).reshape(3)),                               # bad reshape
        (ValueError, lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), [0])),               # labels vs data
        (ValueError, lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), [0, 7])),            # label range
        (ValueError, lambda: tinytorch.data.load_mnist_folder("/nonexistent")),             # missing data
        (ValueError, lambda: tinytorch.load_checkpoint("/nonexistent", Linear(2, 2))),      # missing file
        (ValueError, lambda: tinytorch.optim.SGD([Tensor(np.zeros(2))], lr=-1.0)),           # bad lr
        (ValueError, lambda: MaxPool2D(2)(Tensor(np.zeros((1, 0, 4, 4))))),                 # empty channels
        (MemoryError, lambda: tinytorch._tinytorch.Tensor.zeros([1 << 40])),              # 4 TiB
        (ValueError, lambda: tinytorch._tinytorch.Tensor.zeros([1 << 40, 1 << 40])),      # overflows int64
        (TypeError, lambda: Tensor({"a": 1})),                                              # wrong type
        (TypeError, lambda: Conv2D(3, 4, 3.5)),                                             # float kernel size
        (ValueError, lambda: Tensor(np.zeros(3)).backward()),                               # nothing to backprop
    ]
    for expected, fn in cases:
        with pytest.raises(expected):
            fn()
    # NaN and Inf propagate as in PyTorch.
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = MaxPool2D(2)(Tensor(x)).data
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 1] == 1.0
    # Non-contiguous and non-float32 arrays are converted, never misread.
    base = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)[:, :, ::2, ::2]
    np.testing.assert_array_equal(Tensor(base).data, base.astype(np.float32))

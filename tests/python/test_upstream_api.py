"""Upstream TinyTorch's current API, from its documented names and behaviour: module paths, top-level
imports, numpy-style Tensor spellings, and a student's MLP and CNN trained with its optimizers,
losses, DataLoader and Trainer. Written from the documentation, run on tinytorch's core."""
import numpy as np
import pytest

import tinytorch


def test_module_paths_and_top_level_names_import():
    from tinytorch import (SGD, Adam, AdamW, AvgPool2d, BatchNorm2d, BinaryCrossEntropyLoss, Compose, Conv2d,  # noqa
                           CosineSchedule, CrossEntropyLoss, DataLoader, Dataset, Dropout, GELU, Layer, Linear,
                           MaxPool2d, MSELoss, RandomCrop, RandomHorizontalFlip, ReLU, Sigmoid, Softmax, Tanh, Tensor,
                           TensorDataset, Trainer, clip_grad_norm)
    from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401,F811
    from tinytorch.core.autograd import enable_autograd
    from tinytorch.core.layers import Dropout, Layer, Linear  # noqa: F401,F811
    from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss  # noqa: F401,F811
    from tinytorch.core.optimizers import SGD, Adam, AdamW  # noqa: F401,F811
    from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d  # noqa: F401,F811
    from tinytorch.core.tensor import Tensor as T2
    from tinytorch.core.training import CosineSchedule, Trainer, clip_grad_norm  # noqa: F401,F811
    from tinytorch.data.loader import DataLoader, Dataset, TensorDataset  # noqa: F401,F811
    import tinytorch
    assert T2 is Tensor and Layer is tinytorch.nn.Module and Conv2d is tinytorch.Conv2D
    assert enable_autograd() is None and enable_autograd(quiet=True) is None


def test_tensor_spellings_of_upstream():
    from tinytorch import Tensor
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(x.data, np.ndarray) and x.shape == (2, 2) and x.size == 4 and x.dtype == np.float32
    np.testing.assert_array_equal((x + Tensor([[1.0, 1.0], [1.0, 1.0]])).data, [[2, 3], [4, 5]])
    np.testing.assert_array_equal((x * 2 - 1).data, [[1, 3], [5, 7]])
    np.testing.assert_array_equal((x / 2).data, [[0.5, 1], [1.5, 2]])
    np.testing.assert_array_equal(x.matmul(x).data, [[7, 10], [15, 22]])
    np.testing.assert_array_equal(x.reshape(4, -1).shape, (4, 1))
    np.testing.assert_array_equal(x.sum(axis=0).data, [4, 6])
    assert x.mean().item() == 2.5 and x.max().item() == 4.0
    np.testing.assert_array_equal(x.max(axis=1, keepdims=True).data, [[2], [4]])
    np.testing.assert_array_equal(x.transpose().data, [[1, 3], [2, 4]])
    assert x[0, 1].item() == 2.0 and np.allclose(x, [[1, 2], [3, 4]])
    w = Tensor(np.ones((2, 1)), requires_grad=True)
    (x @ w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [[4], [6]])
    assert Tensor(5).shape == () and Tensor([1, 2, 3]).dtype == np.int64


def test_activations_layers_and_losses_behave_as_documented():
    from tinytorch import (GELU, BinaryCrossEntropyLoss, CrossEntropyLoss, Dropout, Linear, MSELoss, ReLU, Sigmoid,
                           Softmax, Tanh, Tensor)
    x = Tensor(np.array([[-1.0, 0.0, 2.0]], np.float32))
    np.testing.assert_array_equal(ReLU()(x).data, [[0, 0, 2]])
    np.testing.assert_allclose(Sigmoid()(x).data, 1 / (1 + np.exp(-x.data)), rtol=1e-6)
    np.testing.assert_allclose(Tanh()(x).data, np.tanh(x.data), rtol=1e-6)
    np.testing.assert_allclose(Softmax()(x).data.sum(axis=-1), [1.0], rtol=1e-6)
    np.testing.assert_allclose(GELU()(x).data, [[-0.15865525, 0.0, 1.9544997]], rtol=1e-5)
    layer = Linear(3, 2)
    assert layer(x).shape == (1, 2) and len(layer.parameters()) == 2 and layer.weight.requires_grad
    drop = Dropout(0.5)
    np.testing.assert_array_equal(drop(x, training=False).data, x.data)
    with pytest.raises(ValueError):
        Dropout(1.5)
    assert MSELoss()(Tensor([1.0, 3.0]), Tensor([0.0, 1.0])).item() == pytest.approx(2.5)
    logits = Tensor(np.array([[2.0, 1.0, 0.1], [0.5, 2.1, 0.9]], np.float32))
    want = -np.mean(np.log(np.exp(logits.data) / np.exp(logits.data).sum(1, keepdims=True))[[0, 1], [0, 1]])
    assert CrossEntropyLoss()(logits, Tensor([0, 1])).item() == pytest.approx(want, rel=1e-5)
    p = Tensor(np.array([0.9, 0.2], np.float32))
    assert BinaryCrossEntropyLoss()(p, Tensor([1.0, 0.0])).item() == pytest.approx(-np.mean(np.log([0.9, 0.8])),
                                                                                    rel=1e-5)


def test_student_mlp_trains_with_sgd_and_a_dataloader():
    from tinytorch import SGD, CrossEntropyLoss, DataLoader, Layer, Linear, ReLU, Tensor, TensorDataset
    rng = np.random.RandomState(0)
    xs = rng.standard_normal((200, 2)).astype(np.float32)
    ys = (xs[:, 0] * xs[:, 1] > 0).astype(np.int64)  # XOR of the signs: needs the hidden layer

    class MLP(Layer):
        def __init__(self):
            super().__init__()
            self.hidden = Linear(2, 16)
            self.act = ReLU()
            self.out = Linear(16, 2)

        def forward(self, x):
            return self.out(self.act(self.hidden(x)))

    model = MLP()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = CrossEntropyLoss()
    loader = DataLoader(TensorDataset(Tensor(xs), Tensor(ys)), batch_size=20, shuffle=True)
    for _ in range(40):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    accuracy = (model(Tensor(xs)).data.argmax(axis=1) == ys).mean()
    assert accuracy > 0.9


def test_cnn_with_trainer_schedule_and_clipping():
    from tinytorch import (Adam, BatchNorm2d, Conv2d, CosineSchedule, CrossEntropyLoss, DataLoader, Linear, MaxPool2d,
                           ReLU, Tensor, TensorDataset, Trainer, clip_grad_norm)
    from tinytorch.nn import Flatten, Sequential
    tinytorch.manual_seed(0)  # the layers' initial weights: independent of the tests that ran before
    rng = np.random.RandomState(1)
    images = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    labels = (images[:, 0, :4].mean(axis=(1, 2)) > images[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    model = Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 2))
    schedule = CosineSchedule(max_lr=0.05, min_lr=0.001, total_epochs=8)
    assert schedule.get_lr(0) == pytest.approx(0.05) and schedule.get_lr(8) == pytest.approx(0.001)
    trainer = Trainer(model, Adam(model.parameters()), CrossEntropyLoss(), scheduler=schedule, grad_clip_norm=5.0,
                      progress=False)
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True, seed=0)
    first = trainer.train_epoch(loader)
    for _ in range(7):
        last = trainer.train_epoch(loader)
    loss, accuracy = trainer.evaluate(DataLoader(TensorDataset(images, labels), batch_size=32))
    # above the 50% of chance by a margin every seed of 0-7 clears (0.73-0.98)
    assert last < first and accuracy > 0.7 and len(trainer.history["train_loss"]) == 8
    w = Tensor(np.ones(4, np.float32), requires_grad=True)
    (w * 3.0).sum().backward()
    assert clip_grad_norm([w], 1.0) == pytest.approx(6.0)
    assert float((w.grad * w.grad).sum().item()) == pytest.approx(1.0, rel=1e-4)


def test_augmentations_compose():
    from tinytorch import Compose, RandomCrop, RandomHorizontalFlip, Tensor
    image = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    flipped = RandomHorizontalFlip(p=1.0)(image)
    np.testing.assert_array_equal(flipped.data, image[..., ::-1])
    out = Compose([RandomCrop(6, padding=2, seed=0), RandomHorizontalFlip(p=0.0)])(Tensor(image))
    assert out.shape == (2, 6, 6)

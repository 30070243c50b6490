"""The small PyTorch spellings scripts use in passing: devices, .to/.cpu, module-level forms of the
tensor methods (on numpy input too), zero_grad(set_to_none), lr_scheduler, nn.init, random_split,
inference_mode. Each is compared with what PyTorch does."""
import numpy as np
import pytest
import torch

import tinytorch


def test_devices_are_the_cpu_and_cuda_is_refused():
    dev = tinytorch.device("cuda" if tinytorch.cuda.is_available() else "cpu")
    assert dev == "cpu" and dev.type == "cpu" and str(dev) == "cpu"
    x = tinytorch.randn(2, 3)
    assert x.to(dev) is x and x.cpu() is x and x.device == "cpu" and not x.is_cuda
    assert x.to("cpu", tinytorch.int64).dtype == np.int64 and x.to(dtype=tinytorch.float32) is x
    model = tinytorch.nn.Linear(3, 2)
    assert model.to(dev) is model
    with pytest.raises(RuntimeError, match="CPU only"):
        tinytorch.device("cuda:0")
    with pytest.raises(RuntimeError, match="CPU only"):
        x.cuda()


def test_module_level_functions_match_torch_on_arrays_and_tensors():
    a = np.random.RandomState(0).standard_normal((4, 5)).astype(np.float32)
    values, indices = tinytorch.max(a, 1)  # the classic `_, predicted = torch.max(outputs.data, 1)`
    want = torch.max(torch.from_numpy(a), 1)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(tinytorch.argmax(tinytorch.tensor(a), dim=0).numpy(), torch.argmax(
        torch.from_numpy(a), dim=0).numpy())
    assert tinytorch.sum(a).item() == pytest.approx(torch.sum(torch.from_numpy(a)).item(), rel=1e-6)
    np.testing.assert_allclose(tinytorch.softmax(a, dim=1).numpy(), torch.softmax(torch.from_numpy(a), dim=1).numpy(),
                               rtol=1e-6)


def test_zero_grad_and_schedulers_follow_torch():
    ours = tinytorch.nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2)
    o_opt, t_opt = tinytorch.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    ours(tinytorch.ones(1, 3)).sum().backward()
    o_opt.zero_grad(set_to_none=False)
    assert ours.weight.grad is not None and float(abs(ours.weight.grad).sum().item()) == 0.0
    o_opt.zero_grad()
    assert ours.weight.grad is None
    for name, kwargs in [("StepLR", dict(step_size=2, gamma=0.5)), ("MultiStepLR", dict(milestones=[1, 3])),
                         ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01))]:
        o_opt.lr = 0.1
        for g in t_opt.param_groups:
            g["lr"] = 0.1
        o_sched = getattr(tinytorch.optim.lr_scheduler, name)(o_opt, **kwargs)
        t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
        for _ in range(5):
            o_opt.step(), t_opt.step()
            o_sched.step(), t_sched.step()
            assert o_sched.get_last_lr()[0] == pytest.approx(t_sched.get_last_lr()[0], rel=1e-6), name


def test_init_functions_give_torch_s_statistics():
    tinytorch.manual_seed(0)
    w = tinytorch.nn.Conv2d(64, 128, 3).weight
    tinytorch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(np.sqrt(2.0 / (64 * 9)), rel=0.02)
    tinytorch.nn.init.xavier_uniform_(w)
    bound = np.sqrt(6.0 / (64 * 9 + 128 * 9))
    assert np.abs(w.numpy()).max() <= bound and w.requires_grad
    tinytorch.nn.init.zeros_(w)
    assert float(abs(w).sum().item()) == 0.0


def test_random_split_and_inference_mode():
    data = tinytorch.data.TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
    train, test = tinytorch.utils.data.random_split(data, [0.8, 0.2], seed=1)
    assert len(train) == 8 and len(test) == 2
    seen = sorted(int(train[i][1].item()) for i in range(8)) + sorted(int(test[i][1].item()) for i in range(2))
    assert sorted(seen) == list(range(10))
    w = tinytorch.ones(2, requires_grad=True)
    with tinytorch.inference_mode():
        assert not (w * 2).requires_grad

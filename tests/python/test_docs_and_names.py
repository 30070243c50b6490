"""Every public name has a docstring, help() of a layer shows its arguments, shapes and an
example, and the names of both audiences point at the same objects."""
import inspect

import pytest

import tinytorch
import tinytorch.data
import tinytorch.nn
import tinytorch.nn.functional
import tinytorch.optim

MODULES = [tinytorch, tinytorch.nn, tinytorch.nn.functional, tinytorch.optim, tinytorch.data]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module):
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (callable(obj) or inspect.isclass(obj)):
            continue
        doc = inspect.getdoc(obj) or ""
        # pybind11 writes "name(arg: type) -> type" as the first line: a bare signature is no docstring.
        text = "\n".join(line for line in doc.splitlines() if not line.startswith(name + "("))
        if len(text.strip()) < 10:
            missing.append(name)
    assert not missing, f"{module.__name__}: no docstring for {missing}"


def test_help_of_a_layer_shows_arguments_shapes_and_an_example():
    text = inspect.getdoc(tinytorch.nn.Conv2d)
    for needle in ("in_channels", "kernel_size", "(N, C, H, W)", "Conv2D(3, 16, 3, padding=1)"):
        assert needle in text
    assert "in_features" in inspect.getdoc(tinytorch.nn.Linear)


def test_both_audiences_names_are_the_same_objects():
    from tinytorch.core.spatial import Conv2D, MaxPool2D
    assert tinytorch.nn.Conv2d is Conv2D is tinytorch.Conv2d
    assert tinytorch.nn.MaxPool2d is MaxPool2D
    assert tinytorch.nn.functional.cross_entropy is tinytorch.functional.cross_entropy
    assert tinytorch.utils.data.DataLoader is tinytorch.data.DataLoader
    assert tinytorch.float32 == tinytorch.float and tinytorch.long == tinytorch.int64
    pool = MaxPool2D(pool_size=2)
    assert pool.kernel_size == (2, 2) and MaxPool2D(kernel_size=3).kernel_size == (3, 3)
    assert tinytorch.nn.Linear(in_features=3, out_features=2).weight.shape == (2, 3)
    assert tinytorch.nn.Linear(input_size=3, output_size=2).weight.shape == (2, 3)

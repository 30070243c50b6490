"""Module as torch.nn.Module has it, for Python subclasses and the C++ layers alike.

A module's state lives in two places: a C++ layer's own parameters, buffers and children (Conv2d's
weight, Sequential's layers), and a Python object's attributes. Everything here walks both, in
that order, so a Python subclass holding C++ layers (or a C++ Sequential holding Python modules)
is one tree: parameters(), state_dict(), train()/eval(), repr and apply() reach every node.

What an attribute of a Python subclass counts as (decided to serve both PyTorch and upstream
TinyTorch code):
- a Module: a child; a list or tuple of Modules: children named "name.0", "name.1", ...;
- a Parameter: a parameter; so is a plain Tensor that requires grad (upstream TinyTorch marks its
  weights that way), but not one that does not (a constant, as in PyTorch);
- a tensor given to register_buffer(name, t): a buffer (saved in state_dict unless
  persistent=False).
"""
import collections
from collections import OrderedDict

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Parameter, Tensor

Module = _C.Module

_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _attributes(module):
    return getattr(module, "__dict__", {})


def _buffer_names(module):
    return _attributes(module).get("_buffer_names", {})


def _own_parameters(module):
    """(name, Parameter) pairs of this module alone: the C++ layer's, then the Python attributes'."""
    out = list(module._own_parameters())
    buffers = _buffer_names(module)
    for name, value in _attributes(module).items():
        if isinstance(value, Tensor) and name not in buffers and (isinstance(value, Parameter) or (
                value.requires_grad and value.is_leaf)):
            out.append((name, value))
    return out


def _own_buffers(module, persistent_only=False):
    out = list(module._own_buffers())
    attributes = _attributes(module)
    for name, persistent in _buffer_names(module).items():
        value = attributes.get(name)
        if value is not None and (persistent or not persistent_only):
            out.append((name, value))
    return out


def _named_children(self):
    """(name, Module) pairs of the direct children: the C++ ones, then the Python attributes."""
    out = list(self._children())
    for name, value in _attributes(self).items():
        if isinstance(value, Module):
            out.append((name, value))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
            out.extend((f"{name}.{i}", v) for i, v in enumerate(value))
    return out


def _named_modules(self, memo=None, prefix="", remove_duplicate=True):
    """Every module of the tree, depth first, self first (prefix ''), each once."""
    memo = set() if memo is None else memo
    if remove_duplicate:
        if id(self) in memo:
            return
        memo.add(id(self))
    yield prefix, self
    for name, child in _named_children(self):
        yield from _named_modules(child, memo, prefix + ("." if prefix else "") + name, remove_duplicate)


def _named_tensors(self, own, prefix, recurse, remove_duplicate):
    seen = set()
    modules = _named_modules(self, prefix=prefix) if recurse else [(prefix, self)]
    for module_prefix, module in modules:
        for name, t in own(module):
            key = t._identity()
            if remove_duplicate and key in seen:
                continue
            seen.add(key)
            yield module_prefix + ("." if module_prefix else "") + name, t


class _TensorList(list):
    """A list that is also its own iterator, so both PyTorch's ``next(model.parameters())`` and
    upstream TinyTorch's ``len(model.parameters())`` work."""

    def __next__(self):
        position = self.__dict__.get("_next", 0)
        if position >= len(self):
            raise StopIteration
        self._next = position + 1
        return self[position]


def _named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
    """(name, Parameter) pairs with PyTorch's dotted names ("features.0.weight"); shared
    parameters once."""
    return _TensorList(_named_tensors(self, _own_parameters, prefix, recurse, remove_duplicate))


def _parameters(self, recurse=True):
    return _TensorList(t for _, t in _named_parameters(self, recurse=recurse))


def _named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
    return _TensorList(_named_tensors(self, _own_buffers, prefix, recurse, remove_duplicate))


def _buffers(self, recurse=True):
    return _TensorList(t for _, t in _named_buffers(self, recurse=recurse))


def _children(self):
    return iter([child for _, child in _named_children(self)])


def _modules(self):
    return iter([m for _, m in _named_modules(self)])


def _register_buffer(self, name, tensor, persistent=True):
    """Adds a buffer: state saved in state_dict (unless persistent=False) but not trained."""
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
    if tensor is not None and not isinstance(tensor, Tensor):
        raise TypeError(f"register_buffer: expected a Tensor or None, got {type(tensor).__name__}")
    names = self.__dict__.setdefault("_buffer_names", {})
    names[name] = persistent
    self.__dict__[name] = tensor


def _register_parameter(self, name, param):
    if param is not None and not isinstance(param, Tensor):
        raise TypeError(f"register_parameter: expected a Parameter or None, got {type(param).__name__}")
    setattr(self, name, param if param is None or isinstance(param, Parameter) else Parameter(param))


def _add_module(self, name, module):
    if module is not None and not isinstance(module, Module):
        raise TypeError(f"add_module: expected a Module, got {type(module).__name__}")
    setattr(self, name, module)


def _train(self, mode=True):
    """Sets training mode on this module and every descendant (Python and C++); returns self."""
    if not isinstance(mode, bool):
        raise TypeError(f"train(mode): expected a bool, got {type(mode).__name__}")
    for _, module in _named_modules(self):
        module._set_training(mode)
    return self


def _eval(self):
    return _train(self, False)


def _zero_grad(self, set_to_none=True):
    for p in _parameters(self):
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            p.grad = p.grad * 0


def _requires_grad_(self, requires_grad=True):
    for p in _parameters(self):
        p.requires_grad_(requires_grad)
    return self


def _apply(self, fn):
    """Calls fn on every child (recursively), then on self; returns self (torch.nn.Module.apply)."""
    for child in _children(self):
        _apply(child, fn)
    fn(self)
    return self


def _state_dict(self, destination=None, prefix="", keep_vars=False):
    """An OrderedDict of every parameter and persistent buffer by PyTorch's dotted name, module by
    module (its parameters, its buffers, then its children). The tensors share memory with the
    model's (detached unless keep_vars)."""
    out = OrderedDict() if destination is None else destination
    for module_prefix, module in _named_modules(self, prefix=prefix.rstrip(".")):
        lead = module_prefix + ("." if module_prefix else "")
        for name, t in _own_parameters(module) + _own_buffers(module, persistent_only=True):
            out[lead + name] = t if keep_vars else t.detach()
    return out


def _as_tensor(value, key):
    """A state_dict value (our Tensor, a numpy array, a PyTorch tensor in any float dtype) as a
    Tensor; float16 and bfloat16 are converted to float32 here."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a PyTorch tensor
        value = value.detach()
        if value.is_floating_point() and str(value.dtype) != "torch.float32":
            value = value.float()
        return Tensor(value.contiguous().numpy())
    try:
        return Tensor(np.asarray(value))
    except TypeError as e:
        raise TypeError(f"load_state_dict: the value of {key!r} is not a tensor: {e}") from None


def _load_state_dict(self, state_dict, strict=True):
    """Copies values into the model's parameters and buffers by name, as torch's does: with
    strict, every key must match (a RuntimeError lists the missing and unexpected ones); a shape
    mismatch is always an error; on any error nothing is changed. Returns (missing_keys,
    unexpected_keys)."""
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"load_state_dict: expected a dict-like state_dict, got {type(state_dict).__name__}")
    own = _state_dict(self, keep_vars=True)
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    errors = []
    if strict:
        if unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
    updates = []
    for key, target in own.items():
        if key not in state_dict:
            continue
        source = _as_tensor(state_dict[key], key)
        if tuple(source.shape) != tuple(target.shape):
            errors.append(f"size mismatch for {key}: copying a param with shape {tuple(source.shape)} from "
                          f"checkpoint, the shape in current model is {tuple(target.shape)}.")
            continue
        updates.append((target, source))
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
    from tinytorch.autograd import no_grad
    with no_grad():
        for target, source in updates:
            target.copy_(source)
    return _IncompatibleKeys(missing, unexpected)


def _repr(self):
    """PyTorch's tree: Name(extra) for a leaf, with one indented line per child otherwise."""
    extra = self.extra_repr()
    children = _named_children(self)
    if not children:
        return f"{type(self).__name__}({extra})"
    lines = [f"{type(self).__name__}(" + extra]
    for name, child in children:
        lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
    return "\n".join(lines) + "\n)"


# --- pickle and copy.deepcopy ----------------------------------------------------------------------
# A C++ layer is rebuilt from its constructor arguments and its tensors; a Python subclass from its
# class and attribute dict (its C++ base initialised first); a Sequential from its children.

def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else v


_LAYER_ARGS = {
    "Conv2D": lambda m: dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size,
                             stride=m.stride, padding=_pair(m.padding), dilation=m.dilation, groups=m.groups,
                             bias=m.use_bias),
    "Linear": lambda m: dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None),
    "BatchNorm2d": lambda m: dict(num_features=m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine),
    "Dropout": lambda m: dict(p=m.p),
    "MaxPool2D": lambda m: dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation,
                                ceil_mode=m.ceil_mode),
    "AvgPool2D": lambda m: dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode,
                                count_include_pad=m.count_include_pad),
    "Flatten": lambda m: dict(start_dim=m.start_dim, end_dim=m.end_dim),
    "ReLU": lambda m: {},
}


def _cpp_class(module):
    """The C++ layer class a module is an instance of, or None for a Python subclass of Module."""
    for cls in type(module).__mro__:
        if cls.__module__ == "tinytorch._tinytorch" and cls.__name__ in _LAYER_ARGS:
            return cls
        if cls.__module__ == "tinytorch._tinytorch" and cls.__name__ == "Sequential":
            return cls
    return None


def _rebuild_layer(cls, kwargs, tensors, training, attributes):
    layer = cls(**kwargs)
    own = dict(layer._own_parameters())
    own.update(dict(layer._own_buffers()))
    from tinytorch.autograd import no_grad
    with no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)
    layer._set_training(training)
    layer.__dict__.update(attributes)
    return layer


def _rebuild_sequential(cls, children, training, attributes):
    seq = cls(*children)
    seq._set_training(training)
    seq.__dict__.update(attributes)
    return seq


def _rebuild_python_module(cls, attributes, training):
    module = cls.__new__(cls)
    Module.__init__(module)
    module.__dict__.update(attributes)
    module._set_training(training)
    return module


def _reduce_ex(self, protocol):
    attributes = dict(getattr(self, "__dict__", {}))
    cpp = _cpp_class(self)
    if cpp is None:
        return (_rebuild_python_module, (type(self), attributes, self.training))
    if cpp.__name__ == "Sequential":
        return (_rebuild_sequential, (type(self), [child for _, child in self._children()], self.training,
                                      attributes))
    tensors = {name: t for name, t in list(self._own_parameters()) + list(self._own_buffers())}
    return (_rebuild_layer, (type(self), _LAYER_ARGS[cpp.__name__](self), tensors, self.training, attributes))


def _install():
    Module.named_parameters = _named_parameters
    Module.parameters = _parameters
    Module.named_buffers = _named_buffers
    Module.buffers = _buffers
    Module.named_children = _named_children
    Module.children = _children
    Module.named_modules = _named_modules
    Module.modules = _modules
    Module.register_buffer = _register_buffer
    Module.register_parameter = _register_parameter
    Module.add_module = _add_module
    Module.register_module = _add_module
    Module.train = _train
    Module.eval = _eval
    Module.zero_grad = _zero_grad
    Module.requires_grad_ = _requires_grad_
    Module.apply = _apply
    Module.state_dict = _state_dict
    Module.load_state_dict = _load_state_dict
    Module.__repr__ = _repr
    Module.__reduce_ex__ = _reduce_ex
    Module.to = lambda self, *args, **kwargs: self  # one device (the CPU) and one compute dtype
    Module.cpu = lambda self: self
    Module.float = lambda self: self


_install()

__all__ = ["Module"]

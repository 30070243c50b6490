"""Saving and loading: torch.save / torch.load for state_dicts and other objects, and checkpoints
of a model with its optimizer.

    tinytorch.save(model.state_dict(), "model.safetensors")   # a dict of tensors: safetensors
    model.load_state_dict(tinytorch.load("model.safetensors"))
    tinytorch.save({"epoch": 3, "model": model}, "run.pt")      # anything else: pickle

    save_checkpoint("ckpt.safetensors", model, optimizer, {"epoch": "3"})
    meta = load_checkpoint("ckpt.safetensors", model, optimizer)   # strict, as load_state_dict

A dict of tensors is written as safetensors (readable by the safetensors package, and by
PyTorch's load_state_dict after safetensors.torch.load_file); other objects are pickled. Every
write is atomic (a temporary file renamed over the destination) and checked; failures raise
OSError. A checkpoint holds the model's state_dict (so a Python subclass saves every layer),
the optimizer's state and string metadata; loading is strict by default: a tensor missing from
the file, or one in the file the model does not have, is a DataError listing their names, and
nothing is changed.
"""
import io
import os
import pickle
from collections import OrderedDict

import numpy as np

from tinytorch import _tinytorch as _C
from tinytorch._tensor import Tensor


def _state(model):
    return list(model.state_dict(keep_vars=True).items())


def save_checkpoint(path, model, optimizer=None, metadata=None):
    """Writes the model's parameters and buffers, the optimizer's state and string metadata."""
    _C._save_checkpoint(os.fspath(path), _state(model), optimizer, dict(metadata or {}))


def load_checkpoint(path, model, optimizer=None, strict=True):
    """Loads a checkpoint into `model` (and `optimizer`) in place; returns its metadata dict."""
    return _C._load_checkpoint(os.fspath(path), _state(model), optimizer, strict)


def _is_tensor_dict(obj):
    return isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj) and all(
        isinstance(v, (Tensor, np.ndarray)) for v in obj.values())


def save(obj, f):
    """Saves obj to the path f: a dict of tensors (a state_dict) as safetensors, anything else
    pickled. Atomic: the previous file survives a failure."""
    path = os.fspath(f)
    if _is_tensor_dict(obj):
        tensors = [(k, v if isinstance(v, Tensor) else Tensor(v)) for k, v in obj.items()]
        _C._save_safetensors(path, [(k, t.detach().contiguous()) for k, t in tensors], {"format": "pt"})
        return
    buffer = io.BytesIO()
    pickle.dump(obj, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    _C._write_file_atomic(path, buffer.getvalue())


def load(f, weights_only=False, map_location=None):
    """Loads what save wrote: an OrderedDict of tensors from a safetensors file, or the pickled
    object. Pickles can run code when loaded: load only files you trust (weights_only=True
    refuses pickles)."""
    path = os.fspath(f)
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        tensors, _ = _C._load_safetensors(path)
        return OrderedDict(tensors)
    if weights_only:
        raise _C.DataError(f"load: {path!r} is not a safetensors file, and weights_only=True refuses pickles")
    with open(path, "rb") as handle:
        return pickle.load(handle)


__all__ = ["load", "load_checkpoint", "save", "save_checkpoint"]

"""Checkpoints: a model's parameters and buffers (and an optimizer's state) in one safetensors file.

    save_checkpoint("model.safetensors", model, optimizer, {"epoch": "3"})
    meta = load_checkpoint("model.safetensors", model, optimizer)   # strict, as load_state_dict

The model's state is gathered here, in Python, with named_parameters() and named_buffers(), so a
Python subclass of Module saves and loads its layers like any C++ layer. Loading is strict by
default: a tensor missing from the file, or one in the file the model does not have, is a
DataError listing their names, and nothing is changed; strict=False loads what both have. Writes
are atomic (a temporary file renamed over the destination); failures raise OSError.
"""
import os

from tinytorch._tinytorch import _load_checkpoint, _save_checkpoint


def _state(model):
    return list(model.named_parameters()) + list(model.named_buffers())


def save_checkpoint(path, model, optimizer=None, metadata=None):
    """Writes the model's parameters and buffers, the optimizer's state and string metadata."""
    _save_checkpoint(os.fspath(path), _state(model), optimizer, dict(metadata or {}))


def load_checkpoint(path, model, optimizer=None, strict=True):
    """Loads a checkpoint into `model` (and `optimizer`) in place; returns its metadata dict."""
    return _load_checkpoint(os.fspath(path), _state(model), optimizer, strict)


__all__ = ["load_checkpoint", "save_checkpoint"]

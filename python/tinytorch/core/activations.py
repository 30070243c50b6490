"""Activations as modules: ReLU, Sigmoid, Tanh, GELU, Softmax (dim=-1), LogSoftmax."""
from tinytorch.nn import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh

__all__ = ["GELU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]

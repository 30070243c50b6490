"""Optimizers: SGD, Adam, AdamW (tinytorch.optim)."""
from tinytorch.optim import SGD, Adam, AdamW, Optimizer

__all__ = ["Adam", "AdamW", "Optimizer", "SGD"]

"""Optimizers with torch.optim's update rules: SGD (momentum, Nesterov, weight decay), Adam,
AdamW; and per-epoch learning-rate schedules."""
from tinytorch._tinytorch import SGD, Adam, AdamW, Optimizer, cosine_lr, step_lr

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "cosine_lr", "step_lr"]

"""Training helpers in upstream TinyTorch's shape: Trainer (a loop with a tqdm progress bar),
CosineSchedule and clip_grad_norm.

    trainer = Trainer(model, Adam(model.parameters()), CrossEntropyLoss(), scheduler=CosineSchedule(1e-3, 1e-5, 3))
    for epoch in range(3):
        loss = trainer.train_epoch(train_loader)
        test_loss, accuracy = trainer.evaluate(test_loader)
"""
import math

import numpy as np
from tqdm import tqdm

from tinytorch.autograd import no_grad


class CosineSchedule:
    """The learning rate of an epoch on a half cosine from max_lr (epoch 0) to min_lr (the last)."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if total_epochs < 1:
            raise ValueError(f"CosineSchedule: total_epochs must be positive, got {total_epochs}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        progress = min(max(epoch, 0), self.total_epochs) / self.total_epochs
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))


def clip_grad_norm(parameters, max_norm):
    """Scales the gradients so their global L2 norm is at most max_norm; returns the norm before
    (torch.nn.utils.clip_grad_norm_)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float((g * g).sum().item()) for g in grads))
    if total > max_norm > 0:
        factor = max_norm / (total + 1e-6)
        with no_grad():
            for g in grads:
                g *= factor
    return total


clip_grad_norm_ = clip_grad_norm


class Trainer:
    """One epoch of training or evaluation per call, with a progress bar (batches/s, loss, ETA).

    Trainer(model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None). history holds the
    per-epoch train_loss, eval_loss, eval_accuracy and lr.
    """

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, progress=True):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm, self.progress = scheduler, grad_clip_norm, progress
        self.epoch = 0
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [], "lr": []}

    def train_epoch(self, dataloader):
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        self.model.train()
        total, count = 0.0, 0
        bar = tqdm(dataloader, desc=f"epoch {self.epoch + 1}", unit="batch", disable=not self.progress)
        for inputs, targets in bar:
            loss = self.loss_fn(self.model(inputs), targets)
            self.optimizer.zero_grad()
            loss.backward()
            if self.grad_clip_norm:
                clip_grad_norm(self.model.parameters(), self.grad_clip_norm)
            self.optimizer.step()
            total += loss.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        self.history["train_loss"].append(total / max(count, 1))
        self.history["lr"].append(self.optimizer.lr)
        self.epoch += 1
        return total / max(count, 1)

    def evaluate(self, dataloader):
        """(mean loss, accuracy) over the loader, in eval mode and without recording a graph."""
        self.model.eval()
        total, correct, seen, batches = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                outputs = self.model(inputs)
                total += self.loss_fn(outputs, targets).item()
                batches += 1
                labels = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)
                if outputs.ndim == 2 and labels.ndim == 1:
                    correct += int((outputs.argmax(dim=1).numpy() == labels).sum())
                    seen += labels.shape[0]
        loss, accuracy = total / max(batches, 1), (correct / seen if seen else float("nan"))
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        return loss, accuracy


__all__ = ["CosineSchedule", "Trainer", "clip_grad_norm", "clip_grad_norm_"]

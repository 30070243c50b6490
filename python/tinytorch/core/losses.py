"""Losses as modules: MSELoss, CrossEntropyLoss (int64 class indices as a Tensor, numpy array or
list, or class probabilities), BinaryCrossEntropyLoss (= BCELoss, on probabilities),
BCEWithLogitsLoss, NLLLoss."""
from tinytorch.nn import (BCELoss, BCEWithLogitsLoss, BinaryCrossEntropyLoss, CrossEntropyLoss, L1Loss, MSELoss,
                          NLLLoss)

__all__ = ["BCELoss", "BCEWithLogitsLoss", "BinaryCrossEntropyLoss", "CrossEntropyLoss", "L1Loss", "MSELoss",
           "NLLLoss"]

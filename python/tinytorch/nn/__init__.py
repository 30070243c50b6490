"""torch.nn's shape over tinytorch: Module, Parameter, the layers, activations, losses and
containers. The seed's names (Conv2D, MaxPool2D, AvgPool2D) and PyTorch's (Conv2d, MaxPool2d,
AvgPool2d) are the same classes.

    import tinytorch.nn as nn
    import tinytorch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 14 * 14, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x)), 2)
            return self.fc(x.flatten(1))
"""
from tinytorch import _module  # noqa: F401  (completes Module)
from tinytorch._tensor import Parameter
from tinytorch._tinytorch import (AvgPool2D, BatchNorm2d, Conv2D, Dropout, Flatten, Linear, MaxPool2D, Module, ReLU,
                                  Sequential)
from tinytorch.nn import functional, init
from tinytorch.nn.modules import (AdaptiveAvgPool2d, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, GELU, Hardsigmoid,
                                  Hardswish, Hardtanh, Identity, L1Loss, LeakyReLU, LogSoftmax, ModuleDict, ModuleList,
                                  MSELoss, NLLLoss, ReLU6, SiLU, Sigmoid, Softmax, Tanh)

Conv2d = Conv2D
MaxPool2d = MaxPool2D
AvgPool2d = AvgPool2D
BinaryCrossEntropyLoss = BCELoss  # upstream TinyTorch's name

__all__ = ["AdaptiveAvgPool2d", "AvgPool2D", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm2d",
           "BinaryCrossEntropyLoss", "Conv2D", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "GELU", "Hardsigmoid",
           "Hardswish", "Hardtanh", "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2D",
           "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "ReLU6", "Sequential",
           "SiLU", "Sigmoid", "Softmax", "Tanh", "functional", "init"]

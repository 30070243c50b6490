"""Layers: Module (also called Layer, upstream TinyTorch's name), Linear, Dropout, Sequential, and
the rest of tinytorch.nn's layers. Linear takes PyTorch's (in_features, out_features) or the
seed's (input_size=, output_size=); its weight is (out_features, in_features), as in PyTorch."""
from tinytorch.nn import (BatchNorm2d, Dropout, Flatten, Identity, Linear, Module, ModuleDict, ModuleList, ReLU,
                          Sequential)
from tinytorch._tensor import Parameter

Layer = Module
Dense = Linear

__all__ = ["BatchNorm2d", "Dense", "Dropout", "Flatten", "Identity", "Layer", "Linear", "Module", "ModuleDict",
           "ModuleList", "Parameter", "ReLU", "Sequential"]

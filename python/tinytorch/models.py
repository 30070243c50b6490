"""Ready-made models: fashion_cnn(), the default model of `tinytorch train`."""
from tinytorch._tinytorch import fashion_cnn

__all__ = ["fashion_cnn"]

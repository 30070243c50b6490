"""Stateless ops, like torch.nn.functional (the same module as tinytorch.nn.functional)."""
from tinytorch.nn.functional import *  # noqa: F401,F403
from tinytorch.nn.functional import __all__  # noqa: F401

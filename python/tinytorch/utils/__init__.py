"""torch.utils's shape: tinytorch.utils.data is tinytorch.data."""
from tinytorch.utils import data  # noqa: F401

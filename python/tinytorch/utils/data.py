"""torch.utils.data's names: Dataset, TensorDataset, DataLoader (the same objects as tinytorch.data)."""
from tinytorch.data import DataLoader, Dataset, TensorDataset, default_collate

__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]

"""torch.utils.data's names: Dataset, TensorDataset, DataLoader (the same objects as tinytorch.data)."""
from tinytorch.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]

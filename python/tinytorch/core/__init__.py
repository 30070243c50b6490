"""TinyTorch's core modules: tensor, layers, spatial."""

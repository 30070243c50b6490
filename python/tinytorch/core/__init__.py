"""TinyTorch's module paths: tensor, activations, layers, losses, autograd, optimizers, training,
spatial (each a view of the same objects as tinytorch.nn / tinytorch.optim)."""

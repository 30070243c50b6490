"""
tinytorch's C++ core
"""
from __future__ import annotations
import builtins
import typing

import numpy as _np
class Adam(Optimizer):
    """
    Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    """
    def __init__(self, params: list[Tensor], lr: builtins.float = 0.001, betas: tuple[builtins.float, builtins.float] = (0.9, 0.999), eps: builtins.float = 1e-08, weight_decay: builtins.float = 0.0) -> None:
        ...
class AdamW(Adam):
    """
    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    """
    def __init__(self, params: list[Tensor], lr: builtins.float = 0.001, betas: tuple[builtins.float, builtins.float] = (0.9, 0.999), eps: builtins.float = 1e-08, weight_decay: builtins.float = 0.01) -> None:
        ...
class AvgPool2D(Module):
    """
    
    AvgPool2D(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True), as
    torch.nn.AvgPool2d (also named AvgPool2d). Input (N, C, H, W) or (C, H, W).
    
        y = AvgPool2D(2)(Tensor(np.random.randn(8, 16, 32, 32)))   # (8, 16, 16, 16)
    """
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, kernel_size: typing.Any, stride: typing.Any = None, padding: typing.Any = 0, ceil_mode: builtins.bool = False, count_include_pad: builtins.bool = True) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def ceil_mode(self) -> builtins.bool:
        ...
    @property
    def count_include_pad(self) -> builtins.bool:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def padding(self) -> tuple:
        ...
    @property
    def stride(self) -> tuple:
        ...
class BatchNorm2d(Module):
    """
    
    BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True), as torch.nn.BatchNorm2d.
    
    In training, normalises each channel of (N, C, H, W) (or (N, C)) with the batch's mean and
    variance and moves running_mean / running_var by momentum (num_batches_tracked counts the
    batches); in eval, uses the running statistics. weight (ones) and bias (zeros) are (C,).
    
        bn = BatchNorm2d(16)
        y = bn(Tensor(np.random.randn(8, 16, 32, 32)))    # (8, 16, 32, 32)
    """
    bias: typing.Any
    weight: typing.Any
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, num_features: builtins.int, eps: builtins.float = 1e-05, momentum: builtins.float = 0.1, affine: builtins.bool = True) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def affine(self) -> builtins.bool:
        ...
    @property
    def eps(self) -> builtins.float:
        ...
    @property
    def momentum(self) -> builtins.float:
        ...
    @property
    def num_batches_tracked(self) -> Tensor:
        ...
    @property
    def num_features(self) -> builtins.int:
        ...
    @property
    def running_mean(self) -> Tensor:
        ...
    @property
    def running_var(self) -> Tensor:
        ...
class Conv2D(Module):
    """
    
    Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True): 2D convolution (cross-correlation) as torch.nn.Conv2d (also named Conv2d).
    
    kernel_size, stride, padding and dilation are an int or an (h, w) pair; padding may also be
    "valid" or "same". weight: (out_channels, in_channels / groups, kh, kw), bias: (out_channels,).
    Input (N, C, H, W) or the seed's unbatched (C, H, W); output (N, out_channels, OH, OW) with
    OH = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1. The fastest algorithm for the
    shape is chosen (tinytorch.backends).
    
        conv = Conv2D(3, 16, 3, padding=1)
        y = conv(Tensor(np.random.randn(8, 3, 32, 32)))   # (8, 16, 32, 32)
    """
    bias: typing.Any
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, in_channels: builtins.int, out_channels: builtins.int, kernel_size: typing.Any, stride: typing.Any = 1, padding: typing.Any = 0, dilation: typing.Any = 1, groups: builtins.int = 1, bias: builtins.bool = True) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def dilation(self) -> tuple:
        ...
    @property
    def groups(self) -> builtins.int:
        ...
    @property
    def in_channels(self) -> builtins.int:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def out_channels(self) -> builtins.int:
        ...
    @property
    def padding(self) -> typing.Any:
        ...
    @property
    def stride(self) -> tuple:
        ...
    @property
    def use_bias(self) -> builtins.bool:
        ...
    @property
    def weight(self) -> Tensor:
        ...
    @weight.setter
    def weight(self, arg1: typing.Any) -> None:
        ...
class DataError(ValueError):
    pass
class DataParallelReducer:
    """
    
    Averages the parameters' gradients over the processes in buckets started during backward
    (tinytorch::distributed::DataParallel): prepare() before each forward; finish() after backward, or
    by itself once every parameter has its gradient with finish_when_complete.
    """
    def __init__(self, params: list[Tensor], bucket_bytes: builtins.int = 524288, deterministic: builtins.bool = False, finish_when_complete: builtins.bool = False) -> None:
        ...
    def broadcast_parameters(self, extra: list[Tensor] = []) -> None:
        ...
    def finish(self) -> None:
        ...
    def prepare(self) -> None:
        ...
    @property
    def stats(self) -> dict:
        ...
class Dataset:
    """
    Images (N, 1, H, W) float32 and int64 labels (N,), as load_mnist_folder reads them.
    """
    def __len__(self) -> builtins.int:
        ...
    @property
    def images(self) -> Tensor:
        ...
    @property
    def labels(self) -> Tensor:
        ...
class DistributedError(RuntimeError):
    pass
class Dropout(Module):
    """
    
    Dropout(p=0.5): in training, zeroes each element with probability p and scales the rest by
    1/(1-p); in eval, the identity. dropout(x, training=False) overrides the mode for one call
    (upstream TinyTorch's form). Draws from the generator tinytorch.manual_seed seeds.
    
        y = Dropout(0.25)(x)
    """
    def __call__(self, input, training = None):
        """
        Dropout in the module's mode, or in the one given: upstream TinyTorch calls
            dropout(x, training=False).
        """
    def __init__(self, p: builtins.float = 0.5) -> None:
        ...
    def forward(self, input, training = None):
        """
        Dropout in the module's mode, or in the one given: upstream TinyTorch calls
            dropout(x, training=False).
        """
    @property
    def p(self) -> builtins.float:
        ...
class Flatten(Module):
    """
    
    Flatten(start_dim=1, end_dim=-1): merges dims start_dim..end_dim into one, as torch.nn.Flatten.
    
        y = Flatten()(Tensor(np.zeros((8, 16, 5, 5))))   # (8, 400)
    """
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, start_dim: builtins.int = 1, end_dim: builtins.int = -1) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def end_dim(self) -> builtins.int:
        ...
    @property
    def start_dim(self) -> builtins.int:
        ...
class Linear(Module):
    """
    
    Linear(in_features, out_features, bias=True): y = x W^T + b, as torch.nn.Linear.
    
    The seed's spelling Linear(input_size=, output_size=) works too. weight: (out_features,
    in_features), bias: (out_features,), both initialised uniformly in +-1/sqrt(in_features).
    Input (..., in_features) -> output (..., out_features).
    
        fc = Linear(784, 10)
        y = fc(Tensor(np.random.randn(32, 784)))   # (32, 10)
    """
    bias: typing.Any
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, in_features: typing.Any = None, out_features: typing.Any = None, bias: builtins.bool = True, *, input_size: typing.Any = None, output_size: typing.Any = None) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def in_features(self) -> builtins.int:
        ...
    @property
    def input_size(self) -> builtins.int:
        ...
    @property
    def out_features(self) -> builtins.int:
        ...
    @property
    def output_size(self) -> builtins.int:
        ...
    @property
    def weight(self) -> Tensor:
        ...
    @weight.setter
    def weight(self, arg1: typing.Any) -> None:
        ...
class MaxPool2D(Module):
    """
    
    MaxPool2D(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False), as
    torch.nn.MaxPool2d (also named MaxPool2d); the seed's MaxPool2D(pool_size=2) works too.
    
    stride defaults to kernel_size. Input (N, C, H, W) or (C, H, W); output
    (N, C, OH, OW) with PyTorch's output-size rule (ceil_mode rounds up).
    
        pool = MaxPool2D(2)
        y = pool(Tensor(np.random.randn(8, 16, 32, 32)))  # (8, 16, 16, 16)
    """
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, kernel_size: typing.Any = None, stride: typing.Any = None, padding: typing.Any = 0, dilation: typing.Any = 1, ceil_mode: builtins.bool = False, *, pool_size: typing.Any = None) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    @property
    def ceil_mode(self) -> builtins.bool:
        ...
    @property
    def dilation(self) -> tuple:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def padding(self) -> tuple:
        ...
    @property
    def pool_size(self) -> tuple:
        ...
    @property
    def stride(self) -> tuple:
        ...
class Module:
    """
    
    The base of every layer and model, as torch.nn.Module.
    
    Subclass it in Python: call super().__init__(), assign layers, Parameters and buffers
    (register_buffer) as attributes, and define forward. parameters(), state_dict(), train()/eval()
    and repr reach every child, Python or C++.
    
        class Net(Module):
            def __init__(self):
                super().__init__()
                self.conv = Conv2d(1, 8, 3, padding=1)
                self.fc = Linear(8 * 28 * 28, 10)
            def forward(self, x):                    # x: (N, 1, 28, 28)
                return self.fc(self.conv(x).relu().flatten(1))   # (N, 10)
    """
    def __call__(self, *args, **kwargs) -> typing.Any:
        ...
    def __init__(self) -> None:
        ...
    def __reduce_ex__(self, protocol):
        ...
    def __repr__(self):
        """
        PyTorch's tree: Name(extra) for a leaf, with one indented line per child otherwise.
        """
    def _children(self) -> list:
        ...
    def _own_buffers(self) -> list[tuple[builtins.str, Tensor]]:
        ...
    def _own_parameters(self) -> list[tuple[builtins.str, Tensor]]:
        ...
    def _set_training(self, mode: builtins.bool) -> None:
        ...
    def add_module(self, name, module):
        ...
    def apply(self, fn):
        """
        Calls fn on every child (recursively), then on self; returns self (torch.nn.Module.apply).
        """
    def buffers(self, recurse = True):
        ...
    def children(self):
        ...
    def cpu(self):
        ...
    def cuda(self, *args, **kwargs):
        ...
    def eval(self):
        ...
    def extra_repr(self) -> builtins.str:
        ...
    def float(self):
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
    def load_state_dict(self, state_dict, strict = True):
        """
        Copies values into the model's parameters and buffers by name, as torch's does: with
            strict, every key must match (a RuntimeError lists the missing and unexpected ones); a shape
            mismatch is always an error; on any error nothing is changed. Returns (missing_keys,
            unexpected_keys).
        """
    def modules(self):
        ...
    def named_buffers(self, prefix = '', recurse = True, remove_duplicate = True):
        ...
    def named_children(self):
        """
        (name, Module) pairs of the direct children: the C++ ones, then the Python attributes.
        """
    def named_modules(self, memo = None, prefix = '', remove_duplicate = True):
        """
        Every module of the tree, depth first, self first (prefix ''), each once.
        """
    def named_parameters(self, prefix = '', recurse = True, remove_duplicate = True):
        """
        (name, Parameter) pairs with PyTorch's dotted names ("features.0.weight"); shared
            parameters once.
        """
    def parameters(self, recurse = True):
        ...
    def register_buffer(self, name, tensor, persistent = True):
        """
        Adds a buffer: state saved in state_dict (unless persistent=False) but not trained.
        """
    def register_module(self, name, module):
        ...
    def register_parameter(self, name, param):
        ...
    def requires_grad_(self, requires_grad = True):
        ...
    def state_dict(self, destination = None, prefix = '', keep_vars = False):
        """
        An OrderedDict of every parameter and persistent buffer by PyTorch's dotted name, module by
            module (its parameters, its buffers, then its children). The tensors share memory with the
            model's (detached unless keep_vars).
        """
    def to(self, *args, **kwargs):
        ...
    def train(self, mode = True):
        """
        Sets training mode on this module and every descendant (Python and C++); returns self.
        """
    def zero_grad(self, set_to_none = True):
        ...
    @property
    def training(self) -> builtins.bool:
        ...
class OnnxModel:
    """
    
    An ONNX model imported by tinytorch.onnx.load(path): model(x) runs it on a Tensor or numpy array
    and returns a Tensor (a tuple for several outputs); model.run({name: array}) or
    model.run(output_names, {name: array}) returns the outputs as a list, as ONNX Runtime's
    session.run does.
    """
    def __call__(self, input: typing.Any) -> typing.Any:
        """
        The outputs for one input (a Tensor or numpy array): a Tensor, or a tuple of them.
        """
    def __repr__(self) -> builtins.str:
        ...
    def describe_nodes(self) -> list[builtins.str]:
        """
        each node as the runtime runs it, with what the graph passes fused into it
        """
    def inspect(self, input: typing.Any, timed_runs: builtins.int = 0) -> dict:
        """
        One run on `input`, node by node after the graph passes: {'nodes': [{op, name, fused, output_shapes, flops, params, algorithm, output_bytes, ms}], 'memory': {intermediate_bytes, peak_live_bytes, arena_bytes, runtime_block_bytes, runtime_tensors}, 'flops', 'params', ...}; with timed_runs > 0 each node's median time ('ms') over that many more runs (tinytorch inspect on the command line).
        """
    def run(self, output_names: typing.Any = None, input_feed: typing.Any = None) -> list:
        """
        run({name: array}) or run(output_names, {name: array}): the outputs as a list, as onnxruntime's session.run.
        """
    @property
    def inputs(self) -> list:
        """
        [(name, dims)] of the graph inputs; -1 marks a free dim such as the batch
        """
    @property
    def op_types(self) -> list[builtins.str]:
        """
        each node's operator, in execution order
        """
    @property
    def released_weight_bytes(self) -> builtins.int:
        """
        bytes of Conv weights given back to the system once prepared (load's keep_weights)
        """
    @property
    def opset(self) -> builtins.int:
        """
        the default domain's opset the file imports
        """
    @property
    def outputs(self) -> list:
        """
        [(name, dims)] of the graph outputs
        """
    @property
    def producer(self) -> builtins.str:
        """
        producer_name and version, as the file states them
        """
class Optimizer:
    """
    The base of the optimizers: step(), zero_grad(), lr, steps.
    """
    lr: builtins.float
    def step(self) -> None:
        ...
    def zero_grad(self) -> None:
        ...
    @property
    def steps(self) -> builtins.int:
        ...
class ReLU(Module):
    """
    
    ReLU(inplace=False): max(x, 0) elementwise, any shape. inplace is accepted for PyTorch code and
    changes nothing: the result is always a new tensor.
    
        y = ReLU()(Tensor([-1.0, 2.0]))            # tensor([0, 2])
    """
    def __call__(self, input: Tensor) -> Tensor:
        ...
    def __init__(self, inplace: builtins.bool = False) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
class SGD(Optimizer):
    """
    SGD(params, lr, momentum=0, weight_decay=0, nesterov=False)
    """
    def __init__(self, params: list[Tensor], lr: builtins.float, momentum: builtins.float = 0.0, weight_decay: builtins.float = 0.0, nesterov: builtins.bool = False) -> None:
        ...
class Sequential(Module):
    """
    
    Sequential(*modules): runs its modules in order; children are named "0", "1", ...
    
        model = Sequential(Conv2d(1, 8, 3), ReLU(), Flatten(), Linear(8 * 26 * 26, 10))
        y = model(x)                                 # x: (N, 1, 28, 28) -> y: (N, 10)
    """
    def __getitem__(self, arg0: builtins.int) -> typing.Any:
        ...
    def __init__(self, *args) -> None:
        ...
    def __len__(self) -> builtins.int:
        ...
    def append(self, arg0: Module) -> None:
        ...
    def forward(self, input: Tensor) -> Tensor:
        ...
class ShardScope:
    """
    with ShardScope(begin, end, batch): this process's rows of a batch.
    """
    def __enter__(self) -> ShardScope:
        ...
    def __exit__(self, *args) -> None:
        ...
    def __init__(self, begin: builtins.int, end: builtins.int, batch: builtins.int) -> None:
        ...
class Tensor:
    """
    
    An N-dimensional array over tinytorch's C++ core: float32 (what layers compute in), int64
    (labels, indices) or bool (masks).
    
    Tensor(data, dtype=None, requires_grad=False) takes a numpy array, a nested list of numbers, a
    number, a Tensor, or a PyTorch tensor (through DLPack). Floats become float32, integers int64 and
    bools bool, unless dtype says otherwise; memory is shared, not copied, where the source already
    has the dtype. ``.data`` is a numpy view of the same memory.
    
        x = Tensor(np.random.randn(2, 3))         # float32
        y = Tensor([0, 2], dtype="int64")
        w = Tensor(np.ones((3, 4)), requires_grad=True)
        loss = (x @ w).relu().sum()
        loss.backward()                           # w.grad: Tensor (3, 4)
    """
    __array_priority__: typing.ClassVar[builtins.int] = 1000
    grad: typing.Any
    @staticmethod
    def ones(*args, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> Tensor:
        """
        Ones of the given size (ints or one tuple), float32 unless dtype says otherwise.
        """
    @staticmethod
    def randn(*args, requires_grad: builtins.bool = False) -> Tensor:
        """
        Standard normal samples from the global generator (tinytorch.manual_seed).
        """
    @staticmethod
    def zeros(*args, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> Tensor:
        """
        Zeros of the given size (ints or one tuple), float32 unless dtype says otherwise.
        """
    def __abs__(self) -> Tensor:
        ...
    def __add__(self, arg0: typing.Any) -> Tensor:
        ...
    def __and__(self, arg0: typing.Any) -> Tensor:
        ...
    def __array__(self, dtype: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        ...
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """
        numpy ufuncs on tensors give tensors: the arithmetic ones run tinytorch's ops (so they are
            differentiable); any other is computed by numpy on the data and wrapped.
        """
    def __bool__(self):
        """
        A one-element tensor is its value. A bool tensor of several elements (a comparison) is
            ambiguous, as in PyTorch and NumPy. A float or int tensor of several elements is true, as any
            object is: the seed's and upstream TinyTorch's ``if self.bias:`` tests whether there is one.
        """
    def __copy__(self):
        ...
    def __deepcopy__(self, memo):
        ...
    def __dlpack__(self, **kwargs) -> typing.Any:
        """
        A DLPack capsule over this tensor's memory (for torch.from_dlpack, numpy.from_dlpack).
        """
    def __dlpack_device__(self) -> tuple:
        ...
    def __eq__(self, arg0: typing.Any) -> Tensor:  # type: ignore[override]
        ...
    def __float__(self):
        ...
    def __floordiv__(self, arg0: typing.Any) -> Tensor:
        ...
    def __format__(self, spec):
        ...
    def __ge__(self, arg0: typing.Any) -> Tensor:
        ...
    def __getitem__(self, key):
        ...
    def __gt__(self, arg0: typing.Any) -> Tensor:
        ...
    def __hash__(self) -> builtins.int:
        ...
    def __iadd__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __iand__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __ifloordiv__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __imod__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __imul__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __index__(self):
        ...
    def __init__(self, data: typing.Any, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> None:
        ...
    def __int__(self):
        ...
    def __invert__(self) -> Tensor:
        ...
    def __ior__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __ipow__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __isub__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __iter__(self):
        ...
    def __itruediv__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __ixor__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __le__(self, arg0: typing.Any) -> Tensor:
        ...
    def __len__(self) -> builtins.int:
        ...
    def __lt__(self, arg0: typing.Any) -> Tensor:
        ...
    def __matmul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __mod__(self, arg0: typing.Any) -> Tensor:
        ...
    def __mul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __ne__(self, arg0: typing.Any) -> Tensor:  # type: ignore[override]
        ...
    def __neg__(self) -> Tensor:
        ...
    def __or__(self, arg0: typing.Any) -> Tensor:
        ...
    def __pos__(self) -> Tensor:
        ...
    def __pow__(self, arg0: typing.Any) -> Tensor:
        ...
    def __radd__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rand__(self, arg0: typing.Any) -> Tensor:
        ...
    def __reduce_ex__(self, protocol):
        ...
    def __repr__(self) -> builtins.str:
        ...
    def __rfloordiv__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rmatmul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rmod__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rmul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __ror__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rpow__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rsub__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rtruediv__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rxor__(self, arg0: typing.Any) -> Tensor:
        ...
    def __setitem__(self, key, value):
        ...
    def __sub__(self, arg0: typing.Any) -> Tensor:
        ...
    def __truediv__(self, arg0: typing.Any) -> Tensor:
        ...
    def __xor__(self, arg0: typing.Any) -> Tensor:
        ...
    def _identity(self) -> builtins.int:
        ...
    def _max_dim(self, dim: builtins.int, keepdim: builtins.bool = False) -> tuple[Tensor, Tensor]:
        ...
    def _mean(self, dim: typing.Any = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def _min_dim(self, dim: builtins.int, keepdim: builtins.bool = False) -> tuple[Tensor, Tensor]:
        ...
    def _slice(self, dim: builtins.int, start: builtins.int, stop: builtins.int, step: builtins.int) -> Tensor:
        ...
    def _sum(self, dim: typing.Any = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def abs(self) -> Tensor:
        ...
    def add(self, other: typing.Any) -> Tensor:
        ...
    def all(self):
        ...
    def allclose(self, other: Tensor, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08) -> builtins.bool:
        ...
    def amax(self, dim: typing.Any = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def amin(self, dim: typing.Any = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def any(self):
        ...
    def argmax(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def argmin(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
        ...
    def astype(self, dtype: typing.Any) -> Tensor:
        ...
    def backward(self, gradient: typing.Any = None, retain_graph: typing.Any = None) -> None:
        ...
    def bool(self) -> Tensor:
        ...
    def chunk(self, chunks, dim = 0):
        """
        At most `chunks` views along dim of ceil(size / chunks) each, as torch.Tensor.chunk.
        """
    def clamp(self, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
        ...
    def clip(self, min = None, max = None):
        """
        The same as clamp: NumPy's name.
        """
    def clone(self) -> Tensor:
        """
        A copy (differentiable).
        """
    def contiguous(self) -> Tensor:
        ...
    def copy_(self, src: typing.Any) -> Tensor:
        ...
    def cpu(self):
        ...
    def cuda(self, *args, **kwargs):
        ...
    def detach(self) -> Tensor:
        """
        The same memory, cut from the graph.
        """
    def dim(self) -> builtins.int:
        ...
    def div(self, other: typing.Any) -> Tensor:
        ...
    def element_size(self) -> builtins.int:
        ...
    def eq(self, other: typing.Any) -> Tensor:
        ...
    def equal(self, other: Tensor) -> builtins.bool:
        ...
    def erf(self) -> Tensor:
        ...
    def exp(self) -> Tensor:
        ...
    def expand(self, *args) -> Tensor:
        ...
    def expand_as(self, arg0: Tensor) -> Tensor:
        ...
    def fill_(self, value: builtins.float) -> Tensor:
        ...
    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        ...
    def float(self) -> Tensor:
        ...
    def ge(self, other: typing.Any) -> Tensor:
        ...
    def gt(self, other: typing.Any) -> Tensor:
        ...
    def int(self) -> Tensor:
        ...
    def is_contiguous(self) -> builtins.bool:
        ...
    def is_floating_point(self) -> builtins.bool:
        ...
    def item(self) -> typing.Any:
        """
        The value of a one-element tensor as a Python float, builtins.int or bool.
        """
    def le(self, other: typing.Any) -> Tensor:
        ...
    def log(self) -> Tensor:
        ...
    def log_softmax(self, dim: builtins.int = -1) -> Tensor:
        ...
    def long(self) -> Tensor:
        ...
    def lt(self, other: typing.Any) -> Tensor:
        ...
    def masked_fill(self, mask: Tensor, value: typing.Any) -> Tensor:
        ...
    def matmul(self, other: typing.Any) -> Tensor:
        ...
    def max(self, dim = None, keepdim = False, *, axis = None, keepdims = None, out = None):
        """
        The largest element (0-d), or with dim the (values, indices) along it, as torch.max; with
            NumPy's axis= the values only.
        """
    def maximum(self, other: typing.Any) -> Tensor:
        ...
    def mean(self, dim = None, keepdim = False, *, axis = None, keepdims = None, dtype = None, out = None):
        """
        Mean over dim (an int, a tuple, or None for all); ``axis``/``keepdims`` as in NumPy.
        """
    def min(self, dim = None, keepdim = False, *, axis = None, keepdims = None, out = None):
        """
        The smallest element (0-d), or with dim the (values, indices) along it, as torch.min.
        """
    def minimum(self, other: typing.Any) -> Tensor:
        ...
    def mul(self, other: typing.Any) -> Tensor:
        ...
    def ne(self, other: typing.Any) -> Tensor:
        ...
    def neg(self) -> Tensor:
        ...
    def numel(self) -> builtins.int:
        ...
    def numpy(self) -> _np.ndarray:
        """
        The data as a numpy array (shared, not copied).
        """
    def permute(self, *args) -> Tensor:
        ...
    def pow(self, other: typing.Any) -> Tensor:
        ...
    def relu(self) -> Tensor:
        ...
    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        ...
    def reshape(self, *args) -> Tensor:
        """
        The same elements in a new shape (one size may be -1): a view when the tensor is contiguous.
        """
    def select(self, dim: builtins.int, index: builtins.int) -> Tensor:
        ...
    def sigmoid(self) -> Tensor:
        ...
    def softmax(self, dim: builtins.int = -1) -> Tensor:
        ...
    def split(self, split_size_or_sections, dim = 0):
        """
        Views of consecutive pieces along dim, as torch.Tensor.split: pieces of split_size (the last
        may be shorter), or of the listed sizes, which must sum to the dim's size.
        """
    def sqrt(self) -> Tensor:
        ...
    def squeeze(self, dim: typing.Any = None) -> Tensor:
        ...
    def storage_offset(self) -> builtins.int:
        ...
    def stride(self, dim: typing.Any = None) -> typing.Any:
        """
        Strides in elements, as torch.Tensor.stride().
        """
    def sub(self, other: typing.Any) -> Tensor:
        ...
    def sum(self, dim = None, keepdim = False, *, axis = None, keepdims = None, dtype = None, out = None):
        """
        Sum over dim (an int, a tuple, or None for all); ``axis``/``keepdims`` as in NumPy.
        """
    def tanh(self) -> Tensor:
        ...
    def to(self, *args, **kwargs):
        """
        t.to(dtype), t.to(device), t.to(device, dtype), t.to(other_tensor): a copy in the dtype
            asked for (the tensor itself if nothing changes); devices are checked and otherwise ignored.
        """
    def tolist(self) -> typing.Any:
        ...
    def transpose(self, dim0: typing.Any = None, dim1: typing.Any = None) -> Tensor:
        ...
    def type(self, dtype: typing.Any) -> Tensor:
        ...
    def unsqueeze(self, dim: builtins.int) -> Tensor:
        ...
    def view(self, *args) -> Tensor:
        """
        A view with a new shape; a strided tensor must be made contiguous() first.
        """
    def zero_(self) -> Tensor:
        ...
    def zero_grad(self):
        ...
    @property
    def T(self) -> Tensor:
        """
        The dims reversed (the transpose of a matrix).
        """
    @property
    def data(self) -> _np.ndarray:
        """
        A numpy array sharing this tensor's memory. Assigning copies values of the same shape in.
        """
    @data.setter
    def data(self, arg1: typing.Any) -> None:
        ...
    @property
    def device(self):
        ...
    @property
    def dtype(self) -> _np.dtype[typing.Any]:
        """
        numpy's dtype object: float32, int64 or bool (tinytorch.float32 is _np.dtype('float32')).
        """
    @property
    def grad_fn(self) -> typing.Any:
        """
        The name of the op that computed this tensor, or None for a leaf.
        """
    @property
    def is_cuda(self):
        ...
    @property
    def is_leaf(self) -> builtins.bool:
        ...
    @property
    def itemsize(self) -> builtins.int:
        ...
    @property
    def nbytes(self) -> builtins.int:
        ...
    @property
    def ndim(self) -> builtins.int:
        ...
    @property
    def requires_grad(self) -> builtins.bool:
        """
        Whether backward() computes a gradient for this tensor (settable on leaves).
        """
    @requires_grad.setter
    def requires_grad(self, arg1: builtins.bool) -> None:
        ...
    @property
    def shape(self) -> tuple:
        ...
    @property
    def size(self):
        """
        Number of elements (``t.size``); call it for the shape: ``t.size()``, ``t.size(0)``.
        """
class _EnableGradGuard:
    def __init__(self) -> None:
        ...
class _MnistLoader:
    """
    The C++ batcher of `tinytorch train` (with crop and flip augmentation).
    """
    def __init__(self, dataset: Dataset, batch_size: builtins.int, shuffle: builtins.bool = True, seed: builtins.int = 0, crop_padding: builtins.int = 0, flip: builtins.bool = False) -> None:
        ...
    def __len__(self) -> builtins.int:
        ...
    def batch(self, index: builtins.int) -> tuple:
        ...
    def start_epoch(self, epoch: builtins.int) -> None:
        ...
class _NoGradGuard:
    def __init__(self) -> None:
        ...
def _gather_rows(tensors: list[Tensor], rows: Tensor) -> list[Tensor]:
    """
    The rows `rows` (int64) of each tensor, gathered in C++ without the GIL.
    """
def _index(arg0: Tensor, arg1: typing.Sequence) -> Tensor:
    ...
def _index_put(arg0: Tensor, arg1: typing.Sequence, arg2: typing.Any) -> None:
    ...
def _load_checkpoint(path: builtins.str, state: list[tuple[builtins.str, Tensor]], optimizer: Optimizer | None = None, strict: builtins.bool = True) -> dict[builtins.str, builtins.str]:
    ...
def _load_safetensors(path: builtins.str) -> tuple:
    ...
def _nonzero(input: Tensor) -> list[Tensor]:
    """
    The int64 coordinates of the nonzero elements, one tensor per dim.
    """
def _save_checkpoint(path: builtins.str, state: list[tuple[builtins.str, Tensor]], optimizer: Optimizer | None = None, metadata: dict[builtins.str, builtins.str] = {}) -> None:
    ...
def _save_safetensors(path: builtins.str, tensors: list[tuple[builtins.str, Tensor]], metadata: dict[builtins.str, builtins.str] = {}) -> None:
    ...
def _write_file_atomic(path: builtins.str, contents: bytes) -> None:
    ...
def abs(input: Tensor) -> Tensor:
    """
    |x|, elementwise (keeps the dtype).
    """
def add(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a + b, broadcasting.
    """
def avg_pool2d(input: Tensor, kernel_size: typing.Any, stride: typing.Any = None, padding: typing.Any = 0, ceil_mode: builtins.bool = False, count_include_pad: builtins.bool = True) -> Tensor:
    """
    Average pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.avg_pool2d.
    """
def batch_norm(input: Tensor, running_mean: Tensor, running_var: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, training: builtins.bool = False, momentum: builtins.float = 0.1, eps: builtins.float = 1e-05) -> Tensor:
    """
    Batch normalisation as torch.nn.functional.batch_norm (running statistics updated in training).
    """
def cat(tensors: typing.Iterable, dim: builtins.int = 0) -> Tensor:
    """
    Joins tensors end to end along dim (their other dims must match).
    """
def clamp(input: Tensor, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
    """
    Limits values to [min, max] (either may be None); the gradient passes where min <= x <= max.
    """
def clear_conv2d_autotune_cache() -> None:
    ...
def clear_weight_cache() -> None:
    ...
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: typing.Any = 1, padding: typing.Any = 0, dilation: typing.Any = 1, groups: builtins.int = 1, algorithm: builtins.str = 'auto') -> Tensor:
    """
    conv2d like torch.nn.functional.conv2d; algorithm forces one ('auto': the heuristic).
    """
def conv2d_algorithms() -> list[builtins.str]:
    ...
def conv2d_autotune_cache_size() -> builtins.int:
    """
    Shapes tuned so far.
    """
def conv2d_naive(input: Tensor, kernel: Tensor, bias: builtins.float | None = None) -> Tensor:
    """
    The seed's valid cross-correlation of (C, H, W) or (H, W) with a (KH, KW) kernel, in plain loops.
    """
def cosine_lr(base_lr: builtins.float, epoch: builtins.int, epochs: builtins.int, min_lr: builtins.float = 0.0) -> builtins.float:
    """
    The learning rate of an epoch on a half cosine from base_lr (epoch 0) down to min_lr.
    """
def cross_entropy(logits: Tensor, targets: typing.Any) -> Tensor:
    """
    Mean cross-entropy of logits (N, K) against class indices (N,): an int64 Tensor, a numpy array or a list.
    """
def distributed_abort(code: builtins.int) -> None:
    """
    Ends every process of the job (MPI_Abort) after an error in this one; nothing when alone.
    """
def distributed_all_reduce(tensor: Tensor, op: builtins.str = 'sum') -> None:
    """
    In place over every process: a contiguous float32 or int64 Tensor.
    """
def distributed_available() -> builtins.bool:
    """
    Whether this build has MPI.
    """
def distributed_barrier() -> None:
    ...
def distributed_broadcast(tensor: Tensor, src: builtins.int = 0) -> None:
    """
    In place: rank src's values to every process.
    """
def distributed_init() -> None:
    """
    Joins the MPI job (once).
    """
def distributed_initialized() -> builtins.bool:
    ...
def distributed_launched() -> builtins.bool:
    """
    Whether mpirun/srun started this process.
    """
def distributed_local_size() -> builtins.int:
    ...
def distributed_rank() -> builtins.int:
    ...
def distributed_set_sync_batch_norm(on: builtins.bool) -> None:
    ...
def distributed_shard_rows(batch: builtins.int, rank: builtins.int, world: builtins.int) -> tuple[builtins.int, builtins.int]:
    ...
def distributed_world_size() -> builtins.int:
    ...
def div(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a / b (true division: float32).
    """
def dropout(input: Tensor, p: builtins.float = 0.5, training: builtins.bool = True) -> Tensor:
    """
    Zeroes elements with probability p (scaling the rest by 1/(1-p)) when training; identity otherwise.
    """
def erf(input: Tensor) -> Tensor:
    """
    The error function, elementwise (float32).
    """
def exp(input: Tensor) -> Tensor:
    """
    e ** x, elementwise (float32).
    """
def fashion_cnn() -> Sequential:
    """
    The default Fashion-MNIST CNN of `tinytorch train`.
    """
def flatten(input: Tensor, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
    """
    Merges dims start_dim..end_dim into one (a view when contiguous); flatten(x) is 1-D, as in the seed.
    """
def from_dlpack(x: typing.Any) -> Tensor:
    """
    A tensor sharing the memory of x (a PyTorch tensor, a numpy array, anything with __dlpack__).
    """
def full(size: typing.Any, fill_value: typing.Any, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """
    A tensor of `size` filled with fill_value, of its dtype (int64 for an int) unless given.
    """
def get_conv2d_algorithm() -> builtins.str:
    ...
def get_conv2d_autotune() -> builtins.bool:
    ...
def get_num_threads() -> builtins.int:
    """
    The number of threads tinytorch's kernels run on.
    """
def get_weight_cache_bytes() -> builtins.int:
    ...
def hardsigmoid(input: Tensor) -> Tensor:
    """
    min(max(x + 3, 0), 6) / 6, elementwise.
    """
def hardswish(input: Tensor) -> Tensor:
    """
    x * min(max(x + 3, 0), 6) / 6, elementwise.
    """
def is_grad_enabled() -> builtins.bool:
    """
    Whether ops record the graph on this thread (False under no_grad).
    """
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """
    x W^T + b as torch.nn.functional.linear: input (..., IN), weight (OUT, IN), bias (OUT,).
    """
def load_mnist_folder(folder: builtins.str = '/usr/share/datasets/fashion-mnist', train: builtins.bool = True, limit: builtins.int = 0, mean: builtins.float = 0.28600001335144043, std: builtins.float = 0.3529999852180481) -> Dataset:
    """
    Reads an MNIST-format folder (the four IDX files, gzipped or not) into a Dataset, normalised.
    """
def log(input: Tensor) -> Tensor:
    """
    The natural logarithm, elementwise (float32).
    """
def log_softmax(input: Tensor, dim: builtins.int = -1) -> Tensor:
    """
    log(softmax(x)) along dim, computed stably.
    """
def manual_seed(seed: builtins.int) -> None:
    """
    Seeds the generator behind weight init and randn/rand.
    """
def matmul(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a @ b with numpy.matmul's rules (1-D operands, broadcast batch dims).
    """
def max_pool2d(input: Tensor, kernel_size: typing.Any, stride: typing.Any = None, padding: typing.Any = 0, dilation: typing.Any = 1, ceil_mode: builtins.bool = False) -> Tensor:
    """
    Max pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d.
    """
def maximum(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    The larger of a and b, elementwise (NaN wins).
    """
def measure_fma_peak_gflops(threads: typing.Any, seconds: builtins.float = 0.2) -> builtins.float:
    """
    This machine's FP32 FMA peak on `threads` threads, measured.
    """
def minimum(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    The smaller of a and b, elementwise (NaN wins).
    """
def mul(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a * b, broadcasting.
    """
def ones(*args, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """
    Ones of the given size (ints or one tuple), float32 unless dtype says otherwise.
    """
def onnx_available() -> builtins.bool:
    """
    Whether this build imports ONNX (libonnx-dev at build time).
    """
def onnx_export(function: typing.Callable, examples: list[Tensor], path: builtins.str, input_names: list[builtins.str], output_names: list[builtins.str], dynamic_batch: builtins.bool, verify: builtins.bool, named_tensors: list[tuple[builtins.str, Tensor]]) -> typing.Any:
    """
    Traces function(list of Tensors) -> list of Tensors on the examples into an ONNX model (opset 13): written atomically to path, or returned as bytes when path is empty (tinytorch.onnx.export).
    """
def onnx_load(path: builtins.str, optimize: builtins.bool = True, keep_weights: builtins.bool = False) -> OnnxModel:
    """
    Parses, checks and imports an ONNX model file (tinytorch.onnx.load).
    """
def onnx_load_from_bytes(data: bytes, optimize: builtins.bool = True) -> OnnxModel:
    """
    The same from the file's bytes (tinytorch.onnx.load_from_bytes).
    """
def onnx_supported_operators() -> list[builtins.str]:
    """
    The ONNX operators tinytorch runs, sorted.
    """
def peak_isa() -> builtins.str:
    ...
def pow(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a ** b, broadcasting.
    """
def rand(*args, requires_grad: builtins.bool = False) -> Tensor:
    """
    Uniform samples in [0, 1) from the global generator.
    """
def randn(*args, requires_grad: builtins.bool = False) -> Tensor:
    """
    Standard normal samples from the global generator (tinytorch.manual_seed).
    """
def relu(input: Tensor) -> Tensor:
    """
    max(x, 0), elementwise.
    """
def select_conv2d_algorithm(input_shape: list[builtins.int], weight_shape: list[builtins.int], stride: typing.Any = 1, padding: typing.Any = 0, dilation: typing.Any = 1, groups: builtins.int = 1) -> builtins.str:
    ...
def set_conv2d_algorithm(name: builtins.str) -> None:
    """
    Force a conv2d algorithm ('auto' restores the heuristic).
    """
def set_conv2d_autotune(enabled: builtins.bool) -> None:
    """
    Time the algorithms on each new shape and keep the fastest (like torch.backends.cudnn.benchmark).
    """
def set_num_threads(n: typing.Any) -> None:
    """
    Threads for tinytorch's kernels, 1 to 1024.
    """
def set_weight_cache_bytes(bytes: builtins.int) -> None:
    """
    Budget for prepared weights kept between calls (0 turns the cache off).
    """
def sigmoid(input: Tensor) -> Tensor:
    """
    1 / (1 + exp(-x)), elementwise (float32).
    """
def silu(input: Tensor) -> Tensor:
    """
    x * sigmoid(x), elementwise.
    """
def softmax(input: Tensor, dim: builtins.int = -1) -> Tensor:
    """
    exp(x) / sum(exp(x)) along dim.
    """
def sqrt(input: Tensor) -> Tensor:
    """
    The square root, elementwise (float32).
    """
def stack(tensors: typing.Iterable, dim: builtins.int = 0) -> Tensor:
    """
    Stacks tensors of one shape along a new dim.
    """
def step_lr(base_lr: builtins.float, epoch: builtins.int, step_size: builtins.int, gamma: builtins.float) -> builtins.float:
    """
    base_lr * gamma ** (epoch // step_size).
    """
def sub(arg0: typing.Any, arg1: typing.Any) -> Tensor:
    """
    a - b, broadcasting.
    """
def tanh(input: Tensor) -> Tensor:
    """
    The hyperbolic tangent, elementwise (float32).
    """
def weight_cache_held_bytes() -> builtins.int:
    """
    Bytes the weight cache holds now.
    """
def where(condition: typing.Any, input: typing.Any, other: typing.Any) -> Tensor:
    """
    condition ? input : other, elementwise, all three broadcast.
    """
def zeros(*args, dtype: typing.Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """
    Zeros of the given size (ints or one tuple), float32 unless dtype says otherwise.
    """
__version__: builtins.str = '0.1.0'

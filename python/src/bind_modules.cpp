// Module (with Python subclasses), Sequential, the layers and the pooling layers.
#include "bindings.hpp"

namespace tinytorch::python {

void bind_module_base(py::module_& m) {
  py::class_<tt::Module, PyModule, std::shared_ptr<tt::Module>>(m, "Module", py::dynamic_attr(), R"doc(
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
            return self.fc(self.conv(x).relu().flatten(1))   # (N, 10))doc")
      .def(py::init<>())
      .def("forward", &tt::Module::forward, "input"_a)
      .def("__call__",
           [](py::object self, py::args args, py::kwargs kwargs) { return self.attr("forward")(*args, **kwargs); })
      .def("_own_parameters", [](const tt::Module& self) { return self.named_parameters(false); })
      .def("_own_buffers",
           [](const tt::Module& self) {
             // named_buffers() recurses into the C++ children; their buffers are gathered through _children.
             tt::NamedTensors own;
             for (auto& [name, t] : self.named_buffers())
               if (name.find('.') == std::string::npos) own.emplace_back(name, t);
             return own;
           })
      .def("_children",
           [](py::object self) {
             // The registered C++ children, as their existing Python objects where they have one.
             py::list out;
             for (const auto& [name, child] : self.cast<const tt::Module&>().named_children()) {
               out.append(py::make_tuple(name, py::cast(child, py::return_value_policy::reference_internal, self)));
             }
             return out;
           })
      .def("_set_training", &tt::Module::train, "mode"_a)
      .def("extra_repr", &tt::Module::extra_repr)
      .def_property_readonly("training", &tt::Module::is_training);

  py::class_<tt::Sequential, tt::Module, std::shared_ptr<tt::Sequential>>(m, "Sequential", R"doc(
Sequential(*modules): runs its modules in order; children are named "0", "1", ...

    model = Sequential(Conv2d(1, 8, 3), ReLU(), Flatten(), Linear(8 * 26 * 26, 10))
    y = model(x)                                 # x: (N, 1, 28, 28) -> y: (N, 10))doc")
      // keep_alive: the Python modules (and their Python halves) live as long as the Sequential.
      .def(py::init([](py::args modules) {
             auto s = std::make_shared<tt::Sequential>();
             for (py::handle h : modules) {
               if (!py::isinstance<tt::Module>(h))
                 throw py::type_error("Sequential: expected Modules, got " + type_name_of(h));
               s->add(h.cast<std::shared_ptr<tt::Module>>());
             }
             return s;
           }),
           py::keep_alive<1, 2>())
      .def(
          "append", [](tt::Sequential& s, std::shared_ptr<tt::Module> m) { s.add(std::move(m)); },
          py::keep_alive<1, 2>())
      .def("__len__", &tt::Sequential::size)
      .def("__getitem__",
           [](py::object self, size_t i) {
             // Return the very module that was added (its Python object when it has one).
             tt::Module& child = self.cast<tt::Sequential&>()[i];
             return py::cast(&child, py::return_value_policy::reference_internal, self);
           })
      .def("forward", &tt::Sequential::forward, "input"_a, release_gil());
}

namespace {

// Linear, ReLU and Flatten: the non-spatial layers.
void bind_dense_layers(py::module_& m) {
  py::class_<tt::Linear, tt::Module, std::shared_ptr<tt::Linear>>(m, "Linear", R"doc(
Linear(in_features, out_features, bias=True): y = x W^T + b, as torch.nn.Linear.

The seed's spelling Linear(input_size=, output_size=) works too. weight: (out_features,
in_features), bias: (out_features,), both initialised uniformly in +-1/sqrt(in_features).
Input (..., in_features) -> output (..., out_features).

    fc = Linear(784, 10)
    y = fc(Tensor(np.random.randn(32, 784)))   # (32, 10))doc")
      // PyTorch's in_features / out_features, or the seed's input_size / output_size.
      .def(py::init([](py::object in_features, py::object out_features, bool bias, py::object input_size,
                       py::object output_size) {
             auto pick = [](py::object a, py::object b, const char* names) {
               if (a.is_none() == b.is_none())
                 throw py::type_error(std::string("Linear: give ") + names + " (exactly one spelling)");
               return to_int64(a.is_none() ? b : a, names);
             };
             return std::make_shared<tt::Linear>(pick(in_features, input_size, "in_features or input_size"),
                                                 pick(out_features, output_size, "out_features or output_size"), bias);
           }),
           "in_features"_a = py::none(), "out_features"_a = py::none(), "bias"_a = true, py::kw_only(),
           "input_size"_a = py::none(), "output_size"_a = py::none())
      .def("forward", &tt::Linear::forward, "input"_a, release_gil())
      .def("__call__", &tt::Linear::forward, "input"_a, release_gil())
      .def_readonly("input_size", &tt::Linear::input_size)
      .def_readonly("output_size", &tt::Linear::output_size)
      .def_readonly("in_features", &tt::Linear::input_size)
      .def_readonly("out_features", &tt::Linear::output_size)
      .def_property(
          "weight", [](const tt::Linear& l) { return l.weight; },
          [](tt::Linear& l, py::handle v) { set_parameter(l, "weight", v); })
      .def_property(
          "bias", [](const tt::Linear& l) { return tensor_or_none(l.bias); },
          [](tt::Linear& l, py::handle v) { set_parameter(l, "bias", v); });

  py::class_<tt::ReLU, tt::Module, std::shared_ptr<tt::ReLU>>(m, "ReLU", R"doc(
ReLU(inplace=False): max(x, 0) elementwise, any shape. inplace is accepted for PyTorch code and
changes nothing: the result is always a new tensor.

    y = ReLU()(Tensor([-1.0, 2.0]))            # tensor([0, 2]))doc")
      .def(py::init([](bool /*inplace*/) { return std::make_shared<tt::ReLU>(); }), "inplace"_a = false)
      .def("forward", &tt::ReLU::forward, "input"_a, release_gil())
      .def("__call__", &tt::ReLU::forward, "input"_a, release_gil());

  py::class_<tt::Flatten, tt::Module, std::shared_ptr<tt::Flatten>>(m, "Flatten", R"doc(
Flatten(start_dim=1, end_dim=-1): merges dims start_dim..end_dim into one, as torch.nn.Flatten.

    y = Flatten()(Tensor(np.zeros((8, 16, 5, 5))))   # (8, 400))doc")
      .def(py::init<int64_t, int64_t>(), "start_dim"_a = 1, "end_dim"_a = -1)
      .def("forward", &tt::Flatten::forward, "input"_a)
      .def("__call__", &tt::Flatten::forward, "input"_a)
      .def_readonly("start_dim", &tt::Flatten::start_dim)
      .def_readonly("end_dim", &tt::Flatten::end_dim);
}

void bind_conv_layer(py::module_& m) {
  py::class_<tt::Conv2D, tt::Module, std::shared_ptr<tt::Conv2D>>(m, "Conv2D", R"doc(
Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
bias=True): 2D convolution (cross-correlation) as torch.nn.Conv2d (also named Conv2d).

kernel_size, stride, padding and dilation are an int or an (h, w) pair; padding may also be
"valid" or "same". weight: (out_channels, in_channels / groups, kh, kw), bias: (out_channels,).
Input (N, C, H, W) or the seed's unbatched (C, H, W); output (N, out_channels, OH, OW) with
OH = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1. The fastest algorithm for the
shape is chosen (tinytorch.backends).

    conv = Conv2D(3, 16, 3, padding=1)
    y = conv(Tensor(np.random.randn(8, 3, 32, 32)))   # (8, 16, 32, 32))doc")
      .def(py::init([](int64_t in_channels, int64_t out_channels, py::handle kernel_size, py::handle stride,
                       py::handle padding, py::handle dilation, int64_t groups, bool bias) {
             return std::make_shared<tt::Conv2D>(in_channels, out_channels, to_size2(kernel_size, "kernel_size"),
                                                 to_size2(stride, "stride"), to_padding(padding),
                                                 to_size2(dilation, "dilation"), groups, bias);
           }),
           "in_channels"_a, "out_channels"_a, "kernel_size"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1,
           "groups"_a = 1, "bias"_a = true)
      .def("forward", &tt::Conv2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::Conv2D::forward, "input"_a, release_gil())
      .def_readonly("in_channels", &tt::Conv2D::in_channels)
      .def_readonly("out_channels", &tt::Conv2D::out_channels)
      .def_property_readonly("kernel_size", [](const tt::Conv2D& c) { return size2_tuple(c.kernel_size); })
      .def_property_readonly("stride", [](const tt::Conv2D& c) { return size2_tuple(c.options.stride); })
      .def_property_readonly("padding", [](const tt::Conv2D& c) { return padding_object(c.options.padding); })
      .def_property_readonly("dilation", [](const tt::Conv2D& c) { return size2_tuple(c.options.dilation); })
      .def_property_readonly("groups", [](const tt::Conv2D& c) { return c.options.groups; })
      .def_property_readonly("use_bias", [](const tt::Conv2D& c) { return c.bias.defined(); })
      .def_property(
          "weight", [](const tt::Conv2D& c) { return c.weight; },
          [](tt::Conv2D& c, py::handle v) { set_parameter(c, "weight", v); })
      .def_property(
          "bias", [](const tt::Conv2D& c) { return tensor_or_none(c.bias); },
          [](tt::Conv2D& c, py::handle v) { set_parameter(c, "bias", v); });
}

// BatchNorm2d, Dropout, and the default CNN built from the layers.
void bind_regularization_layers(py::module_& m) {
  py::class_<tt::BatchNorm2d, tt::Module, std::shared_ptr<tt::BatchNorm2d>>(m, "BatchNorm2d", R"doc(
BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True), as torch.nn.BatchNorm2d.

In training, normalises each channel of (N, C, H, W) (or (N, C)) with the batch's mean and
variance and moves running_mean / running_var by momentum (num_batches_tracked counts the
batches); in eval, uses the running statistics. weight (ones) and bias (zeros) are (C,).

    bn = BatchNorm2d(16)
    y = bn(Tensor(np.random.randn(8, 16, 32, 32)))    # (8, 16, 32, 32))doc")
      .def(py::init<int64_t, double, double, bool>(), "num_features"_a, "eps"_a = 1e-5, "momentum"_a = 0.1,
           "affine"_a = true)
      .def("forward", &tt::BatchNorm2d::forward, "input"_a, release_gil())
      .def("__call__", &tt::BatchNorm2d::forward, "input"_a, release_gil())
      .def_property(
          "weight", [](const tt::BatchNorm2d& b) { return tensor_or_none(b.weight); },
          [](tt::BatchNorm2d& b, py::handle v) { set_parameter(b, "weight", v); })
      .def_property(
          "bias", [](const tt::BatchNorm2d& b) { return tensor_or_none(b.bias); },
          [](tt::BatchNorm2d& b, py::handle v) { set_parameter(b, "bias", v); })
      .def_readonly("running_mean", &tt::BatchNorm2d::running_mean)
      .def_readonly("running_var", &tt::BatchNorm2d::running_var)
      .def_readonly("num_batches_tracked", &tt::BatchNorm2d::num_batches_tracked)
      .def_readonly("num_features", &tt::BatchNorm2d::num_features)
      .def_readonly("eps", &tt::BatchNorm2d::eps)
      .def_readonly("momentum", &tt::BatchNorm2d::momentum)
      .def_property_readonly("affine", [](const tt::BatchNorm2d& b) { return b.weight.defined(); });
  py::class_<tt::Dropout, tt::Module, std::shared_ptr<tt::Dropout>>(m, "Dropout", R"doc(
Dropout(p=0.5): in training, zeroes each element with probability p and scales the rest by
1/(1-p); in eval, the identity. dropout(x, training=False) overrides the mode for one call
(upstream TinyTorch's form). Draws from the generator tinytorch.manual_seed seeds.

    y = Dropout(0.25)(x))doc")
      .def(py::init<double>(), "p"_a = 0.5)
      .def("forward", &tt::Dropout::forward, "input"_a, release_gil())
      .def("__call__", &tt::Dropout::forward, "input"_a, release_gil())
      .def_readonly("p", &tt::Dropout::p);
  m.def(
      "fashion_cnn", [] { return std::static_pointer_cast<tt::Sequential>(tt::make_fashion_cnn()); },
      "The default Fashion-MNIST CNN of `tinytorch train`.");
}

}  // namespace

void bind_layers(py::module_& m) {
  bind_dense_layers(m);
  bind_conv_layer(m);
  bind_regularization_layers(m);
}

void bind_pooling(py::module_& m) {
  py::class_<tt::MaxPool2D, tt::Module, std::shared_ptr<tt::MaxPool2D>>(m, "MaxPool2D", R"doc(
MaxPool2D(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False), as
torch.nn.MaxPool2d (also named MaxPool2d); the seed's MaxPool2D(pool_size=2) works too.

stride defaults to kernel_size. Input (N, C, H, W) or (C, H, W); output
(N, C, OH, OW) with PyTorch's output-size rule (ceil_mode rounds up).

    pool = MaxPool2D(2)
    y = pool(Tensor(np.random.randn(8, 16, 32, 32)))  # (8, 16, 16, 16))doc")
      // pool_size is the seed's name for kernel_size; either may be given.
      .def(py::init([](py::handle kernel_size, py::handle stride, py::handle padding, py::handle dilation,
                       bool ceil_mode, py::handle pool_size) {
             if (kernel_size.is_none() == pool_size.is_none()) {
               throw py::type_error("MaxPool2D: give kernel_size (or the seed's pool_size), exactly one of them");
             }
             py::handle kernel = kernel_size.is_none() ? pool_size : kernel_size;
             return std::make_shared<tt::MaxPool2D>(to_size2(kernel, "kernel_size"),
                                                    to_optional_size2(stride, "stride"), to_size2(padding, "padding"),
                                                    to_size2(dilation, "dilation"), ceil_mode);
           }),
           "kernel_size"_a = py::none(), "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1,
           "ceil_mode"_a = false, py::kw_only(), "pool_size"_a = py::none())
      .def("forward", &tt::MaxPool2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::MaxPool2D::forward, "input"_a, release_gil())
      .def_property_readonly("kernel_size", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly("pool_size", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly(
          "stride",
          [](const tt::MaxPool2D& p) { return size2_tuple(p.options.stride.value_or(p.options.kernel_size)); })
      .def_property_readonly("padding", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.padding); })
      .def_property_readonly("dilation", [](const tt::MaxPool2D& p) { return size2_tuple(p.options.dilation); })
      .def_property_readonly("ceil_mode", [](const tt::MaxPool2D& p) { return p.options.ceil_mode; });

  py::class_<tt::AvgPool2D, tt::Module, std::shared_ptr<tt::AvgPool2D>>(m, "AvgPool2D", R"doc(
AvgPool2D(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True), as
torch.nn.AvgPool2d (also named AvgPool2d). Input (N, C, H, W) or (C, H, W).

    y = AvgPool2D(2)(Tensor(np.random.randn(8, 16, 32, 32)))   # (8, 16, 16, 16))doc")
      .def(py::init([](py::handle kernel_size, py::handle stride, py::handle padding, bool ceil_mode,
                       bool count_include_pad) {
             return std::make_shared<tt::AvgPool2D>(to_size2(kernel_size, "kernel_size"),
                                                    to_optional_size2(stride, "stride"), to_size2(padding, "padding"),
                                                    ceil_mode, count_include_pad);
           }),
           "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
           "count_include_pad"_a = true)
      .def("forward", &tt::AvgPool2D::forward, "input"_a, release_gil())
      .def("__call__", &tt::AvgPool2D::forward, "input"_a, release_gil())
      .def_property_readonly("kernel_size", [](const tt::AvgPool2D& p) { return size2_tuple(p.options.kernel_size); })
      .def_property_readonly(
          "stride",
          [](const tt::AvgPool2D& p) { return size2_tuple(p.options.stride.value_or(p.options.kernel_size)); })
      .def_property_readonly("padding", [](const tt::AvgPool2D& p) { return size2_tuple(p.options.padding); })
      .def_property_readonly("ceil_mode", [](const tt::AvgPool2D& p) { return p.options.ceil_mode; })
      .def_property_readonly("count_include_pad", [](const tt::AvgPool2D& p) { return p.options.count_include_pad; });
}

}  // namespace tinytorch::python

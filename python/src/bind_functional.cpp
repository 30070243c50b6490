// Stateless ops, as torch.nn.functional: convolution, linear, pooling, activations, losses.
#include "bindings.hpp"

namespace tinytorch::python {

// Class labels as the loss takes them: any 1-D integer Tensor, array or list (PyTorch's int64).
std::vector<int64_t> class_indices(py::handle targets, const char* op) {
  const tt::Tensor given = operand(targets);
  if (given.dtype() == tt::DType::Float32) {
    throw py::type_error(std::string(op) + ": expected integer class indices (int64), got float32 targets");
  }
  const tt::Tensor t = given.to(tt::DType::Int64).contiguous();
  if (t.dim() > 1) {
    throw py::value_error(std::string(op) + ": expected targets of shape (N,), got " + tt::shape_to_string(t.shape()));
  }
  const int64_t* p = t.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

void bind_functional(py::module_& m) {
  m.def("flatten", &tt::flatten, "input"_a, "start_dim"_a = 0, "end_dim"_a = -1,
        "Merges dims start_dim..end_dim into one (a view when contiguous); flatten(x) is 1-D, as in the seed.");
  m.def("relu", &tt::relu, "input"_a, release_gil(), "max(x, 0), elementwise.");
  m.def("hardswish", &tt::hardswish, "input"_a, release_gil(), "x * min(max(x + 3, 0), 6) / 6, elementwise.");
  m.def("hardsigmoid", &tt::hardsigmoid, "input"_a, release_gil(), "min(max(x + 3, 0), 6) / 6, elementwise.");
  m.def("silu", &tt::silu, "input"_a, release_gil(), "x * sigmoid(x), elementwise.");
  m.def(
      "dropout",
      [](const tt::Tensor& x, double p, bool training) {
        py::gil_scoped_release release;
        return tt::dropout(x, p, training);
      },
      "input"_a, "p"_a = 0.5, "training"_a = true,
      "Zeroes elements with probability p (scaling the rest by 1/(1-p)) when training; identity otherwise.");
  m.def(
      "batch_norm",
      [](const tt::Tensor& x, tt::Tensor running_mean, tt::Tensor running_var, std::optional<tt::Tensor> weight,
         std::optional<tt::Tensor> bias, bool training, double momentum, double eps) {
        py::gil_scoped_release release;
        return tt::batch_norm(x, running_mean, running_var, weight.value_or(tt::Tensor()), bias.value_or(tt::Tensor()),
                              training, momentum, eps);
      },
      "input"_a, "running_mean"_a, "running_var"_a, "weight"_a = py::none(), "bias"_a = py::none(),
      "training"_a = false, "momentum"_a = 0.1, "eps"_a = 1e-5,
      "Batch normalisation as torch.nn.functional.batch_norm (running statistics updated in training).");
  m.def(
      "conv2d_naive",
      [](const tt::Tensor& input, const tt::Tensor& kernel, std::optional<float> bias) {
        py::gil_scoped_release release;
        return tt::conv2d_naive(input, kernel, bias);
      },
      "input"_a, "kernel"_a, "bias"_a = py::none(),
      "The seed's valid cross-correlation of (C, H, W) or (H, W) with a (KH, KW) kernel, in plain loops.");
  m.def(
      "conv2d",
      [](const tt::Tensor& input, const tt::Tensor& weight, std::optional<tt::Tensor> bias, py::handle stride,
         py::handle padding, py::handle dilation, int64_t groups, const std::string& algorithm) {
        const tt::Conv2dOptions o{to_size2(stride, "stride"), to_padding(padding), to_size2(dilation, "dilation"),
                                  groups};
        const tt::Conv2dAlgorithm a = tt::conv2d_algorithm_from_string(algorithm);
        py::gil_scoped_release release;
        return tt::conv2d_with(a, input, weight, bias.value_or(tt::Tensor()), o);
      },
      "input"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1,
      "algorithm"_a = "auto", "conv2d like torch.nn.functional.conv2d; algorithm forces one ('auto': the heuristic).");
  m.def(
      "linear",
      [](const tt::Tensor& input, const tt::Tensor& weight, std::optional<tt::Tensor> bias) {
        py::gil_scoped_release release;
        return tt::linear(input, weight, bias.value_or(tt::Tensor()));
      },
      "input"_a, "weight"_a, "bias"_a = py::none(),
      "x W^T + b as torch.nn.functional.linear: input (..., IN), weight (OUT, IN), bias (OUT,).");

  m.def(
      "max_pool2d",
      [](const tt::Tensor& x, py::handle k, py::handle stride, py::handle padding, py::handle dilation,
         bool ceil_mode) {
        const tt::MaxPool2dOptions o{to_size2(k, "kernel_size"), to_optional_size2(stride, "stride"),
                                     to_size2(padding, "padding"), to_size2(dilation, "dilation"), ceil_mode};
        py::gil_scoped_release release;
        return tt::max_pool2d(x, o);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false,
      "Max pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d.");
  m.def(
      "avg_pool2d",
      [](const tt::Tensor& x, py::handle k, py::handle stride, py::handle padding, bool ceil_mode,
         bool count_include_pad) {
        const tt::AvgPool2dOptions o{to_size2(k, "kernel_size"), to_optional_size2(stride, "stride"),
                                     to_size2(padding, "padding"), ceil_mode, count_include_pad};
        py::gil_scoped_release release;
        return tt::avg_pool2d(x, o);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
      "count_include_pad"_a = true, "Average pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.avg_pool2d.");
  m.def(
      "cross_entropy",
      [](const tt::Tensor& logits, py::handle targets) {
        return tt::cross_entropy(logits, class_indices(targets, "cross_entropy"));
      },
      "logits"_a, "targets"_a,
      "Mean cross-entropy of logits (N, K) against class indices (N,): an int64 Tensor, a numpy array or a list.");
  m.def(
      "log_softmax", [](const tt::Tensor& x, int64_t dim) { return tt::log_softmax(x, dim); }, "input"_a, "dim"_a = -1,
      "log(softmax(x)) along dim, computed stably.");
  m.def(
      "softmax", [](const tt::Tensor& x, int64_t dim) { return tt::softmax(x, dim); }, "input"_a, "dim"_a = -1,
      "exp(x) / sum(exp(x)) along dim.");
}

}  // namespace tinytorch::python

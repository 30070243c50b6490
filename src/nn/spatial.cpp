// The seed's spatial layers: conv2d_naive, Conv2D, MaxPool2D, AvgPool2D, Flatten.
#include "tinytorch/spatial.hpp"

#include <cmath>

#include "ops/checks.hpp"
#include "tinytorch/errors.hpp"

namespace tinytorch {

Tensor conv2d_naive(const Tensor& input_arg, const Tensor& kernel_arg, std::optional<float> bias) {
  const Tensor input = ops::dense_float(input_arg);
  const Tensor kernel = ops::dense_float(kernel_arg);
  if (input.dim() != 2 && input.dim() != 3) {
    throw ShapeError("conv2d_naive: expected input of shape (height, width) or (channels, height, width), got " +
                     std::to_string(input.dim()) + "D");
  }
  if (kernel.dim() != 2) {
    throw ShapeError("conv2d_naive: expected a 2D kernel (kernel_height, kernel_width), got " +
                     std::to_string(kernel.dim()) + "D");
  }
  // Ensure the input has a channel dimension: (H, W) -> (1, H, W).
  const Tensor x = input.dim() == 2 ? input.reshape({1, input.size(0), input.size(1)}) : input;
  const int64_t channels = x.size(0), height = x.size(1), width = x.size(2);
  const int64_t kernel_height = kernel.size(0), kernel_width = kernel.size(1);
  if (kernel_height < 1 || kernel_width < 1 || kernel_height > height || kernel_width > width) {
    throw ShapeError("conv2d_naive: kernel " + std::to_string(kernel_height) + "x" + std::to_string(kernel_width) +
                     " does not fit the input " + std::to_string(height) + "x" + std::to_string(width));
  }

  // No padding, stride 1.
  const int64_t out_height = height - kernel_height + 1;
  const int64_t out_width = width - kernel_width + 1;
  Tensor output = Tensor::zeros({channels, out_height, out_width});

  // Slide the kernel across every channel; each output is the sum of the overlapping region
  // times the kernel.
  const float* in = x.data();
  const float* k = kernel.data();
  float* out = output.data_to_write();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < out_height; ++i) {
      for (int64_t j = 0; j < out_width; ++j) {
        double sum = 0.0;
        for (int64_t ki = 0; ki < kernel_height; ++ki) {
          for (int64_t kj = 0; kj < kernel_width; ++kj) {
            sum += static_cast<double>(in[(c * height + i + ki) * width + j + kj]) * k[ki * kernel_width + kj];
          }
        }
        if (bias) sum += *bias;
        out[(c * out_height + i) * out_width + j] = static_cast<float>(sum);
      }
    }
  }
  return output;
}

Conv2D::Conv2D(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride, Padding2d padding,
               Size2 dilation, int64_t groups, bool use_bias)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      options{stride, padding, dilation, groups} {
  if (in_channels < 1 || out_channels < 1) {
    throw ShapeError("Conv2D: in_channels and out_channels must be positive, got " + std::to_string(in_channels) +
                     " and " + std::to_string(out_channels));
  }
  ops::check_at_least("Conv2D", "kernel_size", kernel_size, 1);
  ops::check_at_least("Conv2D", "stride", stride, 1);
  ops::check_at_least("Conv2D", "dilation", dilation, 1);
  if (padding.mode == Padding2d::Mode::Explicit)
    ops::check_at_least("Conv2D", "padding", Size2{padding.h, padding.w}, 0);
  if (padding.mode == Padding2d::Mode::Same && (stride.h != 1 || stride.w != 1)) {
    throw ShapeError("Conv2D: padding='same' needs stride 1 (as in PyTorch), got stride " +
                     ops::pair_to_string(stride));
  }
  if (groups < 1 || in_channels % groups != 0 || out_channels % groups != 0) {
    throw ShapeError("Conv2D: groups=" + std::to_string(groups) + " must be positive and divide in_channels=" +
                     std::to_string(in_channels) + " and out_channels=" + std::to_string(out_channels));
  }
  // He-normal init, as the seed: std = sqrt(2 / fan_in), fan_in = C/groups * KH * KW.
  const int64_t fan_in = in_channels / groups * kernel_size.h * kernel_size.w;
  const float scale = std::sqrt(2.0f / static_cast<float>(fan_in));
  weight = Tensor::randn({out_channels, in_channels / groups, kernel_size.h, kernel_size.w});
  float* w = weight.data_to_write();
  for (int64_t i = 0; i < weight.numel(); ++i) w[i] *= scale;
  register_parameter("weight", &weight);
  if (use_bias) bias = Tensor::zeros({out_channels});
  register_parameter("bias", &bias);
}

Tensor Conv2D::forward(const Tensor& input) {
  // Snapshots: a concurrent replace_parameter cannot free or tear the tensors this call uses.
  const Tensor w = parameter_snapshot(weight), b = parameter_snapshot(bias);
  return conv2d(input, w, b, options);
}

std::string Conv2D::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                  ", kernel_size=" + ops::pair_to_string(kernel_size) +
                  ", stride=" + ops::pair_to_string(options.stride);
  const Padding2d& p = options.padding;
  if (p.mode != Padding2d::Mode::Explicit || p.h != 0 || p.w != 0) s += ", padding=" + p.to_string();
  if (options.dilation != Size2{1}) s += ", dilation=" + ops::pair_to_string(options.dilation);
  if (options.groups != 1) s += ", groups=" + std::to_string(options.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

MaxPool2D::MaxPool2D(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, Size2 dilation, bool ceil_mode)
    : options{kernel_size, stride, padding, dilation, ceil_mode} {
  // Validate now so a bad layer fails where it is built, not at its first call.
  ops::check_pool_options("MaxPool2D", kernel_size, stride.value_or(kernel_size), padding, dilation);
}

Tensor MaxPool2D::forward(const Tensor& input) { return max_pool2d(input, options); }

std::string MaxPool2D::extra_repr() const {
  return "kernel_size=" + ops::pair_to_string(options.kernel_size) +
         ", stride=" + ops::pair_to_string(options.stride.value_or(options.kernel_size)) +
         ", padding=" + ops::pair_to_string(options.padding) + ", dilation=" + ops::pair_to_string(options.dilation) +
         ", ceil_mode=" + (options.ceil_mode ? "True" : "False");
}

AvgPool2D::AvgPool2D(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, bool ceil_mode,
                     bool count_include_pad)
    : options{kernel_size, stride, padding, ceil_mode, count_include_pad} {
  ops::check_pool_options("AvgPool2D", kernel_size, stride.value_or(kernel_size), padding, Size2{1});
}

Tensor AvgPool2D::forward(const Tensor& input) { return avg_pool2d(input, options); }

std::string AvgPool2D::extra_repr() const {
  return "kernel_size=" + ops::pair_to_string(options.kernel_size) +
         ", stride=" + ops::pair_to_string(options.stride.value_or(options.kernel_size)) +
         ", padding=" + ops::pair_to_string(options.padding) + ", ceil_mode=" + (options.ceil_mode ? "True" : "False") +
         ", count_include_pad=" + (options.count_include_pad ? "True" : "False");
}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

}  // namespace tinytorch

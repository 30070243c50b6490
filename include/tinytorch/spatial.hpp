// The seed's spatial module (TinyTorch's tinytorch.core.spatial): conv2d_naive, Conv2D, MaxPool2D,
// flatten, plus AvgPool2D and Flatten, with PyTorch's options (stride, padding, dilation, groups,
// ceil_mode). Layers take (C, H, W) as the seed does, or (N, C, H, W) batches.
#pragma once

#include <optional>

#include "tinytorch/functional.hpp"
#include "tinytorch/module.hpp"

namespace tinytorch {

// The seed's teaching function, as plain loops: input (H, W) or (C, H, W), kernel (KH, KW),
// an optional scalar bias; valid cross-correlation of every channel with the one kernel.
// Returns (C, H - KH + 1, W - KW + 1).
Tensor conv2d_naive(const Tensor& input, const Tensor& kernel, std::optional<float> bias = std::nullopt);

class Conv2D : public Module {
 public:
  Conv2D(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Padding2d padding = 0,
         Size2 dilation = 1, int64_t groups = 1, bool bias = true);
  // (C, H, W) -> (OC, OH, OW); (N, C, H, W) -> (N, OC, OH, OW).
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Conv2D"; }
  std::string extra_repr() const override;

  const int64_t in_channels, out_channels;
  const Size2 kernel_size;
  const Conv2dOptions options;
  Tensor weight;  // [OC, C / groups, KH, KW], He-normal: std = sqrt(2 / fan_in) as the seed
  Tensor bias;    // [OC], zeros; undefined when bias = false
};

class MaxPool2D : public Module {
 public:
  explicit MaxPool2D(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                     Size2 dilation = 1, bool ceil_mode = false);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "MaxPool2D"; }
  std::string extra_repr() const override;
  const MaxPool2dOptions options;
};

class AvgPool2D : public Module {
 public:
  explicit AvgPool2D(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "AvgPool2D"; }
  std::string extra_repr() const override;
  const AvgPool2dOptions options;
};

// Merges dims start_dim..end_dim; the default keeps the batch dimension, as torch.nn.Flatten.
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override { return flatten(input, start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  const int64_t start_dim, end_dim;
};

}  // namespace tinytorch

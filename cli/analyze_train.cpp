// `tinytorch analyze --train`: the seed's memory question for training, answered by prediction
// and by measurement. For the default CNN at a batch size it predicts, per layer, what a training
// step keeps alive (activations the backward pass needs, parameters, gradients, Adam's state) and
// sets the total next to the measured peak of a real step; then what gradient checkpointing would
// save.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "analyses.hpp"
#include "json.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

struct Row {
  std::string name;
  Shape shape;
  int64_t output_bytes = 0;  // the layer's output, alive until backward (the next node holds it)
  int64_t saved_bytes = 0;   // what its backward node keeps besides inputs (indices, masks, x-hat)
  int64_t param_bytes = 0;
};

}  // namespace

int analyze_train(bool json, int64_t batch) {
  EnableGradGuard grad_on;  // run_analyze turns recording off; the measured step trains
  manual_seed(0);
  auto model = make_fashion_cnn();
  std::vector<Tensor> params = model->parameters();
  for (Tensor& p : params) p.set_requires_grad();
  Adam opt(params, 1e-3);

  // Shapes, layer by layer, from a no-grad forward pass.
  std::vector<Row> rows;
  const Tensor input = Tensor::randn({batch, 1, 28, 28});
  {
    NoGradGuard no_grad;
    Tensor x = input;
    for (size_t i = 0; i < model->size(); ++i) {
      Module& layer = (*model)[i];
      x = layer(x);
      Row r;
      r.name = std::to_string(i) + " " + layer.type_name();
      r.shape = x.shape();
      const int64_t bytes = x.numel() * 4;
      const std::string t = layer.type_name();
      r.output_bytes = t == "Flatten" ? 0 : bytes;          // a view
      if (t == "BatchNorm2d") r.saved_bytes = bytes;        // x-hat
      if (t == "MaxPool2D") r.saved_bytes = x.numel() * 8;  // winner indices, int64
      if (t == "Dropout") r.saved_bytes = bytes;            // the mask
      r.param_bytes = layer.num_parameters() * 4;
      rows.push_back(r);
    }
  }
  int64_t activations = input.numel() * 4 + batch * 10 * 4;  // the input, cross-entropy's softmax
  int64_t param_bytes = 0, largest_pair = 0, index_bytes = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].name.find("MaxPool2D") != std::string::npos) index_bytes += rows[i].saved_bytes;
    activations += rows[i].output_bytes + rows[i].saved_bytes;
    param_bytes += rows[i].param_bytes;
    const int64_t in_bytes = i ? rows[i - 1].output_bytes : input.numel() * 4;
    largest_pair = std::max(largest_pair, in_bytes + rows[i].output_bytes);  // dy and dx of one layer
  }
  const int64_t grads = param_bytes, adam = 2 * param_bytes;
  const int64_t predicted = activations + param_bytes + grads + adam + largest_pair;

  // Measure: one real step (after a warm-up step that creates Adam's state and the gradients).
  auto step = [&] {
    Tensor loss = cross_entropy((*model)(input), std::vector<int64_t>(static_cast<size_t>(batch), 3));
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  model->train();
  step();
  const MemoryStats before = memory_stats();
  reset_peak_memory();
  step();
  const MemoryStats after = memory_stats();
  const int64_t measured = after.peak_bytes;

  // Checkpointing at the two pool outputs and the flatten: keep those, recompute each segment's
  // inner activations (conv out, BN x-hat and out, ReLU out) during backward, one segment at a time.
  int64_t inner = 0, largest_segment = 0, segment = 0;
  for (const Row& r : rows) {
    const bool in_block = r.shape.size() == 4 &&
                          (r.name.find("Conv2D") != std::string::npos ||
                           r.name.find("BatchNorm2d") != std::string::npos || r.name.find("ReLU") != std::string::npos);
    if (in_block) {
      segment += r.output_bytes + r.saved_bytes;
      inner += r.output_bytes + r.saved_bytes;
    } else if (r.name.find("MaxPool2D") != std::string::npos) {
      largest_segment = std::max(largest_segment, segment);
      segment = 0;
    }
  }
  const int64_t checkpointed = predicted - inner + largest_segment;

  if (json) {
    Json js = {{"batch", batch}, {"layers", Json::array()}};
    for (const Row& r : rows) {
      js["layers"].push_back({{"name", r.name},
                              {"output_bytes", r.output_bytes},
                              {"saved_bytes", r.saved_bytes},
                              {"parameter_bytes", r.param_bytes}});
    }
    js["activation_bytes"] = activations;
    js["parameter_bytes"] = param_bytes;
    js["gradient_bytes"] = grads;
    js["optimizer_bytes"] = adam;
    js["transient_bytes"] = largest_pair;
    js["predicted_peak_bytes"] = predicted;
    js["measured_peak_bytes"] = measured;
    js["pool_index_bytes"] = index_bytes;
    js["checkpointed_peak_bytes"] = checkpointed;
    js["checkpointing_implemented"] = false;
    std::cout << json_text(js) << "\n";
    return 0;
  }
  std::printf("Training memory of the default CNN at batch %lld (float32, Adam)\n\n", (long long)batch);
  std::printf("  %-16s %-20s %12s %14s %12s\n", "layer", "output shape", "output MiB", "saved MiB", "params MiB");
  for (const Row& r : rows) {
    std::printf("  %-16s %-20s %12.3f %14.3f %12.3f\n", r.name.c_str(), shape_to_string(r.shape).c_str(),
                r.output_bytes / kMiB, r.saved_bytes / kMiB, r.param_bytes / kMiB);
  }
  std::printf(
      "\n  activations kept for backward %8.2f MiB  (every layer's output, plus batch norm's x-hat, the\n"
      "                                           pools' int64 indices, dropout's mask, the input, softmax)\n"
      "  parameters                     %8.2f MiB\n"
      "  gradients                      %8.2f MiB\n"
      "  Adam's two moments             %8.2f MiB\n"
      "  transient gradients (dy + dx)  %8.2f MiB  (the largest layer's, during backward)\n"
      "  predicted peak                 %8.2f MiB  (%.2f MiB of it tensors, %.2f MiB the pools' indices)\n"
      "  measured peak of a real step   %8.2f MiB  (tensor storage only; %.2f MiB live between steps)\n",
      activations / kMiB, param_bytes / kMiB, grads / kMiB, adam / kMiB, largest_pair / kMiB, predicted / kMiB,
      (predicted - index_bytes) / kMiB, index_bytes / kMiB, measured / kMiB, before.current_bytes / kMiB);
  std::printf(
      "\nGradient checkpointing (keep only the pool outputs; recompute conv, batch norm and ReLU of one\n"
      "block at a time during backward, about one extra forward pass, ~30%% more compute) would bring the\n"
      "peak to about %.2f MiB, saving %.2f MiB (%.0f%%). tinytorch does not implement it: at this model's\n"
      "size activations are small next to what fits in memory, so the extra compute would buy nothing.\n",
      checkpointed / kMiB, (predicted - checkpointed) / kMiB, 100.0 * (predicted - checkpointed) / predicted);
  return 0;
}

}  // namespace tinytorch::cli

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

// What a training step keeps alive, predicted from the rows, and the measured peak.
struct TrainMemory {
  int64_t batch = 0;
  std::vector<Row> rows;
  int64_t activations = 0, param_bytes = 0, grads = 0, adam = 0, largest_pair = 0, index_bytes = 0;
  int64_t predicted = 0, measured = 0, live_between_steps = 0, checkpointed = 0;
};

// Each layer's output shape and what its backward keeps, from a no-grad forward pass.
std::vector<Row> layer_rows(Sequential& model, const Tensor& input) {
  std::vector<Row> rows;
  NoGradGuard no_grad;
  Tensor x = input;
  for (size_t i = 0; i < model.size(); ++i) {
    Module& layer = model[i];
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
  return rows;
}

void predict(TrainMemory& m, const Tensor& input) {
  m.activations = input.numel() * 4 + m.batch * 10 * 4;  // the input, cross-entropy's softmax
  for (size_t i = 0; i < m.rows.size(); ++i) {
    const Row& r = m.rows[i];
    if (r.name.find("MaxPool2D") != std::string::npos) m.index_bytes += r.saved_bytes;
    m.activations += r.output_bytes + r.saved_bytes;
    m.param_bytes += r.param_bytes;
    const int64_t in_bytes = i ? m.rows[i - 1].output_bytes : input.numel() * 4;
    m.largest_pair = std::max(m.largest_pair, in_bytes + r.output_bytes);  // dy and dx of one layer
  }
  m.grads = m.param_bytes;
  m.adam = 2 * m.param_bytes;
  m.predicted = m.activations + m.param_bytes + m.grads + m.adam + m.largest_pair;
  // Checkpointing at the two pool outputs and the flatten: keep those, recompute each segment's
  // inner activations (conv out, BN x-hat and out, ReLU out) during backward, one segment at a time.
  int64_t inner = 0, largest_segment = 0, segment = 0;
  for (const Row& r : m.rows) {
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
  m.checkpointed = m.predicted - inner + largest_segment;
}

// One real step's peak, after a warm-up step that creates Adam's state and the gradients.
void measure(TrainMemory& m, Sequential& model, Adam& opt, const Tensor& input) {
  auto step = [&] {
    Tensor loss = cross_entropy(model(input), std::vector<int64_t>(static_cast<size_t>(m.batch), 3));
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  model.train();
  step();
  m.live_between_steps = memory_stats().current_bytes;
  reset_peak_memory();
  step();
  m.measured = memory_stats().peak_bytes;
}

void print_json(const TrainMemory& m) {
  Json js = {{"batch", m.batch}, {"layers", Json::array()}};
  for (const Row& r : m.rows) {
    js["layers"].push_back({{"name", r.name},
                            {"output_bytes", r.output_bytes},
                            {"saved_bytes", r.saved_bytes},
                            {"parameter_bytes", r.param_bytes}});
  }
  js["activation_bytes"] = m.activations;
  js["parameter_bytes"] = m.param_bytes;
  js["gradient_bytes"] = m.grads;
  js["optimizer_bytes"] = m.adam;
  js["transient_bytes"] = m.largest_pair;
  js["predicted_peak_bytes"] = m.predicted;
  js["measured_peak_bytes"] = m.measured;
  js["pool_index_bytes"] = m.index_bytes;
  js["checkpointed_peak_bytes"] = m.checkpointed;
  js["checkpointing_implemented"] = false;
  std::cout << json_text(js) << "\n";
}

void print_table(const TrainMemory& m) {
  std::printf("Training memory of the default CNN at batch %lld (float32, Adam)\n\n", (long long)m.batch);
  std::printf("  %-16s %-20s %12s %14s %12s\n", "layer", "output shape", "output MiB", "saved MiB", "params MiB");
  for (const Row& r : m.rows) {
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
      m.activations / kMiB, m.param_bytes / kMiB, m.grads / kMiB, m.adam / kMiB, m.largest_pair / kMiB,
      m.predicted / kMiB, (m.predicted - m.index_bytes) / kMiB, m.index_bytes / kMiB, m.measured / kMiB,
      m.live_between_steps / kMiB);
  std::printf(
      "\nGradient checkpointing (keep only the pool outputs; recompute conv, batch norm and ReLU of one\n"
      "block at a time during backward, about one extra forward pass, ~30%% more compute) would bring the\n"
      "peak to about %.2f MiB, saving %.2f MiB (%.0f%%). tinytorch does not implement it: at this model's\n"
      "size activations are small next to what fits in memory, so the extra compute would buy nothing.\n",
      m.checkpointed / kMiB, (m.predicted - m.checkpointed) / kMiB,
      100.0 * (m.predicted - m.checkpointed) / m.predicted);
}

}  // namespace

int analyze_train(bool json, int64_t batch) {
  EnableGradGuard grad_on;  // run_analyze turns recording off; the measured step trains
  manual_seed(0);
  auto model = make_fashion_cnn();
  std::vector<Tensor> params = model->parameters();
  for (Tensor& p : params) p.set_requires_grad();
  Adam opt(params, 1e-3);
  const Tensor input = Tensor::randn({batch, 1, 28, 28});
  TrainMemory m;
  m.batch = batch;
  m.rows = layer_rows(*model, input);
  predict(m, input);
  measure(m, *model, opt, input);
  json ? print_json(m) : print_table(m);
  return 0;
}

}  // namespace tinytorch::cli

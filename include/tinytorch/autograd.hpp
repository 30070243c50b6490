// Reverse-mode automatic differentiation.
//
// Every differentiable op, when grad mode is on and one of its inputs requires grad, attaches a
// Node to its output: the output's grad_fn. A Node keeps the input tensors (which keep their own
// grad_fn, and so the whole graph alive) and whatever it saved from the forward pass, and turns
// the gradient of its output into gradients of its inputs. Tensor::backward() walks the graph
// from the root in reverse topological order, sums gradients where a tensor feeds several ops,
// accumulates them into the leaves' .grad (as PyTorch does), and then frees the graph.
//
// Every gradient rule lives next to its op's forward (src/ops/*.cpp), and each has a
// central-difference check and a PyTorch cross-check in the tests. How ops record themselves
// (a tensor's autograd record, attach_grad_fn) is internal: src/core/autograd_internal.hpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

// While one exists (on this thread), ops record no graph: inference and optimizer updates.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// The reverse, inside a NoGradGuard's scope: ops record again while it exists.
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

bool is_grad_enabled();

namespace autograd {

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // grad_output has the output's shape; returns one gradient per input, in the order of
  // `inputs` (undefined where an input needs none).
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  // Drops everything saved for backward (called once backward has run through this node).
  virtual void release() {}

  std::vector<Tensor> inputs;  // what the output was computed from
  bool released = false;
};

}  // namespace autograd

}  // namespace tinytorch

// The autograd internals the ops use and users do not: a tensor's autograd record and the call
// that makes a Node its grad_fn. The public side (Node, NoGradGuard, backward) is
// include/tinytorch/autograd.hpp.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>

#include "tinytorch/autograd.hpp"

namespace tinytorch {
namespace autograd {

struct Meta {
  bool requires_grad = false;  // a leaf asked for its gradient
  Tensor grad;                 // a leaf's accumulated gradient
  std::shared_ptr<Node> grad_fn;
};

// True if grad mode is on and any of the (defined) tensors requires grad: the op must record.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Called on the thread running backward() each time a gradient has been added into a leaf's
// .grad (once per use of the leaf in the graph): data parallelism starts reducing a bucket of
// gradients as soon as its last one is in. One per thread; an empty function removes it.
void set_leaf_hook(std::function<void(const Tensor& leaf)> hook);

}  // namespace autograd

// Makes `node` the grad_fn of `output` (which then requires grad). The node's inputs must be set.
void attach_grad_fn(Tensor& output, std::shared_ptr<autograd::Node> node);

}  // namespace tinytorch

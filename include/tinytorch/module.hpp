// Module: the base of every layer. Holds named parameters and child modules, and a train/eval
// flag, like torch.nn.Module.
//
// A module registers its parameter members by address (register_parameter("weight", &weight)),
// so `conv.weight` is the parameter itself; modules therefore cannot be copied or moved. Share
// them through std::shared_ptr, as Sequential does.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  virtual Tensor forward(const Tensor& input) = 0;
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Parameters of this module and its children, depth first; children's names are prefixed
  // ("0.weight"). Undefined parameters (an absent bias) are skipped. recurse = false: only this
  // module's own.
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters() const;
  // Buffers: state that is saved with the model but not trained (BatchNorm's running statistics).
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  int64_t num_parameters() const;  // total elements
  const std::vector<std::pair<std::string, Module*>>& named_children() const { return children_; }

  void train(bool mode = true);  // also sets every child
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Replaces this module's own parameter `name` ("weight") by a tensor of the same shape (as a
  // float32 leaf that requires grad, like the parameter it replaces; a computed tensor is detached
  // first, sharing its memory). Safe
  // while another thread runs forward(): a call sees the old tensor or the new one whole, and
  // the one it took stays alive until it returns. ArgumentError for an unknown name, a
  // parameter the layer was built without, or another shape.
  void replace_parameter(const std::string& name, Tensor value);
  // Whether `other` is this module or among its descendants (a cycle if it were added below it).
  bool contains(const Module* other) const;

  virtual std::string type_name() const = 0;             // "Conv2D"
  virtual std::string extra_repr() const { return ""; }  // "3, 16, kernel_size=(3, 3)"
  std::string repr() const;                              // PyTorch-style, with children

 protected:
  void register_parameter(std::string name, Tensor* slot);
  void register_module(std::string name, Module* child);  // not owned: the subclass keeps it
  void register_buffer(std::string name, Tensor* slot);
  // A copy of a parameter slot taken under the module's lock: forward() holds it for its call.
  Tensor parameter_snapshot(const Tensor& slot) const;

 private:
  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
  mutable std::mutex parameter_mutex_;  // guards the parameter slots against replace_parameter
};

// Runs its children in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  Sequential& add(std::shared_ptr<Module> module);
  template <class M, class... Args>
  M& emplace(Args&&... args) {
    auto m = std::make_shared<M>(std::forward<Args>(args)...);
    M& ref = *m;
    add(std::move(m));
    return ref;
  }
  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const;
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace tinytorch

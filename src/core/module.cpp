// Module bookkeeping (parameters, children, train/eval, repr) and Sequential.
#include "tinytorch/module.hpp"

#include <stdexcept>

#include "tinytorch/errors.hpp"

namespace tinytorch {

// Parameters require gradients from the start, as torch.nn's do; inference runs under NoGradGuard.
void Module::register_parameter(std::string name, Tensor* slot) {
  if (slot->defined() && !slot->requires_grad()) slot->set_requires_grad(true);
  params_.emplace_back(std::move(name), slot);
}

void Module::register_buffer(std::string name, Tensor* slot) { buffers_.emplace_back(std::move(name), slot); }

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, slot] : buffers_)
    if (slot->defined()) out.emplace_back(name, *slot);
  for (const auto& [prefix, child] : children_)
    for (auto& [name, t] : child->named_buffers()) out.emplace_back(prefix + "." + name, t);
  return out;
}

Tensor Module::parameter_snapshot(const Tensor& slot) const {
  std::lock_guard<std::mutex> lock(parameter_mutex_);
  return slot;
}

void Module::replace_parameter(const std::string& name, Tensor value) {
  for (auto& [n, slot] : params_) {
    if (n != name) continue;
    if (!slot->defined()) throw ArgumentError(type_name() + "." + name + ": this layer was built without it");
    if (!value.defined() || value.shape() != slot->shape()) {
      throw ArgumentError(type_name() + "." + name + ": expected shape " + shape_to_string(slot->shape()) + ", got " +
                          (value.defined() ? shape_to_string(value.shape()) : "an undefined tensor"));
    }
    if (value.dtype() != DType::Float32) value = value.to(DType::Float32);
    // The new tensor is the parameter: a leaf that requires grad like the one it replaces.
    if (slot->requires_grad() && !(value.requires_grad() && value.grad_fn() == nullptr)) {
      value = value.detach();
      value.set_requires_grad(true);
    }
    std::lock_guard<std::mutex> lock(parameter_mutex_);
    *slot = std::move(value);
    return;
  }
  throw ArgumentError(type_name() + ": has no parameter '" + name + "'");
}

bool Module::contains(const Module* other) const {
  if (other == this) return true;
  for (const auto& [name, child] : children_)
    if (child->contains(other)) return true;
  return false;
}

void Module::register_module(std::string name, Module* child) { children_.emplace_back(std::move(name), child); }

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, slot] : params_) {
    if (slot->defined()) out.emplace_back(name, *slot);
  }
  if (!recurse) return out;
  for (const auto& [prefix, child] : children_) {
    for (auto& [name, t] : child->named_parameters()) out.emplace_back(prefix + "." + name, t);
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool mode) {
  training_ = mode;
  for (auto& [name, child] : children_) child->train(mode);
}

std::string Module::repr() const {
  std::string s = type_name() + "(" + extra_repr();
  if (children_.empty()) return s + ")";
  s += "\n";
  for (const auto& [name, child] : children_) {
    std::string body = child->repr();
    // Indent nested lines by two spaces.
    for (size_t p = body.find('\n'); p != std::string::npos; p = body.find('\n', p + 1)) body.insert(p + 1, "  ");
    s += "  (" + name + "): " + body + "\n";
  }
  return s + ")";
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) add(m);
}

Sequential& Sequential::add(std::shared_ptr<Module> module) {
  if (!module) throw ArgumentError("Sequential::add: module is null");
  if (module->contains(this)) {
    throw ArgumentError("Sequential::add: the module is this Sequential or holds it: adding it would make a cycle");
  }
  register_module(std::to_string(modules_.size()), module.get());
  modules_.push_back(std::move(module));
  return *this;
}

Module& Sequential::operator[](size_t i) const {
  if (i >= modules_.size()) {
    throw IndexError("Sequential: index " + std::to_string(i) + " is out of range for " +
                     std::to_string(modules_.size()) + " modules");
  }
  return *modules_[i];
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& m : modules_) x = m->forward(x);
  return x;
}

}  // namespace tinytorch

// Training: optimizers and schedules; datasets, the DataLoader and checkpoints.
#include "bindings.hpp"

namespace tinytorch::python {

void bind_optim(py::module_& m) {
  py::class_<tt::Optimizer>(m, "Optimizer", "The base of the optimizers: step(), zero_grad(), lr, steps.")
      .def("step", &tt::Optimizer::step, release_gil())
      .def("zero_grad", &tt::Optimizer::zero_grad)
      .def_property("lr", &tt::Optimizer::lr, &tt::Optimizer::set_lr)
      .def_property_readonly("steps", &tt::Optimizer::steps);
  py::class_<tt::SGD, tt::Optimizer>(m, "SGD", "SGD(params, lr, momentum=0, weight_decay=0, nesterov=False)")
      .def(py::init<std::vector<tt::Tensor>, double, double, double, bool>(), "params"_a, "lr"_a, "momentum"_a = 0.0,
           "weight_decay"_a = 0.0, "nesterov"_a = false);
  py::class_<tt::Adam, tt::Optimizer>(m, "Adam", "Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)")
      .def(py::init([](std::vector<tt::Tensor> params, double lr, std::pair<double, double> betas, double eps,
                       double weight_decay) {
             return new tt::Adam(std::move(params), lr, betas.first, betas.second, eps, weight_decay, false);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8, "weight_decay"_a = 0.0);
  py::class_<tt::AdamW, tt::Adam>(m, "AdamW", "AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)")
      .def(py::init([](std::vector<tt::Tensor> params, double lr, std::pair<double, double> betas, double eps,
                       double weight_decay) {
             return new tt::AdamW(std::move(params), lr, betas.first, betas.second, eps, weight_decay);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8, "weight_decay"_a = 1e-2);
  m.def("cosine_lr", &tt::cosine_lr, "base_lr"_a, "epoch"_a, "epochs"_a, "min_lr"_a = 0.0,
        "The learning rate of an epoch on a half cosine from base_lr (epoch 0) down to min_lr.");
  m.def("step_lr", &tt::step_lr, "base_lr"_a, "epoch"_a, "step_size"_a, "gamma"_a,
        "base_lr * gamma ** (epoch // step_size).");
}

void bind_data(py::module_& m) {
  py::class_<tt::Dataset>(m, "Dataset",
                          "Images (N, 1, H, W) float32 and int64 labels (N,), as load_mnist_folder reads them.")
      .def_readonly("images", &tt::Dataset::images)
      .def_property_readonly(
          "labels",
          [](const tt::Dataset& d) { return tt::Tensor::int64({static_cast<int64_t>(d.labels.size())}, d.labels); })
      .def("__len__", &tt::Dataset::size);
  m.def("load_mnist_folder", &tt::load_mnist_folder, "folder"_a = "/usr/share/datasets/fashion-mnist", "train"_a = true,
        "limit"_a = 0, "mean"_a = 0.2860f, "std"_a = 0.3530f, release_gil(),
        "Reads an MNIST-format folder (the four IDX files, gzipped or not) into a Dataset, normalised.");
  m.def(
      "_gather_rows",
      [](const std::vector<tt::Tensor>& tensors, const tt::Tensor& rows) {
        py::gil_scoped_release release;  // a DataLoader prefetches the next batch while Python trains
        std::vector<tt::Tensor> out;
        for (const tt::Tensor& t : tensors) out.push_back(tt::index(t, {rows}));
        return out;
      },
      "tensors"_a, "rows"_a, "The rows `rows` (int64) of each tensor, gathered in C++ without the GIL.");
  py::class_<tt::DataLoader>(m, "_MnistLoader",
                             "The C++ batcher of `tinytorch train` (with crop and flip augmentation).")
      .def(py::init<const tt::Dataset&, int64_t, bool, uint64_t, int64_t, bool>(), "dataset"_a, "batch_size"_a,
           "shuffle"_a = true, "seed"_a = 0, "crop_padding"_a = 0, "flip"_a = false, py::keep_alive<1, 2>())
      .def("__len__", &tt::DataLoader::batches)
      .def("start_epoch", &tt::DataLoader::start_epoch, "epoch"_a)
      .def(
          "batch",
          [](const tt::DataLoader& loader, int64_t index) {
            std::pair<tt::Tensor, std::vector<int64_t>> b;
            {
              py::gil_scoped_release release;
              b = loader.batch(index);
            }
            return py::make_tuple(b.first, tt::Tensor::int64({static_cast<int64_t>(b.second.size())}, b.second));
          },
          "index"_a);

  // The module's state comes as (name, Tensor) pairs gathered in Python (tinytorch/serialization.py),
  // so a Python subclass's attributes are saved and loaded like a C++ layer's.
  m.def(
      "_save_checkpoint",
      [](const std::string& path, const tt::NamedTensors& state, const tt::Optimizer* opt,
         std::map<std::string, std::string> metadata) {
        py::gil_scoped_release release;
        tt::save_checkpoint(path, state, opt, std::move(metadata));
      },
      "path"_a, "state"_a, "optimizer"_a = nullptr, "metadata"_a = std::map<std::string, std::string>{});
  m.def(
      "_load_checkpoint",
      [](const std::string& path, const tt::NamedTensors& state, tt::Optimizer* opt, bool strict) {
        py::gil_scoped_release release;
        return tt::load_checkpoint(path, state, opt, strict);
      },
      "path"_a, "state"_a, "optimizer"_a = nullptr, "strict"_a = true);
  m.def(
      "_save_safetensors",
      [](const std::string& path, const tt::NamedTensors& tensors, std::map<std::string, std::string> metadata) {
        py::gil_scoped_release release;
        tt::save_safetensors(path, tt::SafeTensors{tensors, std::move(metadata)});
      },
      "path"_a, "tensors"_a, "metadata"_a = std::map<std::string, std::string>{});
  m.def(
      "_load_safetensors",
      [](const std::string& path) {
        tt::SafeTensors c;
        {
          py::gil_scoped_release release;
          c = tt::load_safetensors(path);
        }
        return py::make_tuple(c.tensors, c.metadata);
      },
      "path"_a);
  m.def(
      "_write_file_atomic",
      [](const std::string& path, const py::bytes& contents) {
        const std::string data = contents;
        py::gil_scoped_release release;
        tt::write_file_atomic(path, data);
      },
      "path"_a, "contents"_a);
  py::register_exception<tt::DataError>(m, "DataError", PyExc_ValueError);
}

}  // namespace tinytorch::python

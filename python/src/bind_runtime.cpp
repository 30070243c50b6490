// Runtime and backend settings: threads, the FMA peak, conv2d algorithm choice, the weight cache.
#include "bindings.hpp"

namespace tinytorch::python {

void bind_runtime(py::module_& m) {
  m.def(
      "set_num_threads", [](py::handle n) { tt::set_num_threads(thread_count(n, "set_num_threads")); }, "n"_a,
      "Threads for tinytorch's kernels, 1 to 1024.");
  m.def("get_num_threads", &tt::get_num_threads, "The number of threads tinytorch's kernels run on.");
  m.def(
      "measure_fma_peak_gflops",
      [](py::handle threads, double seconds) {
        const int n = thread_count(threads, "measure_fma_peak_gflops");
        py::gil_scoped_release release;
        return tt::measure_fma_peak_gflops(n, seconds);
      },
      "threads"_a, "seconds"_a = 0.2, "This machine's FP32 FMA peak on `threads` threads, measured.");
  m.def("peak_isa", &tt::peak_isa);
  m.def(
      "set_conv2d_algorithm",
      [](const std::string& name) { tt::set_conv2d_algorithm(tt::conv2d_algorithm_from_string(name)); }, "name"_a,
      "Force a conv2d algorithm ('auto' restores the heuristic).");
  m.def("get_conv2d_algorithm", [] { return tt::to_string(tt::get_conv2d_algorithm()); });
  m.def("set_conv2d_autotune", &tt::set_conv2d_autotune, "enabled"_a,
        "Time the algorithms on each new shape and keep the fastest (like torch.backends.cudnn.benchmark).");
  m.def("get_conv2d_autotune", &tt::get_conv2d_autotune);
  m.def("clear_conv2d_autotune_cache", &tt::clear_conv2d_autotune_cache);
  m.def("conv2d_autotune_cache_size", &tt::conv2d_autotune_cache_size, "Shapes tuned so far.");
  m.def("set_weight_cache_bytes", &tt::set_weight_cache_bytes, "bytes"_a,
        "Budget for prepared weights kept between calls (0 turns the cache off).");
  m.def("get_weight_cache_bytes", &tt::get_weight_cache_bytes);
  m.def("weight_cache_held_bytes", &tt::weight_cache_held_bytes, "Bytes the weight cache holds now.");
  m.def("clear_weight_cache", &tt::clear_weight_cache);
  m.def("conv2d_algorithms", [] {
    std::vector<std::string> names;
    for (auto a : tt::all_conv2d_algorithms()) names.push_back(tt::to_string(a));
    return names;
  });
  m.def(
      "select_conv2d_algorithm",
      [](const tt::Shape& input, const tt::Shape& weight, py::handle stride, py::handle padding, py::handle dilation,
         int64_t groups) {
        const tt::Conv2dOptions o{to_size2(stride, "stride"), to_padding(padding), to_size2(dilation, "dilation"),
                                  groups};
        return tt::to_string(tt::select_conv2d_algorithm(input, weight, o));
      },
      "input_shape"_a, "weight_shape"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
  m.def("manual_seed", &tt::manual_seed, "seed"_a, "Seeds the generator behind weight init and randn/rand.");
}

}  // namespace tinytorch::python

#include <tinytorch/tinytorch.hpp>
namespace tt = tinytorch;
int main() {
  tt::Tensor x = tt::Tensor::randn({3, 28, 28});
  tt::Conv2D conv(3, 16, 3);
  tt::MaxPool2D pool(2);
  tt::Linear fc(16 * 13 * 13, 10);
  tt::Tensor y = fc(tt::flatten(pool(conv(x))));
  return y.shape() == std::vector<int64_t>{10} ? 0 : 1;
}

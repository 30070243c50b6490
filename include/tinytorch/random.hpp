// Seedable random numbers for weight init and the randn/rand factories.
//
// xoshiro256** seeded through splitmix64, with Box-Muller normals: the same seed gives the same
// numbers on every platform and compiler (std::normal_distribution does not promise that).
#pragma once

#include <cstdint>
#include <string>

namespace tinytorch {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed);
  void seed(uint64_t seed);
  uint64_t next_u64();
  float uniform();  // [0, 1)
  float normal();   // mean 0, std 1

  // The whole state as text (the four state words and the cached Box-Muller normal, exactly),
  // for checkpoints; set_state() takes it back or throws DataError on anything malformed.
  std::string state() const;
  void set_state(const std::string& text);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The generator used when none is passed (layer init, Tensor::randn without a generator).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace tinytorch

// Generator: xoshiro256** (Blackman & Vigna) seeded with splitmix64; normals by Box-Muller.
#include "tinytorch/random.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tinytorch/errors.hpp"

namespace tinytorch {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Generator::Generator(uint64_t seed) { this->seed(seed); }

void Generator::seed(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
  has_spare_ = false;
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform() {
  // The top 24 bits give every float in [0, 1) on a 2^-24 grid, never 1.0.
  return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f;
}

float Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return static_cast<float>(spare_);
  }
  // u1 in (0, 1] so log(u1) is finite.
  const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return static_cast<float>(r * std::cos(theta));
}

std::string Generator::state() const {
  uint64_t spare_bits = 0;  // a spare that was used up is not state: written as 0
  if (has_spare_) std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %d %016" PRIx64, s_[0],
                s_[1], s_[2], s_[3], has_spare_ ? 1 : 0, spare_bits);
  return buf;
}

void Generator::set_state(const std::string& text) {
  // Six fields: four 16-digit hex words, 0 or 1, and the spare normal's bits in hex.
  uint64_t words[5];
  int spare_flag = -1, consumed = 0;
  const bool parsed =
      text.size() == 86 &&
      std::sscanf(text.c_str(), "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %1d %16" SCNx64 "%n",
                  &words[0], &words[1], &words[2], &words[3], &spare_flag, &words[4], &consumed) == 6 &&
      consumed == 86 && (spare_flag == 0 || spare_flag == 1);
  if (!parsed)
    throw DataError("random generator state: expected 4 hex words, 0 or 1 and a hex word, got '" + text + "'");
  if ((words[0] | words[1] | words[2] | words[3]) == 0) {
    throw DataError("random generator state: all-zero state words (xoshiro256** never leaves that state)");
  }
  double spare;
  std::memcpy(&spare, &words[4], sizeof spare);
  if (spare_flag == 1 && !std::isfinite(spare))
    throw DataError("random generator state: the cached normal is not finite");
  for (int i = 0; i < 4; ++i) s_[i] = words[i];
  has_spare_ = spare_flag == 1;
  spare_ = spare_flag == 1 ? spare : 0.0;
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().seed(seed); }

}  // namespace tinytorch

// The packed GEMM micro-kernels called directly, through a tester in the manner of XNNPACK's
// gemm-microkernel-tester: chained setters describe one call (tile rows and columns, depth, output
// stride, store mode, bias), test() builds packed panels, computes the naive answer in double
// inline, runs the kernel of this process's ISA and names the first failing row and column with
// the whole case. The sweeps vary every dimension over its edges and primes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/contract.hpp"
#include "kernels/cpu.hpp"
#include "kernels/gemm/gemm_packed.hpp"
#include "tinytorch/perf.hpp"

namespace k = tinytorch::kernels;

namespace {

class GemmMicroTester {
 public:
  GemmMicroTester& rows(int v) { return rows_ = v, *this; }
  GemmMicroTester& cols(int v) { return cols_ = v, *this; }
  GemmMicroTester& kc(int64_t v) { return kc_ = v, *this; }
  GemmMicroTester& ldc_extra(int64_t v) { return ldc_extra_ = v, *this; }
  GemmMicroTester& store(k::Store v) { return store_ = v, *this; }
  GemmMicroTester& bias(bool v) { return bias_ = v, *this; }
  GemmMicroTester& direct(bool v) { return direct_ = v, *this; }
  // A read as the rows of a row-major matrix [rows][kc + 5] (lda > 0) instead of a packed panel:
  // exactly `rows` rows allocated (the sanitizers see a read past them), the result the packed
  // panel's bit for bit.
  GemmMicroTester& weight_rows(bool v) { return weight_rows_ = v, *this; }
  // The rows' stride past kc (default 5); a stride of a multiple of 1024 floats takes tiles of at
  // most as many rows as L1 has ways (tile.hpp, tile_height), which l1_ways sets for the test (0:
  // this machine's).
  GemmMicroTester& lda(int64_t v) { return lda_ = v, *this; }
  GemmMicroTester& l1_ways(int v) { return l1_ways_ = v, *this; }

  std::string describe() const {
    std::ostringstream s;
    s << (direct_ ? "direct_micro" : "gemm_micro") << " (" << tile_.isa << " " << tile_.mr << "x" << tile_.nr
      << "): rows " << rows_ << " cols " << cols_ << " kc " << kc_ << " ldc " << cols_ + ldc_extra_ << " store "
      << (store_ == k::Store::Write        ? "write"
          : store_ == k::Store::Accumulate ? "accumulate"
                                           : "stream")
      << (bias_ ? " bias" : "") << (weight_rows_ ? " A in rows, lda " + std::to_string(row_stride()) : "")
      << (l1_ways_ ? ", L1 of " + std::to_string(l1_ways_) + " ways" : "");
    return s.str();
  }

  void test() const {
    k::set_l1d_ways(l1_ways_);
    struct MachineWaysAfter {
      ~MachineWaysAfter() { k::set_l1d_ways(0); }
    } restore;
    const int MR = tile_.mr, NR = tile_.nr;
    const int64_t ldc = cols_ + ldc_extra_;
    std::mt19937 rng(static_cast<unsigned>(rows_ * 131 + cols_ * 17 + kc_));
    std::normal_distribution<float> normal;
    // Packed panels: a [kc][MR] (zero rows past `rows`), b [kc][NR] (zero columns past `cols`).
    std::vector<float> a(static_cast<size_t>(kc_ * MR + 1)), b(static_cast<size_t>(kc_ * NR + NR));
    for (int64_t p = 0; p < kc_; ++p)
      for (int r = 0; r < MR; ++r) a[p * MR + r] = r < rows_ ? normal(rng) : 0.0f;
    for (int64_t p = 0; p < kc_; ++p)
      for (int c = 0; c < NR; ++c) b[p * NR + c] = c < cols_ ? normal(rng) : 0.0f;
    std::vector<float> bias(static_cast<size_t>(MR));
    for (float& v : bias) v = normal(rng);
    // The output with guard values around the tile: everything outside [rows, cols] must stay.
    const float guard = 12345.0f;
    std::vector<float> c(static_cast<size_t>(MR * ldc), guard), before;
    for (int r = 0; r < rows_; ++r)
      for (int j = 0; j < cols_; ++j) c[r * ldc + j] = store_ == k::Store::Accumulate ? normal(rng) : guard;
    before = c;
    const float* bias_ptr = bias_ ? bias.data() : nullptr;
    const int64_t lda = row_stride();
    std::vector<float> a_rows(static_cast<size_t>(rows_ * lda));
    for (int r = 0; r < rows_; ++r)
      for (int64_t p = 0; p < kc_; ++p) a_rows[r * lda + p] = a[p * MR + r];
    // B read in place by the direct kernel: row p of the tile is the NR floats at base + offset[p].
    std::vector<int64_t> offset(static_cast<size_t>(kc_));
    for (int64_t p = 0; p < kc_; ++p) offset[p] = p * NR;
    auto run = [&](std::vector<float>& out, bool rows) {
      const float* a_ptr = rows ? a_rows.data() : a.data();
      const int64_t a_ld = rows ? lda : 0;
      if (direct_) {
        k::direct_micro(kc_, a_ptr, b.data(), offset.data(), out.data(), ldc, rows_, cols_, store_, bias_ptr, a_ld);
      } else {
        k::gemm_micro(kc_, a_ptr, b.data(), out.data(), ldc, rows_, cols_, store_, bias_ptr, a_ld);
      }
      if (store_ == k::Store::Stream) k::stream_fence();
    };
    run(c, weight_rows_);
    if (weight_rows_) {
      std::vector<float> packed = before;
      run(packed, false);
      for (size_t i = 0; i < c.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(c[i]), std::bit_cast<uint32_t>(packed[i]))
            << describe() << ": not the packed panel's result at " << i;
      }
    }
    for (int r = 0; r < MR; ++r) {
      for (int64_t j = 0; j < ldc; ++j) {
        const size_t at = static_cast<size_t>(r * ldc + j);
        if (r >= rows_ || j >= cols_) {
          ASSERT_EQ(c[at], before[at]) << describe() << ": wrote outside the tile at row " << r << ", col " << j;
          continue;
        }
        double want = store_ == k::Store::Accumulate ? before[at] : (bias_ ? bias[r] : 0.0);
        double magnitude = std::fabs(want);
        for (int64_t p = 0; p < kc_; ++p) {
          want += static_cast<double>(a[p * MR + r]) * b[p * NR + j];
          magnitude += std::fabs(static_cast<double>(a[p * MR + r]) * b[p * NR + j]);
        }
        // A float32 sum of kc + 1 terms (and the bias or the old value): (kc + 3) u sum|terms|.
        const double bound = (kc_ + 3) * 0x1p-24 * magnitude + 1e-30;
        ASSERT_LE(std::fabs(c[at] - want), bound)
            << describe() << ": row " << r << ", col " << j << ": got " << c[at] << ", want " << want;
      }
    }
  }

 private:
  int64_t row_stride() const { return lda_ ? lda_ : kc_ + 5; }

  const k::GemmTile& tile_ = k::packed_gemm_tile();
  int rows_ = 1, cols_ = 1;
  int64_t kc_ = 1, ldc_extra_ = 0, lda_ = 0;
  int l1_ways_ = 0;
  k::Store store_ = k::Store::Write;
  bool bias_ = false, direct_ = false, weight_rows_ = false;
};

const int64_t kDepths[] = {0, 1, 2, 3, 5, 7, 8, 11, 13, 16, 17, 31, 32, 33, 64, 127};

}  // namespace

TEST(MicroKernels, GemmEveryTileShapeDepthAndStore) {
  const k::GemmTile& tile = k::packed_gemm_tile();
  std::cout << "  micro-kernel under test: " << tile.isa << " " << tile.mr << "x" << tile.nr << "\n";
  for (int rows = 1; rows <= tile.mr; ++rows)
    for (int cols = 1; cols <= tile.nr; ++cols)
      for (int64_t kc : kDepths)
        for (k::Store store : {k::Store::Write, k::Store::Accumulate, k::Store::Stream}) {
          GemmMicroTester().rows(rows).cols(cols).kc(kc).store(store).bias(store != k::Store::Accumulate).test();
          if (::testing::Test::HasFatalFailure()) return;
        }
}

TEST(MicroKernels, GemmStridedOutputAndNoBias) {
  const k::GemmTile& tile = k::packed_gemm_tile();
  for (int64_t extra : {1, 3, 16, 37})
    for (int rows : {1, tile.mr / 2, tile.mr})
      for (int cols : {1, 7, tile.nr - 1, tile.nr}) {
        GemmMicroTester().rows(rows).cols(cols).kc(19).ldc_extra(extra).bias(false).test();
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(MicroKernels, DirectEveryTileShapeAndDepth) {
  const k::GemmTile& tile = k::packed_gemm_tile();
  for (int rows = 1; rows <= tile.mr; ++rows)
    for (int cols = 1; cols <= tile.nr; ++cols)
      for (int64_t kc : {1, 2, 9, 27, 64})
        for (k::Store store : {k::Store::Write, k::Store::Accumulate}) {
          GemmMicroTester()
              .direct(true)
              .rows(rows)
              .cols(cols)
              .kc(kc)
              .store(store)
              .bias(store == k::Store::Write)
              .test();
          if (::testing::Test::HasFatalFailure()) return;
        }
}

// A read in place as the weight's rows (eager convolutions, ops/conv2d_direct.cpp): every tile
// height, columns on both sides of each quarter of the tile (AVX-512's short tiles: a half vector
// up to a quarter, a vector and a half up to three quarters), depths over the edges, both kernels;
// the packed result exactly. Row strides of 4 KiB (one L1 set: tiles of 8 rows with AVX-512) too.
TEST(MicroKernels, WeightRowsEveryTileHeightAsThePackedPanel) {
  const k::GemmTile& tile = k::packed_gemm_tile();
  const int q = tile.nr / 4;
  // {lda, L1 ways}: rows 4 KiB apart in tiles of 8 (an 8-way L1) and of 5 (as if 5 ways: a tile
  // and a short one), and whole (12 ways).
  const std::pair<int64_t, int> strides[] = {{0, 0}, {1024, 8}, {1024, 5}, {1024, 12}};
  for (bool direct : {false, true})
    for (auto [lda, ways] : strides)
      for (int rows = 1; rows <= tile.mr; ++rows)
        for (int cols : {1, q, q + 1, 2 * q - 1, 2 * q, 2 * q + 1, 3 * q, 3 * q + 1, tile.nr})
          for (int64_t kc : {0, 1, 7, 16, 33})
            for (k::Store store : {k::Store::Write, k::Store::Accumulate}) {
              GemmMicroTester()
                  .direct(direct)
                  .weight_rows(true)
                  .lda(lda)
                  .rows(rows)
                  .cols(cols)
                  .kc(kc)
                  .store(store)
                  .bias(store == k::Store::Write)
                  .l1_ways(ways)
                  .test();
              if (::testing::Test::HasFatalFailure()) return;
            }
}

// dot_rows (linear layers and whole-image convolutions at batch 1 to 8) against sums in double
// over every count of vectors to 11 (blocks of 4, then the rest), weight rows past every block
// height, depths past every vector width and its edges, with strides past the rows; nothing outside
// y's rows and columns is written. Each row's bits do not depend on the rows around it (the callers
// split the rows among threads): every row again alone, bit for bit.
TEST(MicroKernels, DotRowsEveryVectorCountRowCountAndDepth) {
  std::mt19937 rng(2701);
  std::normal_distribution<float> normal;
  for (int64_t m = 1; m <= 11; ++m)
    for (int64_t rows : {1, 2, 3, 5, 8, 9, 17, 33})
      for (int64_t K : {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 1280}) {
        const int64_t ldw = K + 3, ldx = K + 5, ldy = rows + 2;
        std::vector<float> w(static_cast<size_t>(rows * ldw)), x(static_cast<size_t>(m * ldx));
        for (float& v : w) v = normal(rng);
        for (float& v : x) v = normal(rng);
        const float guard = 12345.0f;
        std::vector<float> y(static_cast<size_t>(m * ldy), guard);
        k::dot_rows(rows, K, w.data(), ldw, x.data(), ldx, m, y.data(), ldy);
        for (int64_t n = 0; n < m; ++n)
          for (int64_t o = 0; o < ldy; ++o) {
            const float got = y[n * ldy + o];
            const std::string where = "m " + std::to_string(m) + " rows " + std::to_string(rows) + " K " +
                                      std::to_string(K) + ": vector " + std::to_string(n) + " row " + std::to_string(o);
            if (o >= rows) {
              ASSERT_EQ(got, guard) << where << " (past the rows) written";
              continue;
            }
            double want = 0.0, scale = 0.0;
            for (int64_t j = 0; j < K; ++j) {
              want += static_cast<double>(w[o * ldw + j]) * x[n * ldx + j];
              scale += std::abs(static_cast<double>(w[o * ldw + j]) * x[n * ldx + j]);
            }
            ASSERT_NEAR(got, want, 1e-6 * scale + 1e-30) << where;
            float alone = guard;
            k::dot_rows(1, K, w.data() + o * ldw, ldw, x.data() + n * ldx, ldx, 1, &alone, 1);
            ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(alone)) << where << " alone";
          }
      }
}

// In builds that check contracts, a call outside the tile is stopped with the broken condition.
TEST(MicroKernels, ContractsStopCallsOutsideTheTile) {
  if (!tinytorch::kContractsChecked) GTEST_SKIP() << "contracts are checked only with TINYTORCH_ASSERTS";
  const k::GemmTile& tile = k::packed_gemm_tile();
  std::vector<float> a(static_cast<size_t>(tile.mr * 4)), b(static_cast<size_t>(tile.nr * 4)),
      c(static_cast<size_t>((tile.mr + 1) * (tile.nr + 1)));
  EXPECT_DEATH(k::gemm_micro(4, a.data(), b.data(), c.data(), tile.nr + 1, tile.mr + 1, 1, k::Store::Write, nullptr),
               "contract broken.*rows <= packed_gemm_tile\\(\\).mr");
  EXPECT_DEATH(k::gemm_micro(4, a.data(), b.data(), c.data(), tile.nr, 1, tile.nr + 1, k::Store::Write, nullptr),
               "contract broken");
}

// The static memory plan (src/core/memory_plan.hpp): the placement never gives two tensors alive
// at the same time the same bytes; a repeated run is served from one block, in the same places; a
// run that strays from the recording (another size, a tensor kept longer, a tensor kept after the
// run) loses no data and records again, allocations outside the run do not make it stray; an
// imported model's outputs survive its next runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "core/memory_plan.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;

namespace {

// A run of the shape a graph makes: a chain of tensors, each filled from the one before and
// freed one step later, with a temporary of another size in each step.
std::vector<const float*> chain_run(int64_t steps, int64_t base, std::vector<float>* sums = nullptr) {
  std::vector<const float*> addresses;
  tt::Tensor x = tt::Tensor::full({base}, 1.0f);
  for (int64_t s = 0; s < steps; ++s) {
    tt::Tensor tmp = tt::Tensor::full({base / 2 + s}, static_cast<float>(s));
    tt::Tensor y = tt::Tensor::empty({base + 16 * s});
    for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = x.data()[i % x.numel()] + tmp.data()[i % tmp.numel()];
    addresses.push_back(y.data());
    x = y;
  }
  if (sums) {
    float total = 0.0f;
    for (int64_t i = 0; i < x.numel(); ++i) total += x.data()[i];
    sums->push_back(total);
  }
  return addresses;
}

}  // namespace

TEST(MemoryPlan, PlacementNeverOverlapsTensorsAliveTogether) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<tt::Lifetime> items;
    const int n = 1 + static_cast<int>(gen() % 60);
    int64_t live_peak = 0;
    for (int i = 0; i < n; ++i) {
      const int64_t first = static_cast<int64_t>(gen() % 100), length = static_cast<int64_t>(gen() % 30);
      items.push_back({64 * (1 + static_cast<int64_t>(gen() % 500)), first, first + length});
    }
    const tt::Placement p = tt::place_by_lifetime(items);
    ASSERT_EQ(p.offsets.size(), items.size());
    for (int t = 0; t < 130; ++t) {
      int64_t live = 0;
      for (const auto& it : items) live += (it.first <= t && t <= it.last) ? it.bytes : 0;
      live_peak = std::max(live_peak, live);
    }
    int64_t end = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      EXPECT_EQ(p.offsets[i] % 64, 0);
      end = std::max(end, p.offsets[i] + items[i].bytes);
      for (size_t j = i + 1; j < items.size(); ++j) {
        const bool together = items[i].first <= items[j].last && items[j].first <= items[i].last;
        const bool share = p.offsets[i] < p.offsets[j] + items[j].bytes && p.offsets[j] < p.offsets[i] + items[i].bytes;
        EXPECT_FALSE(together && share) << "trial " << trial << ": items " << i << " and " << j;
      }
    }
    EXPECT_EQ(p.total, end);
    EXPECT_GE(p.total, live_peak);  // no placement holds less than what is alive at once
  }
}

TEST(MemoryPlan, ARepeatedRunIsServedFromOneBlockInTheSamePlaces) {
  tt::MemoryPlan plan;
  std::vector<float> sums;
  std::vector<const float*> recorded, replayed, again;
  {
    const tt::MemoryPlan::Run run(plan, {{1}});
    recorded = chain_run(12, 4096, &sums);
  }
  const tt::MemoryPlan::Stats s = plan.stats();
  EXPECT_EQ(s.planned_tensors, 1 + 2 * 12);  // the first tensor, then a temporary and an output per step
  EXPECT_EQ(s.heap_tensors, 0);
  EXPECT_GT(s.block_bytes, 0);
  // The chain keeps at most a temporary and two links alive: the block holds far less than the run.
  EXPECT_LT(s.block_bytes, 6 * (4096 + 16 * 12) * 4);
  {
    const tt::MemoryPlan::Run run(plan, {{1}});
    replayed = chain_run(12, 4096, &sums);
  }
  {
    const tt::MemoryPlan::Run run(plan, {{1}});
    again = chain_run(12, 4096, &sums);
  }
  EXPECT_EQ(plan.stats().replays, 2);
  EXPECT_EQ(replayed, again);                                                          // the same places
  EXPECT_LT(std::set<const float*>(again.begin(), again.end()).size(), again.size());  // bytes reused
  EXPECT_EQ(sums[1], sums[0]);
  EXPECT_EQ(sums[2], sums[0]);
}

TEST(MemoryPlan, AllocationsOutsideTheRunDoNotCountAsStraying) {
  // A graph's remembered nodes run in the recording and are skipped after (onnx/model.cpp): what
  // they allocate goes outside the plan, so the runs that skip them still replay it.
  tt::MemoryPlan plan;
  std::vector<float> sums;
  for (int r = 0; r < 3; ++r) {
    const tt::MemoryPlan::Run run(plan, {{3}});
    if (r == 0) {
      const tt::MemoryPlan::Outside outside;
      const tt::Tensor remembered = tt::Tensor::full({4096}, 1.0f);
      EXPECT_EQ(remembered.data()[4095], 1.0f);
    }
    chain_run(6, 2048, &sums);
  }
  EXPECT_EQ(plan.stats().replays, 2);
  EXPECT_EQ(plan.stats().planned_tensors, 1 + 2 * 6);
  EXPECT_EQ(sums[1], sums[0]);
  EXPECT_EQ(sums[2], sums[0]);
}

TEST(MemoryPlan, ARunThatStraysLosesNoDataAndRecordsAgain) {
  tt::MemoryPlan plan;
  std::vector<float> want, got;
  chain_run(8, 1000, &want);
  chain_run(9, 1000, &want);
  {
    const tt::MemoryPlan::Run run(plan, {{2}});
    chain_run(8, 1000);
  }
  {
    const tt::MemoryPlan::Run run(plan, {{2}});
    chain_run(9, 1000, &got);  // one step more than recorded: from there on, the heap
  }
  EXPECT_EQ(plan.stats().replays, 0);
  EXPECT_EQ(plan.stats().block_bytes, 0);  // dropped: the next run records
  {
    const tt::MemoryPlan::Run run(plan, {{2}});
    chain_run(8, 1000, &got);
  }
  EXPECT_GT(plan.stats().block_bytes, 0);
  // Another size where the plan has one.
  {
    const tt::MemoryPlan::Run run(plan, {{2}});
    chain_run(8, 1100, &got);
  }
  EXPECT_EQ(plan.stats().replays, 0);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], want[1]);
  EXPECT_EQ(got[1], want[0]);
  std::vector<float> other;
  chain_run(8, 1100, &other);
  EXPECT_EQ(got[2], other[0]);
}

TEST(MemoryPlan, ATensorKeptLongerOrAfterTheRunKeepsItsBytes) {
  tt::MemoryPlan plan;
  auto run_once = [&](tt::Tensor* keep_first, tt::Tensor* keep_last) {
    const tt::MemoryPlan::Run run(plan, {{3}});
    tt::Tensor a = tt::Tensor::full({256}, 1.0f);
    if (keep_first) *keep_first = a;  // alive past its recorded end: its bytes must not be handed on
    a = tt::Tensor();
    tt::Tensor b = tt::Tensor::full({256}, 2.0f);  // recorded in a's place
    tt::Tensor c = tt::Tensor::full({256}, 3.0f);
    if (keep_last) *keep_last = c;  // kept after the run
  };
  run_once(nullptr, nullptr);
  run_once(nullptr, nullptr);
  ASSERT_EQ(plan.stats().replays, 1);
  tt::Tensor kept_a, kept_c;
  run_once(&kept_a, &kept_c);  // strays at b
  for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(kept_a.data()[i], 1.0f);
  run_once(nullptr, nullptr);  // records again
  run_once(nullptr, nullptr);  // replays
  for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(kept_c.data()[i], 3.0f);
  tt::Tensor kept_again;
  run_once(nullptr, &kept_again);
  run_once(nullptr, nullptr);  // kept_again is in the block: this run takes another
  for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(kept_again.data()[i], 3.0f);
  EXPECT_GE(plan.stats().replays, 3);
}

TEST(MemoryPlan, AnImportedModelsOutputsSurviveItsNextRuns) {
  if (!tt::onnx::available()) GTEST_SKIP() << "built without libonnx-dev";
  tt::Generator gen(3);
  const tt::Tensor w1 = tt::Tensor::randn({8, 3, 3, 3}, gen), w2 = tt::Tensor::randn({8, 8, 3, 3}, gen);
  const tt::Tensor fc = tt::Tensor::randn({5, 8 * 6 * 6}, gen);
  auto net = [&](const std::vector<tt::Tensor>& x) {
    tt::Tensor y = tt::relu(tt::conv2d(x[0], w1, tt::Tensor(), {.stride = 1, .padding = 1}));
    y = tt::add(y, tt::relu(tt::conv2d(y, w2, tt::Tensor(), {.stride = 1, .padding = 1})));
    tt::MaxPool2dOptions pool;
    pool.kernel_size = 2;
    return std::vector<tt::Tensor>{tt::linear(tt::flatten(tt::max_pool2d(y, pool), 1), fc)};
  };
  const tt::onnx::Model model =
      tt::onnx::load_from_bytes(tt::onnx::export_to_bytes(net, {tt::Tensor::randn({2, 3, 12, 12}, gen)}));
  std::vector<tt::Tensor> inputs, outputs, copies;
  for (int r = 0; r < 6; ++r) {
    inputs.push_back(tt::Tensor::randn({2, 3, 12, 12}, gen));
    outputs.push_back(model(inputs.back()));
    copies.push_back(outputs.back().clone());
  }
  tt::onnx::Report report = model.inspect(inputs[0]);
  EXPECT_GT(report.memory.runtime_block_bytes, 0);
  EXPECT_GT(report.memory.runtime_tensors, 0);
  for (int r = 0; r < 6; ++r) {
    EXPECT_TRUE(outputs[static_cast<size_t>(r)].equal(copies[static_cast<size_t>(r)])) << "run " << r;
    EXPECT_TRUE(model(inputs[static_cast<size_t>(r)]).equal(copies[static_cast<size_t>(r)])) << "run " << r;
  }
}

TEST(MemoryPlan, EachOfAFewInputShapesKeepsItsPlan) {
  tt::MemoryPlan plan;
  std::vector<float> want, got;
  for (int64_t base : {512, 2048, 1024}) chain_run(6, base, &want);
  for (int round = 0; round < 3; ++round) {
    for (int64_t base : {512, 2048, 1024}) {
      const tt::MemoryPlan::Run run(plan, {{base}});
      chain_run(6, base, &got);
    }
  }
  EXPECT_EQ(plan.stats().replays, 6);  // each shape recorded once, then replayed
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i % 3]) << i;
  // A fifth shape beyond the four kept: the least recently used (512) is recorded again.
  for (int64_t base : {640, 768}) {
    const tt::MemoryPlan::Run run(plan, {{base}});
    chain_run(6, base);
  }
  {
    const tt::MemoryPlan::Run run(plan, {{int64_t{512}}});
    chain_run(6, 512);
  }
  EXPECT_EQ(plan.stats().replays, 6);
  {  // kept: 512, 768, 640 and 1024 are the four most recent
    const tt::MemoryPlan::Run run(plan, {{int64_t{1024}}});
    chain_run(6, 1024);
  }
  EXPECT_EQ(plan.stats().replays, 7);
}

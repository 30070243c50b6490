// Files and trust (hardening II): the atomic writer's refusals and symlinks, the readers' checks
// before they read (non-regular files, declared sizes, wrapping sizes, duplicate names), strict
// checkpoint loading, the generator's saved state, and the C++ API's lifetime and null checks.
// Each test reproduces a defect that once passed silently or crashed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "scratch.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tt = tinytorch;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) { return tt::testing::scratch_path("files", name); }

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A safetensors file with this header text and `data_bytes` zero bytes of data.
std::string write_safetensors(const std::string& name, const std::string& header, size_t data_bytes) {
  const std::string path = scratch(name);
  std::ofstream f(path, std::ios::binary);
  uint8_t size[8];
  for (int i = 0; i < 8; ++i) size[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  f.write(reinterpret_cast<const char*>(size), 8);
  f << header << std::string(data_bytes, '\0');
  return path;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(AtomicWrite, RefusesDestinationsThatAreNotRegularFiles) {
  tt::Linear small(2, 2);
  // As root, a rename over /dev/full would have replaced the device node by a regular file.
  EXPECT_THROW(tt::save_checkpoint("/dev/full", small, nullptr), tt::ArgumentError);
  struct stat st;
  ASSERT_EQ(::stat("/dev/full", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  const std::string dir = scratch("a_directory");
  fs::create_directories(dir);
  EXPECT_NE(error_of([&] { tt::write_file_atomic(dir, "x"); }).find("is a directory, not a regular file"),
            std::string::npos);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_THROW(tt::write_file_atomic("", "x"), tt::ArgumentError);
  EXPECT_THROW(tt::write_file_atomic(std::string("a\0b", 3), "x"), tt::ArgumentError);
  EXPECT_THROW(tt::write_file_atomic("/nonexistent-dir/file", "x"), tt::IOError);
}

TEST(AtomicWrite, FollowsSymlinksAndKeepsThem) {
  const std::string target = scratch("links/target.safetensors"), link = scratch("links/link.safetensors");
  const std::string dangling_target = scratch("links/later.txt"), dangling = scratch("links/dangling");
  fs::remove(link);
  fs::remove(dangling);
  fs::remove(dangling_target);
  tt::write_file_atomic(target, "old");
  fs::create_symlink("target.safetensors", link);  // relative, as users make them
  tt::Linear small(3, 2);
  tt::save_checkpoint(link, small, nullptr);
  EXPECT_TRUE(fs::is_symlink(link));
  tt::Linear loaded(3, 2);
  tt::load_checkpoint(target, loaded, nullptr);
  EXPECT_TRUE(loaded.weight.equal(small.weight));
  fs::create_symlink(dangling_target, dangling);
  tt::write_file_atomic(dangling, "made");
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_EQ(slurp(dangling_target), "made");
}

TEST(AtomicWrite, KeepsTheFilesMode) {
  const std::string path = scratch("mode.txt");
  tt::write_file_atomic(path, "one");
  ::chmod(path.c_str(), 0600);
  tt::write_file_atomic(path, "two");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(slurp(path), "two");
  // A new file: 0666 less the umask, as any tool's.
  const mode_t old_mask = ::umask(027);
  const std::string fresh = scratch("fresh.txt");
  std::filesystem::remove(fresh);
  tt::write_file_atomic(fresh, "new");
  ::umask(old_mask);
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Readers, RefuseFifosDevicesAndDirectoriesWithoutBlocking) {
  const std::string fifo = scratch("a.fifo");
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  tt::Linear model(2, 2);
  // Each of these blocked forever (a FIFO with no writer) or read without end (/dev/zero).
  EXPECT_NE(error_of([&] { tt::load_checkpoint(fifo, model, nullptr); }).find("is a FIFO, not a regular file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tt::read_idx_images(fifo); }).find("is a FIFO"), std::string::npos);
  EXPECT_NE(error_of([] { tt::read_regular_file("/dev/zero", 1 << 20); }).find("is a character device"),
            std::string::npos);
  // A directory once read as "too short (9223372036854775807 bytes)".
  const std::string dir_error =
      error_of([&] { tt::load_checkpoint(fs::temp_directory_path().string(), model, nullptr); });
  EXPECT_NE(dir_error.find("is a directory"), std::string::npos) << dir_error;
  EXPECT_THROW(tt::read_regular_file(scratch("big.txt"), 0), tt::DataError);  // missing
  tt::write_file_atomic(scratch("big.txt"), "12345");
  EXPECT_NE(error_of([&] { tt::read_regular_file(scratch("big.txt"), 4); }).find("more than the 4 accepted"),
            std::string::npos);
}

TEST(Readers, IdxDeclaredSizeIsCheckedBeforeReading) {
  // A small gzip file whose header declares 2^16 x 256 x 256 = 4 GiB: refused from its header,
  // before the data is inflated (it once took 4.2 GB of memory first).
  const std::string path = scratch("huge.idx3.gz");
  gzFile f = gzopen(path.c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  const uint8_t header[16] = {0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0};
  gzwrite(f, header, 16);
  const std::vector<uint8_t> zeros(1 << 20, 0);
  for (int i = 0; i < 64; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
  const std::string why = error_of([&] { tt::read_idx_images(path); });
  EXPECT_NE(why.find("its dimensions describe more than 2 GiB"), std::string::npos) << why;
  // Declaring 1 GiB with 64 MiB present: truncated, found as the bytes arrive.
  const std::string partial = scratch("partial.idx3.gz");
  f = gzopen(partial.c_str(), "wb9");
  const uint8_t header1g[16] = {0, 0, 8, 3, 0, 0, 64, 0, 0, 0, 1, 0, 0, 0, 1, 0};
  gzwrite(f, header1g, 16);
  for (int i = 0; i < 64; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
  EXPECT_NE(error_of([&] { tt::read_idx_images(partial); }).find("found 67108864 (truncated)"), std::string::npos);
}

TEST(Readers, SafetensorsSizesCannotWrap) {
  // 2^31 * 2^31 elements * 4 bytes wraps to 0 in uint64: equal offsets once passed the check.
  const std::string path = write_safetensors(
      "wrap.safetensors", R"({"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}})", 0);
  const std::string why = error_of([&] { tt::load_safetensors(path); });
  EXPECT_NE(why.find("data_offsets outside"), std::string::npos) << why;
}

TEST(Readers, SafetensorsHeaderIsStrict) {
  const std::string dup = write_safetensors(
      "dup.safetensors",
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      8);
  EXPECT_NE(error_of([&] { tt::load_safetensors(dup); }).find("the key 'w' appears twice"), std::string::npos);
  const std::string meta = write_safetensors("meta.safetensors", R"({"__metadata__":[1,2]})", 0);
  EXPECT_NE(error_of([&] { tt::load_safetensors(meta); }).find("__metadata__ must be a JSON object"),
            std::string::npos);
  const std::string nodtype =
      write_safetensors("nodtype.safetensors", R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4);
  EXPECT_NE(error_of([&] { tt::load_safetensors(nodtype); }).find("'w' has no dtype string"), std::string::npos);
  // \u escapes (which nlohmann-json writes for control characters) are read back.
  const std::string escaped =
      write_safetensors("escaped.safetensors", R"({"__metadata__":{"note":"a\u0001b\u00e9\ud83d\ude00"}})", 0);
  EXPECT_EQ(tt::load_safetensors(escaped).metadata.at("note"),
            "a\x01"
            "b\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(Readers, SafetensorsRoundTripsAnyMetadataString) {
  tt::SafeTensors c;
  c.tensors.emplace_back("x\"\\\n", tt::Tensor::ones({2}));
  c.metadata["control"] = std::string("\x01\x1f\t\"quote\"", 10);
  const std::string path = scratch("roundtrip.safetensors");
  tt::save_safetensors(path, c);
  const tt::SafeTensors back = tt::load_safetensors(path);
  EXPECT_EQ(back.metadata.at("control"), c.metadata["control"]);
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors[0].first, "x\"\\\n");
  c.tensors.emplace_back("x\"\\\n", tt::Tensor::ones({1}));
  EXPECT_THROW(tt::save_safetensors(path, c), tt::ArgumentError);  // a name given twice
}

TEST(Checkpoints, LoadingIsStrictAndListsTheNames) {
  const std::string path = scratch("strict.safetensors");
  tt::Sequential saved{std::make_shared<tt::Linear>(4, 3), std::make_shared<tt::ReLU>(),
                       std::make_shared<tt::Linear>(3, 2)};
  tt::save_checkpoint(path, saved, nullptr);
  // A model with a layer the file lacks, and without one the file has.
  tt::Sequential other{std::make_shared<tt::Linear>(4, 3), std::make_shared<tt::Linear>(3, 3)};
  const tt::Tensor before = other[1].named_parameters()[0].second.clone();
  const std::string why = error_of([&] { tt::load_checkpoint(path, other, nullptr); });
  EXPECT_NE(why.find("missing '1.weight', '1.bias'"), std::string::npos) << why;
  EXPECT_NE(why.find("unexpected '2.weight', '2.bias'"), std::string::npos) << why;
  EXPECT_TRUE(other[1].named_parameters()[0].second.equal(before));
  EXPECT_FALSE(other[0].named_parameters()[0].second.equal(saved[0].named_parameters()[0].second));  // untouched
  // Non-strict loads what both have.
  tt::Sequential partial{std::make_shared<tt::Linear>(4, 3)};
  tt::load_checkpoint(path, partial, nullptr, /*strict=*/false);
  EXPECT_TRUE(partial[0].named_parameters()[0].second.equal(saved[0].named_parameters()[0].second));
  EXPECT_THROW(tt::load_checkpoint(path, partial, nullptr), tt::DataError);
}

TEST(Checkpoints, OptimizerStepsAreValidated) {
  const std::string path = scratch("steps.safetensors");
  tt::Linear model(2, 2);
  tt::Adam opt(model.parameters());
  for (const char* bad : {"9223372036854775807", "-2", "abc", "", "12x"}) {
    tt::SafeTensors c;
    for (auto& p : model.named_parameters()) c.tensors.push_back(p);
    for (auto& [name, t] : opt.state()) c.tensors.emplace_back("optimizer." + name, t);
    c.metadata = {{"optimizer", "adam"}, {"optimizer_steps", bad}};
    tt::save_safetensors(path, c);
    const std::string why = error_of([&] { tt::load_checkpoint(path, model, &opt); });
    EXPECT_NE(why.find("optimizer_steps must be a count"), std::string::npos) << bad << ": " << why;
    EXPECT_EQ(opt.steps(), 0);
  }
}

TEST(Generator, StateRoundTripsExactlyAndRejectsGarbage) {
  tt::Generator a(42);
  a.normal();  // leaves a cached second normal
  tt::Generator b(7);
  b.set_state(a.state());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.normal(), b.normal());
  for (const std::string bad :
       {std::string(),
        std::string("0000000000000000 0000000000000000 0000000000000000 0000000000000000 0 0000000000000000"),
        std::string("zz"), std::string(86, 'f')}) {
    EXPECT_THROW(b.set_state(bad), tt::DataError) << bad;
  }
}

TEST(Lifetimes, DataLoaderOutlivesItsDataset) {
  std::unique_ptr<tt::DataLoader> loader;
  {
    tt::Dataset data = tt::make_dataset(tt::Tensor::ones({5, 1, 2, 2}), {0, 1, 2, 3, 4});
    loader = std::make_unique<tt::DataLoader>(data, 2, false);
  }  // the dataset is gone; the loader once kept a reference to it (ASan: use after free)
  auto [x, y] = loader->batch(2);
  EXPECT_EQ(x.shape(), (tt::Shape{1, 1, 2, 2}));
  EXPECT_EQ(y, std::vector<int64_t>{4});
  tt::Dataset bad;
  bad.labels = {1};
  EXPECT_THROW(tt::DataLoader(bad, 1, false), tt::DataError);
}

TEST(Lifetimes, FromBlobRefusesNull) {
  EXPECT_THROW(tt::Tensor::from_blob(nullptr, {2, 2}, nullptr), tt::ArgumentError);
  EXPECT_EQ(tt::Tensor::from_blob(nullptr, {0, 2}, nullptr).numel(), 0);
}

TEST(Modules, SequentialCannotContainItself) {
  auto outer = std::make_shared<tt::Sequential>();
  auto inner = std::make_shared<tt::Sequential>();
  outer->add(inner);
  EXPECT_THROW(outer->add(outer), tt::ArgumentError);  // once a stack overflow on call or repr
  EXPECT_THROW(inner->add(outer), tt::ArgumentError);
  inner->add(std::make_shared<tt::ReLU>());
  EXPECT_EQ(outer->size(), 1u);
}

TEST(Modules, ReplacedParametersAreSeenWholeByConcurrentCalls) {
  // One thread swaps the weight between two tensors while others run forward: every output is
  // the layer's with one of them, never a torn or freed weight.
  tt::Conv2D conv(3, 4, 3, 1, 1);
  const tt::Tensor x = tt::Tensor::randn({1, 3, 6, 6});
  const tt::Tensor wa = tt::Tensor::randn(conv.weight.shape()), wb = tt::Tensor::randn(conv.weight.shape());
  conv.replace_parameter("weight", wa);
  const tt::Tensor ya = conv(x);
  conv.replace_parameter("weight", wb);
  const tt::Tensor yb = conv(x);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      while (!stop) {
        const tt::Tensor y = conv(x);
        if (!y.equal(ya) && !y.equal(yb)) ++bad;
        ++calls;
      }
    });
  }
  for (int i = 0; i < 20000 || calls < 2000; ++i) conv.replace_parameter("weight", tt::Tensor(i % 2 ? wa : wb).clone());
  stop = true;
  for (auto& c : callers) c.join();
  EXPECT_EQ(bad, 0) << "of " << calls << " calls";
  EXPECT_THROW(conv.replace_parameter("weight", tt::Tensor::zeros({1})), tt::ArgumentError);
  EXPECT_THROW(conv.replace_parameter("nothing", wa), tt::ArgumentError);
}

TEST(Runtime, ThreadCountsAreBounded) {
  EXPECT_THROW(tt::set_num_threads(0), tt::ArgumentError);
  EXPECT_THROW(tt::set_num_threads(tt::kMaxThreads + 1), tt::ArgumentError);
  EXPECT_THROW(tt::measure_fma_peak_gflops(100000, 0.01), tt::ArgumentError);  // once a segfault
  EXPECT_THROW(tt::measure_fma_peak_gflops(-1, 0.01), tt::ArgumentError);
  EXPECT_THROW(tt::measure_fma_peak_gflops(1, -1), tt::ArgumentError);
  EXPECT_GT(tt::measure_fma_peak_gflops(1, 0.01), 0.0);
}

// Which kernels this run executes, said in the test log (and as a test property), and checked
// against the CPU's own flags: AVX-512 kernels exactly when /proc/cpuinfo lists avx512f and
// TINYTORCH_ISA does not hold them back.
TEST(Runtime, IsaCoverageOfThisRun) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  const std::string flags((std::istreambuf_iterator<char>(cpuinfo)), {});
  const bool cpu_avx512 = flags.find(" avx512f") != std::string::npos;
  const char* forced = std::getenv("TINYTORCH_ISA");
  const bool held_back = forced && std::string(forced) == "avx2";
  const std::string isa = tt::peak_isa();
  std::cout << "  kernels in this run: " << isa
            << (cpu_avx512 ? "" : " (this CPU has no AVX-512: those kernels are not run)")
            << (held_back ? " (TINYTORCH_ISA=avx2)" : "") << "\n";
  RecordProperty("kernel_isa", isa);
  EXPECT_EQ(isa, cpu_avx512 && !held_back ? "avx512" : "avx2");
}

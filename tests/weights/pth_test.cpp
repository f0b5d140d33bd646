#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "vtl/core/error.h"
#include "vtl/weights/pth.h"
#include "vtl/weights/weights_file.h"

namespace vtl::weights {
namespace {

using testing::pth_fixtures;
using testing::slurp;
using testing::TempDir;
using testing::write_bytes;

torch::ScalarType dtype_of(const std::string& name) {
  if (name == "float32") return torch::kFloat;
  if (name == "float16") return torch::kHalf;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float64") return torch::kDouble;
  if (name == "int64") return torch::kLong;
  ADD_FAILURE() << "unknown dtype " << name;
  return torch::kFloat;
}

// Every tensor equals Python's values exactly (dtype, shape, every element).
void expect_matches_python(const StateDict& sd) {
  const auto expected = nlohmann::json::parse(slurp(pth_fixtures() / "expected.json"));
  ASSERT_EQ(sd.size(), expected.size());
  for (const auto& [key, e] : expected.items()) {
    SCOPED_TRACE(key);
    auto it = sd.find(key);
    ASSERT_NE(it, sd.end());
    const torch::Tensor& t = it->second;
    EXPECT_EQ(t.scalar_type(), dtype_of(e["dtype"]));
    EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>());
    EXPECT_TRUE(t.is_contiguous());
    const auto flat = t.reshape(-1);
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(e["values"].size()));
    for (int64_t i = 0; i < flat.numel(); ++i) {
      if (t.is_floating_point()) {
        const double got = flat[i].to(torch::kDouble).item<double>();
        const double want = e["values"][i].get<double>();
        EXPECT_EQ(got, want) << "element " << i;
        EXPECT_EQ(std::signbit(got), std::signbit(want)) << "element " << i;
      } else {
        EXPECT_EQ(flat[i].item<int64_t>(), e["values"][i].get<int64_t>()) << "element " << i;
      }
    }
  }
}

TEST(Pth, ZipFormatMatchesPython) {
  WeightsFileInfo info;
  expect_matches_python(load_pth(pth_fixtures() / "sd_zip.pth", &info));
  EXPECT_EQ(info.format, "pth (zip)");
  EXPECT_TRUE(info.unwrapped_key.empty());
}

TEST(Pth, LegacyFormatMatchesPython) {
  WeightsFileInfo info;
  expect_matches_python(load_pth(pth_fixtures() / "sd_legacy.pth", &info));
  EXPECT_EQ(info.format, "pth (legacy)");
}

TEST(Pth, SharedStorageViewsOwnSeparateMemory) {
  const auto sd = load_pth(pth_fixtures() / "sd_zip.pth");
  auto whole = sd.at("shared.whole");
  auto slice = sd.at("shared.slice");
  const float before = slice[0].item<float>();
  whole.fill_(42.0f);
  EXPECT_EQ(slice[0].item<float>(), before);
  EXPECT_EQ(slice.storage_offset(), 0);
}

TEST(Pth, CheckpointIsUnwrapped) {
  WeightsFileInfo info;
  expect_matches_python(load_weights_file(pth_fixtures() / "checkpoint.pth", &info));
  EXPECT_EQ(info.unwrapped_key, "state_dict");
}

TEST(Pth, DataParallelPrefixIsRemoved) {
  WeightsFileInfo info;
  expect_matches_python(load_weights_file(pth_fixtures() / "data_parallel.pth", &info));
  EXPECT_TRUE(info.stripped_module_prefix);
}

void expect_refused(const std::string& file, const std::string& global) {
  const auto path = pth_fixtures() / file;
  try {
    load_weights_file(path);
    ADD_FAILURE() << file << " was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(global), std::string::npos) << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  }
  EXPECT_FALSE(std::filesystem::exists(pth_fixtures() / "EXECUTED"));
}

TEST(Pth, MaliciousGlobalsAreRefusedAndNothingRuns) {
  expect_refused("evil_system_zip.pth", "posix.system");
  expect_refused("evil_system_legacy.pth", "posix.system");
  // torch.save writes protocol-2 pickles, which spell the builtins module __builtin__.
  expect_refused("evil_eval_zip.pth", "__builtin__.eval");
}

void expect_error_or_success_never_crash(const std::filesystem::path& path, bool must_fail) {
  try {
    load_weights_file(path);
    EXPECT_FALSE(must_fail) << path << " was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(Pth, TruncatedFilesFailCleanly) {
  TempDir dir("vtl_weights_truncated");
  for (const char* name : {"sd_zip.pth", "sd_legacy.pth"}) {
    const std::string bytes = slurp(pth_fixtures() / name);
    ASSERT_GT(bytes.size(), 100u);
    int cuts = 0;
    for (size_t cut = 0; cut < bytes.size(); cut += bytes.size() < 2000 ? 7 : 37) {
      const auto path = dir / ("cut-" + std::to_string(cut) + "-" + name);
      write_bytes(path, bytes.substr(0, cut));
      SCOPED_TRACE(path.string());
      expect_error_or_success_never_crash(path, true);
      ++cuts;
    }
    EXPECT_GT(cuts, 40);
  }
}

// Random byte corruption must give a vtl::Error or a (wrong but valid) state dict, never a
// crash or an out-of-bounds read.
TEST(Pth, CorruptedBytesNeverCrash) {
  TempDir dir("vtl_weights_corrupt");
  std::mt19937 rng(1234);
  for (const char* name : {"sd_zip.pth", "sd_legacy.pth"}) {
    const std::string original = slurp(pth_fixtures() / name);
    for (int round = 0; round < 150; ++round) {
      std::string bytes = original;
      const int flips = 1 + round % 4;
      for (int i = 0; i < flips; ++i) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
      }
      const auto path = dir / (std::to_string(round) + name);
      write_bytes(path, bytes);
      expect_error_or_success_never_crash(path, false);
    }
  }
}

TEST(WeightsFile, RejectsOtherFiles) {
  TempDir dir("vtl_weights_other");
  write_bytes(dir / "text.pth", "hello, this is not a weights file at all");
  write_bytes(dir / "empty.pth", "");
  EXPECT_THROW(load_weights_file(dir / "text.pth"), Error);
  EXPECT_THROW(load_weights_file(dir / "empty.pth"), Error);
  EXPECT_THROW(load_weights_file(dir / "missing.pth"), Error);
}

}  // namespace
}  // namespace vtl::weights

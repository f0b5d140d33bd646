// Replays every committed fuzz input (fuzz/corpus/<target>/) through its fuzz target
// (fuzz/targets.h) in the ordinary build: each input must be accepted or rejected with
// vtl::Error, never answered with another exception. The corpora hold the reproducers
// of every crash found so far, so this keeps them fixed without a fuzzing toolchain.
#if defined(VTL_HAVE_FUZZ_TARGETS)

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz/targets.h"

namespace vtl::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const auto& target : fuzz_targets()) names.push_back(target.name);
  return names;
}

std::vector<fs::path> corpus_files(const std::string& target) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(VTL_SOURCE_DIR) / "fuzz" / "corpus" / target;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Replay : public ::testing::TestWithParam<std::string> {};

TEST_P(Replay, EveryInputIsAcceptedOrRejectedCleanly) {
  const FuzzTarget* target = find_fuzz_target(GetParam());
  ASSERT_NE(target, nullptr);
  const auto files = corpus_files(GetParam());
  ASSERT_GE(files.size(), 5u) << "fuzz/corpus/" << GetParam()
                              << " needs seeds: /usr/bin/python3 fuzz/make_seeds.py";
  int accepted = 0, rejected = 0;
  for (const auto& file : files) {
    const std::string bytes = file_bytes(file);
    try {
      const auto outcome =
          target->run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      (outcome == Outcome::accepted ? accepted : rejected) += 1;
    } catch (const std::exception& e) {
      ADD_FAILURE() << file << ": escaped as " << typeid(e).name() << ": " << e.what();
    } catch (...) {
      ADD_FAILURE() << file << ": escaped as an exception of unknown type";
    }
  }
  RecordProperty("inputs", static_cast<int>(files.size()));
  RecordProperty("accepted", accepted);
  RecordProperty("rejected", rejected);
  // Both answers occur, so the corpus provably reaches the parser and its checks.
  EXPECT_GE(accepted, 1) << "no input of fuzz/corpus/" << GetParam() << " was accepted";
  EXPECT_GE(rejected, 1) << "no input of fuzz/corpus/" << GetParam() << " was rejected";
}

INSTANTIATE_TEST_SUITE_P(FuzzCorpus, Replay, ::testing::ValuesIn(target_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vtl::fuzz

#endif  // VTL_HAVE_FUZZ_TARGETS

// SIGKILL at the worst moment of each crash-safe write (docs/reliability.md, "Faults"):
// while a checkpoint, an index update or a features set is being committed. The process
// kills itself at a named point (core/fault_injection.h); what it leaves must be the
// previous version or, after the commit point, the new one, and the job must resume.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "train/run_folder.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

/// What the shell reports for a command killed by SIGKILL.
constexpr int kKilled = 128 + 9;

/// Names of the files in `dir` that hold `marker` (".tmp-", ".new-").
std::vector<std::string> files_with(const fs::path& dir, const std::string& marker) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(marker) != std::string::npos) names.push_back(name);
  }
  return names;
}

std::map<std::string, std::string> folder_bytes(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files[entry.path().filename().string()] = read_file(entry.path());
  }
  return files;
}

TEST(ReliabilityKill, CheckpointKilledWhileBeingWrittenKeepsThePreviousOneAndResumes) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_kill_ckpt");
  make_class_tree(dir / "images", 4);
  const auto train = [&](const fs::path& out) {
    return "train " + (dir / "images").string() +
           " --model resnet18 --weights random --strategy full --epochs 3 --img-size 32 "
           "--batch-size 8 --seed 7 "
           "--val-split 0.25 --no-augment --quiet --out " +
           out.string();
  };
  const fs::path whole = dir / "whole", killed = dir / "killed";
  auto run = run_cli(train(whole));
  ASSERT_EQ(run.exit_code, 0) << run.output;

  // Killed while the checkpoint of epoch 2 is being written: the temporary file holds half
  // of it, last.pt is still epoch 1's.
  run = run_cli(train(killed), "VTL_FAULT_KILL_AT=commit:last.pt#2");
  ASSERT_EQ(run.exit_code, kKilled) << run.output;
  const fs::path checkpoints = killed / "checkpoint";
  ASSERT_EQ(files_with(checkpoints, "last.pt.tmp-").size(), 1u);
  ASSERT_TRUE(fs::exists(checkpoints / "last.pt"));

  run = run_cli("train --resume " + killed.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(files_with(checkpoints, ".tmp-").empty()) << "the half-written file is removed";
  const auto a = read_metrics(whole), b = read_metrics(killed);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t e = 0; e < a.size(); ++e) {
    for (const char* key : {"train_loss", "val_loss", "val_acc"})
      EXPECT_EQ(a[e][key].get<double>(), b[e][key].get<double>()) << "epoch " << e + 1 << key;
  }
}

class ReliabilityKillIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
    make_class_tree(dir_ / "first", 2);  // 6 images
    make_class_tree(dir_ / "more", 4);   // the same 6 and 6 new ones
    auto run = run_cli("index build " + (dir_ / "first").string() +
                       " --model resnet18 --weights random --image-size 64 --json --out " +
                       index_.string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  int64_t searched_total() {
    auto run = run_cli("search " + index_.string() + " " +
                       (dir_ / "first" / "fruit" / "orange_simple.png").string() + " -k 50 --json");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return run.exit_code == 0 ? json::parse(run.output)[0].at("results").size() : -1;
  }
  TempDir dir_{"vtl_kill_index"};
  fs::path index_ = dir_ / "index";
};

TEST_F(ReliabilityKillIndex, AddKilledBeforeItsCommitPointLeavesTheIndexByteForByte) {
  const auto before = folder_bytes(index_);
  auto run = run_cli("index add " + index_.string() + " " + (dir_ / "more").string(),
                     "VTL_FAULT_KILL_AT=commit-set:journal");
  ASSERT_EQ(run.exit_code, kKilled) << run.output;
  EXPECT_EQ(files_with(index_, ".new-").size(), 3u);  // the staged update, never committed
  for (const auto& [name, bytes] : before) {
    // .lock names the process that last changed the index; it holds no index data.
    if (name.find(".new-") == std::string::npos && name != ".lock")
      EXPECT_EQ(read_file(index_ / name), bytes) << name;
  }
  EXPECT_EQ(searched_total(), 6);
  EXPECT_TRUE(files_with(index_, ".new-").empty()) << "the next open drops them";

  run = run_cli("index add " + index_.string() + " " + (dir_ / "more").string() + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json::parse(run.output).at("total"), 12);
}

TEST_F(ReliabilityKillIndex, AddKilledBetweenItsFileMovesIsFinishedByTheNextReader) {
  // index.faiss is moved, catalog.sqlite and index.json are not yet: alone, the folder
  // would disagree with itself.
  auto run = run_cli("index add " + index_.string() + " " + (dir_ / "more").string(),
                     "VTL_FAULT_KILL_AT=commit-set:catalog.sqlite");
  ASSERT_EQ(run.exit_code, kKilled) << run.output;
  ASSERT_TRUE(fs::exists(index_ / ".commit.json"));
  EXPECT_EQ(searched_total(), 12);
  EXPECT_FALSE(fs::exists(index_ / ".commit.json"));
  EXPECT_TRUE(files_with(index_, ".new-").empty());
}

TEST(ReliabilityKillFeatures, ExtractKilledAtEitherSideOfItsCommitPoint) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_kill_features");
  make_class_tree(dir / "first", 2);
  make_class_tree(dir / "more", 4);
  const fs::path out = dir / "features";
  const auto extract = [&](const fs::path& images) {
    return "extract " + images.string() +
           " --model resnet18 --weights random --image-size 64 --overwrite --json --out " +
           out.string();
  };
  auto run = run_cli(extract(dir / "first"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto first_set = folder_bytes(out);

  // Before the commit point: the first set, byte for byte; the rerun reuses the chunks.
  run = run_cli(extract(dir / "more"), "VTL_FAULT_KILL_AT=commit-set:journal");
  ASSERT_EQ(run.exit_code, kKilled) << run.output;
  EXPECT_EQ(folder_bytes(out), first_set);
  run = run_cli(extract(dir / "more"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto report = json::parse(run.output);
  EXPECT_EQ(report.at("rows"), 12);
  EXPECT_EQ(report.at("computed"), 0) << "every chunk was kept from the killed run";

  // After it (features.npy moved, the rest not): the next reader finishes the commit.
  run = run_cli(extract(dir / "first"), "VTL_FAULT_KILL_AT=commit-set:manifest.jsonl");
  ASSERT_EQ(run.exit_code, kKilled) << run.output;
  ASSERT_TRUE(fs::exists(out / ".commit.json"));
  run = run_cli("index build --features " + out.string() + " --json --out " +
                (dir / "index").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json::parse(run.output).at("total"), 6);
  EXPECT_FALSE(fs::exists(out / ".commit.json"));
  EXPECT_FALSE(fs::exists(out / ".partial"));
  EXPECT_EQ(folder_bytes(out), first_set);  // the same images and settings: the same bytes
}

}  // namespace
}  // namespace vtl::testing

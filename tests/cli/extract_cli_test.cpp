#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/embed/extract.h"

namespace vtl::testing {
namespace {

class ExtractCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
    make_class_tree(dir_ / "data");
  }
  TempDir dir_{"vtl_extract_cli"};
};

TEST_F(ExtractCli, WritesFeaturesResumesAndMergesShards) {
  const std::string data = (dir_ / "data").string();
  const std::string common = " --model resnet18 --weights random --image-size 64 --batch 5 --json";
  auto run = run_cli("extract " + data + common + " --out " + (dir_ / "all").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto summary = nlohmann::json::parse(run.output);
  EXPECT_EQ(summary.at("rows"), 12);
  EXPECT_EQ(summary.at("dim"), 512);
  auto set = embed::load_features(dir_ / "all");
  EXPECT_EQ(set.classes, sample_classes());
  // Rerun: nothing to do.
  run = run_cli("extract " + data + common + " --out " + (dir_ / "all").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).at("resumed"), 12);
  // Two shards merged equal the whole.
  for (const char* shard : {"0/2", "1/2"}) {
    run = run_cli("extract " + data + common + " --shard " + shard + " --out " +
                  (dir_ / ("shard" + std::string(1, shard[0]))).string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  run = run_cli("extract --merge " + (dir_ / "shard0").string() + " " + (dir_ / "shard1").string() +
                " --out " + (dir_ / "merged").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Same rows; batches of 5 fall differently in the shards, so allow float rounding.
  auto merged = embed::load_features(dir_ / "merged"), all = embed::load_features(dir_ / "all");
  EXPECT_TRUE(torch::allclose(merged.features, all.features, 1e-5, 1e-5));
  EXPECT_EQ(read_file(dir_ / "merged" / "manifest.jsonl"),
            read_file(dir_ / "all" / "manifest.jsonl"));
}

TEST_F(ExtractCli, AFolderWithoutClassFoldersIsExtractedUnlabelled) {
  // All twelve images side by side, one of them twice under another name.
  const auto flat = dir_ / "flat";
  fs::create_directories(flat);
  for (const auto& item : sample_items()) fs::copy_file(item.path, flat / item.path.filename());
  fs::create_symlink(flat / "spider.png", flat / "spider-again.png");
  auto run = run_cli("extract " + flat.string() +
                     " --model resnet18 --weights random --image-size 64 --json --out " +
                     (dir_ / "f").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).at("rows"), 12);
  auto set = embed::load_features(dir_ / "f");
  EXPECT_TRUE(set.classes.empty());
  for (const auto& row : set.rows) EXPECT_EQ(row.label, -1) << row.path;
  // Classifiers need labels: a one-line error, not a crash.
  run = run_cli("classify fit " + (dir_ / "f").string() + " --out " + (dir_ / "clf").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("no class names"), std::string::npos) << run.output;

  // A CSV that only lists images (Kaggle's test.csv of ids): unlabelled rows in its order,
  // a missing id named as left out.
  {
    std::ofstream list(flat / "test.csv");
    list << "id\nspider\nmissing_id\n" << sample_items()[0].path.stem().string() << "\n";
  }
  run = run_cli("extract " + (flat / "test.csv").string() +
                " --model resnet18 --weights random --image-size 64 --out " +
                (dir_ / "listed").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("missing_id: no such file, nor an image named 'missing_id'"),
            std::string::npos)
      << run.output;
  const auto listed = embed::load_features(dir_ / "listed");
  ASSERT_EQ(listed.rows.size(), 2u);
  EXPECT_EQ(listed.rows[0].path.filename(), "spider.png");
  EXPECT_EQ(listed.rows[1].path.filename(), sample_items()[0].path.filename());
  EXPECT_EQ(listed.rows[0].label, -1);
  // The same image gives the same features as in the folder's extraction.
  for (size_t i = 0; i < set.rows.size(); ++i)
    if (set.rows[i].path.filename() == "spider.png")
      EXPECT_TRUE(torch::allclose(listed.features[0], set.features[int64_t(i)], 1e-5, 1e-5));
}

TEST_F(ExtractCli, BadArgumentsAreOneLineErrors) {
  auto run =
      run_cli("extract " + (dir_ / "data").string() +
              " --model resnet18 --weights random --layer nope --out " + (dir_ / "x").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("no layer 'nope'"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("avg_pool"), std::string::npos) << run.output;
  run = run_cli("extract " + (dir_ / "data").string() +
                " --model resnet18 --weights random --shard 3/2");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("invalid shard"), std::string::npos) << run.output;
  run = run_cli("extract " + (dir_ / "missing").string() + " --model resnet18 --weights random");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("missing"), std::string::npos) << run.output;
  if (!torch::cuda::is_available()) {
    run = run_cli("extract " + (dir_ / "data").string() +
                  " --model resnet18 --weights random --device cuda --out " +
                  (dir_ / "gpu").string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("no CUDA device"), std::string::npos) << run.output;
  }
}

}  // namespace
}  // namespace vtl::testing

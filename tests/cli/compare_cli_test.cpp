#include <cstdlib>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {

class CompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
    const char* parity = std::getenv("VTL_PARITY_DIR");
    if (!parity || !fs::exists(fs::path(parity) / "resnet18.pth"))
      GTEST_SKIP() << "VTL_PARITY_DIR (torchvision weights files) not set";
    make_class_tree(dir_ / "data");
    fs::create_directories(dir_ / "weights");
    for (const char* model : {"resnet18", "mobilenet_v3_small"})
      fs::create_symlink(fs::path(parity) / (std::string(model) + ".pth"),
                         dir_ / "weights" / (std::string(model) + ".pth"));
  }
  std::string compare_args() const {
    return "compare " + (dir_ / "data").string() +
           " --models resnet18,mobilenet_v3_small,vgg16 --weights-from " +
           (dir_ / "weights").string() + " --cv 2 --img-size 64 --latency-repeats 1 --out " +
           (dir_ / "out").string();
  }
  TempDir dir_{"vtl_compare_cli"};
};

TEST_F(CompareCli, ProbeAccuraciesEqualClassifyOnTheSameFeaturesAndMissingWeightsAreSkipped) {
  auto run = run_cli(compare_args() + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = nlohmann::json::parse(run.output);
  const auto& models = report.at("models");
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(report.at("images"), 12);
  // vgg16 has no file in the folder: skipped with the reason, not a failure.
  EXPECT_NE(models[2].at("skipped").get<std::string>().find("no vgg16.pth"), std::string::npos)
      << models[2];
  for (size_t m = 0; m < 2; ++m) {
    const auto& row = models[m];
    const std::string name = row.at("model");
    EXPECT_FALSE(row.contains("skipped")) << row;
    EXPECT_EQ(row.at("input_size"), 64);
    EXPECT_EQ(row.at("feature_dim"), name == "resnet18" ? 512 : 576);
    EXPECT_GT(row.at("ms_per_image_batch1").get<double>(), 0.0);
    EXPECT_GT(row.at("ms_per_image_batch32").get<double>(), 0.0);
    EXPECT_EQ(row.at("parameters"), name == "resnet18" ? 11689512 : 2542856);
    EXPECT_FALSE(row.at("features_reused").get<bool>());
    // The same features and folds through `vtl classify fit --cv` give the same numbers.
    const auto features = dir_ / "out" / "features" / name;
    auto fit = run_cli("classify fit " + features.string() + " --algo logreg --cv 2 --json --out " +
                       (dir_ / ("clf-" + name)).string());
    ASSERT_EQ(fit.exit_code, 0) << fit.output;
    const auto cv = nlohmann::json::parse(fit.output).at("cross_validation");
    EXPECT_DOUBLE_EQ(row.at("accuracy_mean").get<double>(), cv.at("mean_accuracy").get<double>());
    EXPECT_EQ(row.at("fold_accuracy"), cv.at("fold_accuracy"));
  }
  const auto& recommendation = report.at("recommendation");
  EXPECT_FALSE(recommendation.at("most_accurate").get<std::string>().empty());
  const std::string html = read_file(dir_ / "out" / "compare.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("mobilenet_v3_small"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir_ / "out" / "compare.json")).at("models"), models);

  // A rerun reuses the cached features and prints the table.
  run = run_cli(compare_args());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("features reused"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("skipped vgg16"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("recommendation: most accurate"), std::string::npos) << run.output;
}

TEST_F(CompareCli, WithoutAnyWeightsEveryModelIsSkippedWithHowToGetThem) {
  const auto home = dir_ / "home";
  auto run =
      run_cli("compare " + (dir_ / "data").string() +
                  " --models resnet50,efficientnet_b0 --cv 2 --out " + (dir_ / "none").string(),
              "VTL_HOME=" + home.string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("vtl weights fetch resnet50"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("no model could be compared"), std::string::npos) << run.output;
  run = run_cli("compare " + (dir_ / "data").string() + " --models resnet5 --out " +
                (dir_ / "none").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("resnet50"), std::string::npos) << run.output;  // did you mean
}

}  // namespace
}  // namespace vtl::testing

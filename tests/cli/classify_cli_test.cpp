#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"

namespace vtl::testing {
namespace {

TEST(ClassifyCli, FitWithCrossValidationPredictAndEvaluate) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_classify_cli");
  make_class_tree(dir / "data");
  const std::string features = (dir / "features").string();
  auto run = run_cli("extract " + (dir / "data").string() +
                     " --model resnet18 --image-size 64 --out " + features);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const std::string algo : {"svm", "knn", "rf", "logreg", "svm-rbf"}) {
    const std::string out = (dir / ("clf-" + algo)).string();
    run = run_cli("classify fit " + features + " --algo " + algo + " --cv 2 --json --out " + out);
    ASSERT_EQ(run.exit_code, 0) << algo << ": " << run.output;
    auto report = nlohmann::json::parse(run.output);
    EXPECT_EQ(report.at("cross_validation").at("fold_accuracy").size(), 2u);
    run = run_cli("classify evaluate " + out + " " + features + " --json");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto evaluation = nlohmann::json::parse(run.output);
    EXPECT_EQ(evaluation.at("rows"), 12);
    EXPECT_EQ(evaluation.at("confusion").size(), 3u);
    EXPECT_DOUBLE_EQ(evaluation.at("accuracy").get<double>(),
                     report.at("train_accuracy").get<double>());
  }
  run = run_cli("classify predict " + (dir / "clf-svm").string() + " " + features + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).size(), 12u);

  // Features of another extractor are refused.
  run = run_cli("extract " + (dir / "data").string() +
                " --model resnet18 --image-size 64 --layer layer3 --out " + (dir / "l3").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify evaluate " + (dir / "clf-svm").string() + " " + (dir / "l3").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("trained on other features"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace vtl::testing

// `vtl explain`: Grad-CAM overlays of a trained model folder's predictions. The heatmap
// math is checked in tests/models/grad_cam_test.cpp.

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli/run_cli.h"
#include "train/clipart_fixture.h"

namespace vtl {
namespace {
namespace fs = std::filesystem;
using vtl::testing::run_cli;
using vtl::testing::TempDir;

TEST(ExplainCli, WritesOneOverlayPerImageAndNamesWhatItCannotRead) {
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_explain_cli");
  vtl::testing::make_clipart_set(dir.path() / "data", {"animals", "food"}, 4);
  const fs::path run = dir.path() / "run";
  auto trained =
      run_cli("train " + (dir.path() / "data").string() +
              " --model resnet18 --weights random --epochs 1 --img-size 64 --batch-size 4 --quiet "
              "--no-augment --val-split 0.5 --out " +
              run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  const fs::path images = dir.path() / "data" / "food";
  std::ofstream(images / "zz_broken.png") << "not a png";
  const fs::path out = dir.path() / "cams";
  auto explained = run_cli("explain " + images.string() + " --model " + run.string() +
                           " --class animals --out " + out.string() + " --json");
  EXPECT_EQ(explained.exit_code, 1) << explained.output;  // one image could not be read
  EXPECT_NE(explained.output.find("zz_broken.png"), std::string::npos) << explained.output;
  // stdout's JSON, then stderr's error line
  const size_t begin = explained.output.find('['), end = explained.output.find("\n]") + 2;
  const auto results = nlohmann::json::parse(explained.output.substr(begin, end - begin));
  ASSERT_EQ(results.size(), 5u);
  size_t overlays = 0;
  for (const auto& result : results) {
    if (result.contains("error")) continue;
    EXPECT_EQ(result.at("class"), "animals");
    const cv::Mat png = cv::imread(result.at("heatmap").get<std::string>());
    ASSERT_FALSE(png.empty()) << result.dump();
    EXPECT_EQ(png.cols, 224);  // 64 px inputs are shown at 224
    EXPECT_EQ(png.rows, 224);
    ++overlays;
  }
  EXPECT_EQ(overlays, 4u);

  auto unknown = run_cli("explain " + images.string() + " --model " + run.string() +
                         " --class animal --out " + out.string());
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("did you mean 'animals'"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace vtl

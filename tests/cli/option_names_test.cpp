// What a user types: one name for one option in every command, and a suggestion when a
// command or an option is misspelt.

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

TEST(OptionNames, MisspeltCommandsAndOptionsGetTheClosestName) {
  const std::pair<std::string, std::string> cases[] = {
      {"trian data", "'trian'; did you mean 'train'?"},
      {"index bild data", "'bild'; did you mean 'build'?"},
      {"train data --epoch 3", "'--epoch'; did you mean '--epochs'?"},
      {"extract data --image-siz 64", "'--image-siz'; did you mean '--image-size'?"},
  };
  for (const auto& [arguments, hint] : cases) {
    const auto result = run_cli(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments;  // a usage error, as getopt's
    EXPECT_NE(result.output.find(hint), std::string::npos) << arguments << "\n" << result.output;
  }
  const auto far = run_cli("train data --zzzzzz 3");
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_EQ(far.output.find("did you mean"), std::string::npos) << far.output;
  // An option of the subcommand given before its name is pointed after it, not offered
  // as its own correction.
  const auto early = run_cli("classify --json fit features --out classifier");
  EXPECT_EQ(early.exit_code, 2);
  EXPECT_NE(early.output.find("'--json' is an option of `fit`: give it after `fit`"),
            std::string::npos)
      << early.output;
  EXPECT_EQ(run_cli("serve index --port 80000").exit_code, 2);
  EXPECT_EQ(run_cli("predict image.png").exit_code, 2);  // --model is required
}

TEST(OptionNames, VersionAndBareCommandSayWhatThereIs) {
  const auto version = run_cli("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output.rfind("vtl ", 0), 0u) << version.output;
  EXPECT_NE(version.output.find("\nLibTorch "), std::string::npos) << version.output;
  const auto bare = run_cli("");
  EXPECT_EQ(bare.exit_code, 0);
  EXPECT_NE(bare.output.find("Usage: vtl [OPTIONS] SUBCOMMAND"), std::string::npos) << bare.output;
  EXPECT_NE(bare.output.find("export"), std::string::npos) << bare.output;
}

TEST(OptionNames, ImageSizeAndBatchSizeHaveTheSameNamesInEveryCommand) {
  TempDir dir("vtl_option_names");
  fs::create_directories(dir.path() / "images");
  for (int i = 0; i < 3; ++i)
    cv::imwrite((dir.path() / "images" / (std::to_string(i) + ".png")).string(),
                cv::Mat(40, 40, CV_8UC3, cv::Scalar(40 * i, 90, 200 - 50 * i)));
  int run = 0;
  for (const std::string spelling : {"--img-size 32 --batch-size 2", "--image-size 32 --batch 2"}) {
    const fs::path out = dir.path() / ("features" + std::to_string(run++));
    const auto result = run_cli("extract " + (dir.path() / "images").string() +
                                " --model mobilenet_v3_small --weights random " + spelling +
                                " --out " + out.string() + " --json");
    ASSERT_EQ(result.exit_code, 0) << spelling << "\n" << result.output;
    std::ifstream in(out / "features.json");
    const auto meta = nlohmann::json::parse(in);
    EXPECT_EQ(meta.at("spec").at("preprocessing").at("crop").get<int>(), 32) << spelling;
    EXPECT_EQ(meta.at("rows").get<int>(), 3) << spelling;
  }
  for (const std::string command :
       {"train", "evaluate", "extract", "index build", "predict", "compare", "classify predict"}) {
    const auto help = run_cli(command + " --help");
    EXPECT_NE(help.output.find("--batch-size"), std::string::npos) << command;
  }
  for (const std::string command : {"train", "extract", "index build", "compare", "demo"}) {
    const auto help = run_cli(command + " --help");
    EXPECT_NE(help.output.find("--img-size"), std::string::npos) << command;
  }
}

}  // namespace
}  // namespace vtl

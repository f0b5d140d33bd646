// `vtl export`: ONNX files of a trained model folder and of a registry network, checked by
// the ONNX project's own checker (full check, with shape inference) when python3-onnx is
// installed. The numbers are checked in tests/models/onnx_export_test.cpp.

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli/run_cli.h"
#include "train/clipart_fixture.h"

namespace vtl {
namespace {
namespace fs = std::filesystem;
using vtl::testing::run_cli;
using vtl::testing::TempDir;

nlohmann::json json_of(const std::string& output) {
  return nlohmann::json::parse(output.substr(output.find('{')));
}

/// What a command prints, stdout only.
std::string stdout_of(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  pclose(pipe);
  return output;
}

/// "ok" from the ONNX checker, "skip" without python3-onnx, else the checker's complaint.
std::string check_with_onnx(const fs::path& file) {
  const std::string command =
      "/usr/bin/python3 -c \"import sys\ntry:\n import onnx\nexcept ImportError:\n "
      "print('skip'); sys.exit(0)\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, "
      "full_check=True)\nprint('ok', {p.key: p.value for p in m.metadata_props})\" " +
      file.string() + " 2>&1";
  return stdout_of(command);
}

TEST(ExportCli, ModelFolderAndRegistryNetworkBecomeValidOnnxFiles) {
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_export_cli");
  vtl::testing::make_clipart_set(dir.path() / "data", {"animals", "shapes"}, 6);
  const fs::path run = dir.path() / "run";
  auto trained = run_cli(
      "train " + (dir.path() / "data").string() +
      " --model mobilenet_v3_small --weights random --epochs 1 --img-size 32 --batch-size 4 "
      "--quiet --no-augment --out " +
      run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  const fs::path classifier = dir.path() / "classifier.onnx";
  auto exported = run_cli("export " + run.string() + " --out " + classifier.string() + " --json");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  auto summary = json_of(exported.output);
  EXPECT_EQ(summary.at("outputs"), (nlohmann::json{"logits", "probabilities"}));
  EXPECT_EQ(summary.at("output_shape"), (nlohmann::json{1, 2}));
  EXPECT_EQ(summary.at("input_shape"), (nlohmann::json{1, 3, 32, 32}));
  EXPECT_EQ(summary.at("class_names"), (nlohmann::json{"animals", "shapes"}));
  EXPECT_EQ(summary.at("bytes").get<int64_t>(), int64_t(fs::file_size(classifier)));
  const std::string checked = check_with_onnx(classifier);
  if (checked.rfind("skip", 0) != 0) {
    EXPECT_EQ(checked.rfind("ok", 0), 0u) << checked;
    EXPECT_NE(checked.find("'vtl.class_names': '[\"animals\",\"shapes\"]'"), std::string::npos)
        << checked;
  }

  // The base alone, any batch size: embeddings for a search service.
  const fs::path features = dir.path() / "features.onnx";
  exported =
      run_cli("export " + run.string() + " --features --dynamic-batch --out " + features.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("output features [batch, 576]: pooled features"),
            std::string::npos)
      << exported.output;
  if (check_with_onnx(features).rfind("skip", 0) != 0)
    EXPECT_EQ(check_with_onnx(features).rfind("ok", 0), 0u) << check_with_onnx(features);

  // A registry network with its ImageNet-sized classifier, at another input size.
  const fs::path resnet = dir.path() / "resnet18.onnx";
  exported = run_cli("export resnet18 --weights random --img-size 64 --batch-size 3 --out " +
                     resnet.string() + " --json");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  summary = json_of(exported.output);
  EXPECT_EQ(summary.at("output_shape"), (nlohmann::json{3, 1000}));
  EXPECT_EQ(summary.at("input").at("preprocessing").at("crop"), 64);
  if (check_with_onnx(resnet).rfind("skip", 0) != 0)
    EXPECT_EQ(check_with_onnx(resnet).rfind("ok", 0), 0u) << check_with_onnx(resnet);

  // Mistakes are named; nothing is written.
  auto folder_weights = run_cli("export " + run.string() + " --weights random --out " +
                                (dir.path() / "x.onnx").string());
  EXPECT_EQ(folder_weights.exit_code, 1);
  EXPECT_NE(folder_weights.output.find("--weights does not apply"), std::string::npos)
      << folder_weights.output;
  auto unknown = run_cli("export resnet5O --out " + (dir.path() / "x.onnx").string());
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("resnet50"), std::string::npos) << unknown.output;
  EXPECT_FALSE(fs::exists(dir.path() / "x.onnx"));
}

TEST(ExportCli, AFolderAsOutIsRefusedWithAFileNameToGive) {
  TempDir dir("vtl_export_folder");
  auto run = run_cli("export resnet18 --weights random --out " + dir.path().string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("a folder; give the file to write, such as " +
                            (dir.path() / "model.onnx").string()),
            std::string::npos)
      << run.output;
  run = run_cli("export resnet18 --weights random --out " + (dir.path() / "new").string() + "/");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("a folder"), std::string::npos) << run.output;
  EXPECT_EQ(run_cli("export resnet18 --weights random --batch-size 0 --out x.onnx").exit_code, 2);
}

TEST(ExportCli, OpenCvAloneClassifiesAsVtlPredictDoes) {
  VTL_REQUIRE_CLIPART();
  const fs::path example = fs::path(VTL_BINARY_DIR) / "examples" / "onnx_opencv";
  if (!fs::exists(example)) GTEST_SKIP() << "examples/onnx_opencv was not built";
  TempDir dir("vtl_export_opencv");
  vtl::testing::make_clipart_set(dir.path() / "data", {"animals", "food", "shapes"}, 8);
  const fs::path run = dir.path() / "run";
  auto trained =
      run_cli("train " + (dir.path() / "data").string() +
              " --model resnet18 --weights random --epochs 2 --img-size 64 --batch-size 8 --quiet "
              "--no-augment --out " +
              run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const fs::path onnx = dir.path() / "model.onnx";
  ASSERT_EQ(run_cli("export " + run.string() + " --out " + onnx.string()).exit_code, 0);

  // 16-bit files: 8-bit values widened (kept as they are) and full-range ones (by 1/257).
  const fs::path sixteen = dir.path() / "sixteen";
  fs::create_directories(sixteen);
  const fs::path source = fs::directory_iterator(dir.path() / "data" / "animals")->path();
  const cv::Mat bgr = cv::imread(source.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty()) << source;
  cv::Mat widened, full_range, grey;
  bgr.convertTo(widened, CV_16U);
  bgr.convertTo(full_range, CV_16U, 257.0);
  cv::cvtColor(widened, grey, cv::COLOR_BGR2GRAY);
  cv::imwrite((sixteen / "widened.png").string(), widened);
  cv::imwrite((sixteen / "full_range.png").string(), full_range);
  cv::imwrite((sixteen / "grey.tif").string(), grey);

  // The same images (transparent PNGs among them) through both.
  const auto predicted =
      json_of(run_cli("predict " + (dir.path() / "data" / "food").string() + " " +
                      sixteen.string() + " --model " + run.string() + " --top 1 --json")
                  .output.insert(0, "{\"r\":")
                  .append("}"))
          .at("r");
  std::string images;
  for (const auto& entry : predicted) images += " " + entry.at("path").get<std::string>();
  const std::string deployed = stdout_of(example.string() + " " + onnx.string() + images);
  ASSERT_EQ(predicted.size(), 11u);
  for (const auto& entry : predicted) {
    const std::string path = entry.at("path");
    const auto line_start = deployed.find(path + "\t");
    ASSERT_NE(line_start, std::string::npos) << path << "\n" << deployed;
    const std::string line =
        deployed.substr(line_start, deployed.find('\n', line_start) - line_start);
    // "path<TAB>label probability<TAB>..."
    const auto top = entry.at("predictions").at(0);
    const std::string first =
        line.substr(path.size() + 1, line.find('\t', path.size() + 1) - path.size() - 1);
    const auto space = first.rfind(' ');
    EXPECT_EQ(first.substr(0, space), top.at("label").get<std::string>()) << line;
    EXPECT_NEAR(std::stod(first.substr(space + 1)), top.at("probability").get<double>(), 1e-4)
        << line;
  }
}

}  // namespace
}  // namespace vtl

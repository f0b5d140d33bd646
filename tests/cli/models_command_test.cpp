#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/run_cli.h"

namespace vtl::testing {
namespace {

/// A fresh $VTL_HOME so the stats cache starts empty; removed afterwards.
struct TempHome {
  TempHome()
      : path(std::filesystem::temp_directory_path() /
             ("vtl-models-test-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempHome() { std::filesystem::remove_all(path); }
  std::string env() const { return "VTL_HOME=" + path.string(); }
  std::filesystem::path path;
};

TEST(ModelsCommand, JsonRowsForOnePattern) {
  TempHome home;
  const auto result = run_cli("models 'resnet[13]?' --json", home.env());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto rows = nlohmann::json::parse(result.output);
  ASSERT_EQ(rows.size(), 2u);  // resnet18, resnet34 (sorted); not resnet101/152/50
  EXPECT_EQ(rows[0]["name"], "resnet18");
  EXPECT_EQ(rows[1]["name"], "resnet34");
  // torchvision's model table for resnet34: 21,797,672 params, 3.66 GFLOPS, 83.275 MB file.
  const auto& r34 = rows[1];
  EXPECT_EQ(r34["family"], "resnet");
  EXPECT_EQ(r34["parameters"], 21797672);
  EXPECT_EQ(r34["num_features"], 512);
  EXPECT_EQ(r34["input_size"], 224);
  EXPECT_NEAR(r34["gflops"].get<double>(), 3.66, 0.02 * 3.66);
  EXPECT_NEAR(r34["size_mib"].get<double>(), 83.275, 0.01 * 83.275);
  EXPECT_FALSE(r34["recommended_use"].get<std::string>().empty());
  // acc@1 comes from the weights catalogue (torchvision: 73.314).
  ASSERT_TRUE(r34["top1"].is_number()) << r34.dump();
  EXPECT_NEAR(r34["top1"].get<double>(), 73.314, 1e-6);
  EXPECT_EQ(r34["weights"], "resnet34.tv_in1k");
  EXPECT_FALSE(r34.contains("ms_per_image_batch1"));

  // The second run reads the cache written by the first and prints the same figures.
  EXPECT_TRUE(std::filesystem::exists(home.path / "cache" / "model_stats.json"));
  const auto again = run_cli("models 'resnet[13]?' --json", home.env());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(nlohmann::json::parse(again.output), rows);
}

TEST(ModelsCommand, LayersListsTapShapes) {
  TempHome home;
  const auto result = run_cli("models --layers resnet18 --input-size 64 --json", home.env());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["model"], "resnet18");
  EXPECT_EQ(json["input_size"], 64);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& layer : json["layers"])
    shapes[layer["name"].get<std::string>()] = layer["shape"].get<std::vector<int64_t>>();
  EXPECT_EQ(shapes["layer4"], (std::vector<int64_t>{512, 2, 2}));
  EXPECT_EQ(shapes["avg_pool"], (std::vector<int64_t>{512}));
  EXPECT_EQ(shapes["logits"], (std::vector<int64_t>{1000}));
}

TEST(ModelsCommand, UnknownPatternIsAnError) {
  const auto result = run_cli("models 'resnt5*'");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("no model matches"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace vtl::testing

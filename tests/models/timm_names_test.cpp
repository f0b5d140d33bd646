// timm's EfficientNet weights files load into vtl's (torchvision's) EfficientNet.

#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "temp_dir.h"
#include "vtl/core/error.h"
#include "vtl/models/pretrained.h"
#include "vtl/models/registry.h"
#include "vtl/models/timm_names.h"
#include "vtl/weights/safetensors.h"

namespace vtl::models {
namespace {

/// torchvision's EfficientNet key -> timm's, written from timm's module layout
/// (timm/models/efficientnet.py, _efficientnet_blocks.py): the inverse of what the
/// library does, kept separate from it.
std::string timm_key(const std::string& key, bool inverted_residual, int head_index) {
  std::smatch m;
  static const std::regex stem(R"(features\.0\.([01])\.(.*))");
  static const std::regex block(R"(features\.(\d+)\.(\d+)\.block\.(\d)\.(\w+)\.(.*))");
  if (std::regex_match(key, m, stem)) return (m[1] == "0" ? "conv_stem." : "bn1.") + m[2].str();
  if (std::regex_match(key, m, block)) {
    const int stage = std::stoi(m[1].str());
    if (stage == head_index) return "";
    const int part = std::stoi(m[3].str());
    const std::string sub = m[4].str(), rest = m[5].str();
    const std::string prefix = fmt::format("blocks.{}.{}.", stage - 1, m[2].str());
    const int se_part = inverted_residual ? 2 : 1;
    if (part == se_part)
      return prefix + (sub == "fc1" ? "se.conv_reduce." : "se.conv_expand.") + rest;
    static const char* kIr[][2] = {{"conv_pw", "bn1"}, {"conv_dw", "bn2"}, {}, {"conv_pwl", "bn3"}};
    static const char* kDs[][2] = {{"conv_dw", "bn1"}, {}, {"conv_pw", "bn2"}};
    const auto& names = inverted_residual ? kIr[part] : kDs[part];
    return prefix + names[sub == "0" ? 0 : 1] + "." + rest;
  }
  const std::string head = fmt::format("features.{}.", head_index);
  if (key.rfind(head + "0.", 0) == 0) return "conv_head." + key.substr(head.size() + 2);
  if (key.rfind(head + "1.", 0) == 0) return "bn2." + key.substr(head.size() + 2);
  if (key.rfind("classifier.1.", 0) == 0) return "classifier." + key.substr(13);
  return "";
}

/// Each (key, shape) of `known` is in `state_dict` with that shape.
void expect_shapes(const weights::StateDict& state_dict,
                   const std::vector<std::pair<std::string, std::vector<int64_t>>>& known) {
  for (const auto& [key, shape] : known) {
    ASSERT_TRUE(state_dict.count(key)) << key;
    EXPECT_EQ(state_dict.at(key).sizes().vec(), shape) << key;
  }
}

/// The state dict of `model` under timm's names.
weights::StateDict as_timm(Model& model) {
  weights::StateDict torchvision;
  for (const auto& p : model->named_parameters()) torchvision[p.key()] = p.value().detach();
  for (const auto& b : model->named_buffers()) torchvision[b.key()] = b.value();
  int head_index = 0;
  for (const auto& [key, tensor] : torchvision)
    if (key.rfind("features.", 0) == 0)
      head_index = std::max(head_index, std::stoi(key.substr(9, key.find('.', 9) - 9)));
  weights::StateDict timm;
  for (const auto& [key, tensor] : torchvision) {
    // A block with four parts (expansion, depthwise, SE, projection) is an inverted residual.
    const auto block = key.find(".block.");
    const bool inverted_residual =
        block != std::string::npos &&
        torchvision.count(key.substr(0, block) + ".block.3.0.weight") > 0;
    const std::string name = timm_key(key, inverted_residual, head_index);
    EXPECT_FALSE(name.empty()) << key;
    timm[name] = tensor;
  }
  return timm;
}

TEST(TimmNames, EfficientNetB0KeysAreTimmsWithTimmsShapes) {
  torch::manual_seed(0);
  auto model = create_model("efficientnet_b0");
  const auto timm = as_timm(model);
  EXPECT_EQ(timm.size(), 360u);
  // Shapes of timm's efficientnet_b0 (timm.create_model("efficientnet_b0").state_dict()).
  const std::vector<std::pair<std::string, std::vector<int64_t>>> known = {
      {"conv_stem.weight", {32, 3, 3, 3}},
      {"bn1.running_var", {32}},
      {"blocks.0.0.conv_dw.weight", {32, 1, 3, 3}},
      {"blocks.0.0.se.conv_reduce.weight", {8, 32, 1, 1}},
      {"blocks.0.0.se.conv_expand.bias", {32}},
      {"blocks.0.0.conv_pw.weight", {16, 32, 1, 1}},
      {"blocks.1.0.conv_pw.weight", {96, 16, 1, 1}},
      {"blocks.1.0.conv_dw.weight", {96, 1, 3, 3}},
      {"blocks.1.0.se.conv_reduce.weight", {4, 96, 1, 1}},
      {"blocks.1.0.conv_pwl.weight", {24, 96, 1, 1}},
      {"blocks.1.0.bn3.weight", {24}},
      {"blocks.5.3.conv_dw.weight", {1152, 1, 5, 5}},
      {"blocks.6.0.conv_pwl.weight", {320, 1152, 1, 1}},
      {"conv_head.weight", {1280, 320, 1, 1}},
      {"bn2.num_batches_tracked", {}},
      {"classifier.weight", {1000, 1280}},
  };
  expect_shapes(timm, known);
}

TEST(TimmNames, TimmEfficientNetFilesLoadAndComputeTheSame) {
  testing::TempDir dir("vtl_timm_names");
  for (const char* arch : {"efficientnet_b0", "efficientnet_b3"}) {
    torch::manual_seed(1);
    auto original = create_model(arch);
    original->eval();
    const auto file = dir / (std::string(arch) + ".safetensors");
    weights::save_safetensors(file, as_timm(original));

    auto loaded = load_pretrained(arch, file.string());
    loaded.model->eval();
    bool noted = false;
    for (const auto& note : loaded.report.notes) noted |= note.find("timm") != std::string::npos;
    EXPECT_TRUE(noted) << arch << ": " << loaded.report.summary();
    EXPECT_EQ(loaded.class_names.size(), 1000u);  // the published classifier came along
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({2, 3, 64, 64});
    EXPECT_TRUE(torch::equal(loaded.model->forward(x), original->forward(x))) << arch;
    // The architecture check of `vtl weights import` reads the same names.
    EXPECT_NO_THROW(check_weights_for_architecture(arch, weights::load_safetensors(file), "f"));
  }
}

/// torchvision's MobileNetV3 -> timm's mobilenetv3_{large,small}_100 names
/// (timm/models/mobilenetv3.py `_gen_mobilenet_v3`): timm nests torchvision's features.1..N
/// in stages of `stage_sizes` blocks; conv_head is a 1x1 convolution.
weights::StateDict as_timm_mobilenet_v3(Model& model, const std::vector<int>& stage_sizes) {
  weights::StateDict torchvision;
  for (const auto& p : model->named_parameters()) torchvision[p.key()] = p.value().detach();
  for (const auto& b : model->named_buffers()) torchvision[b.key()] = b.value();
  std::vector<std::pair<int, int>> position;  // features.1+i -> (stage, block)
  for (int stage = 0; stage < int(stage_sizes.size()); ++stage)
    for (int block = 0; block < stage_sizes[stage]; ++block) position.push_back({stage, block});
  const int last = int(position.size());  // features.last: timm's final ConvBnAct
  weights::StateDict timm;
  std::smatch m;
  static const std::regex stem(R"(features\.0\.([01])\.(.*))");
  static const std::regex plain(R"(features\.(\d+)\.([01])\.(.*))");
  static const std::regex block(R"(features\.(\d+)\.block\.(\d)\.(\w+)\.(.*))");
  for (const auto& [key, tensor] : torchvision) {
    std::string name;
    torch::Tensor value = tensor;
    if (std::regex_match(key, m, stem)) {
      name = (m[1] == "0" ? "conv_stem." : "bn1.") + m[2].str();
    } else if (std::regex_match(key, m, block)) {
      const int feature = std::stoi(m[1].str()), part = std::stoi(m[2].str());
      const auto [stage, index] = position.at(size_t(feature - 1));
      const std::string prefix = fmt::format("blocks.{}.{}.", stage, index);
      const std::string sub = m[3].str(), rest = m[4].str();
      if (sub == "fc1" || sub == "fc2") {
        name = prefix + (sub == "fc1" ? "se.conv_reduce." : "se.conv_expand.") + rest;
      } else {
        // Conv parts in order, skipping the SE part: 3 with an expansion, else 2.
        const std::string here = fmt::format("features.{}.block.", feature);
        int conv_parts = 0, ordinal = 0;
        for (int i = 0; i < 4; ++i) {
          if (!torchvision.count(here + std::to_string(i) + ".0.weight")) continue;
          if (i < part) ++ordinal;
          ++conv_parts;
        }
        static const char* kIr[][2] = {{"conv_pw", "bn1"}, {"conv_dw", "bn2"}, {"conv_pwl", "bn3"}};
        static const char* kDs[][2] = {{"conv_dw", "bn1"}, {"conv_pw", "bn2"}};
        const auto& names = conv_parts == 3 ? kIr[ordinal] : kDs[ordinal];
        name = prefix + names[sub == "0" ? 0 : 1] + "." + rest;
      }
    } else if (std::regex_match(key, m, plain) && std::stoi(m[1].str()) == last) {
      name = fmt::format("blocks.{}.0.{}.{}", stage_sizes.size() - 1, m[2] == "0" ? "conv" : "bn1",
                         m[3].str());
    } else if (key.rfind("classifier.0.", 0) == 0) {
      name = "conv_head." + key.substr(13);
      if (value.dim() == 2) value = value.unsqueeze(-1).unsqueeze(-1);
    } else if (key.rfind("classifier.3.", 0) == 0) {
      name = "classifier." + key.substr(13);
    }
    EXPECT_FALSE(name.empty()) << key;
    timm[name] = value;
  }
  return timm;
}

TEST(TimmNames, TimmMobileNetV3FilesLoadAndComputeTheSame) {
  testing::TempDir dir("vtl_timm_mobilenet_v3");
  // Blocks per stage of timm's arch_def: ds; ir x2; ir x3; ir x4 (large) ...; cn.
  const std::vector<std::pair<const char*, std::vector<int>>> variants = {
      {"mobilenet_v3_large", {1, 2, 3, 4, 2, 3, 1}}, {"mobilenet_v3_small", {1, 2, 3, 2, 3, 1}}};
  for (const auto& [arch, stages] : variants) {
    torch::manual_seed(2);
    auto original = create_model(arch);
    original->eval();
    const auto timm = as_timm_mobilenet_v3(original, stages);
    if (std::string(arch) == "mobilenet_v3_large") {
      // Shapes of timm's mobilenetv3_large_100.
      const std::vector<std::pair<std::string, std::vector<int64_t>>> known = {
          {"conv_stem.weight", {16, 3, 3, 3}},
          {"blocks.0.0.conv_dw.weight", {16, 1, 3, 3}},
          {"blocks.0.0.conv_pw.weight", {16, 16, 1, 1}},
          {"blocks.1.0.conv_pw.weight", {64, 16, 1, 1}},
          {"blocks.1.0.conv_pwl.weight", {24, 64, 1, 1}},
          {"blocks.2.0.se.conv_reduce.weight", {24, 72, 1, 1}},
          {"blocks.2.0.conv_pwl.weight", {40, 72, 1, 1}},
          {"blocks.5.2.conv_dw.weight", {960, 1, 5, 5}},
          {"blocks.6.0.conv.weight", {960, 160, 1, 1}},
          {"blocks.6.0.bn1.running_mean", {960}},
          {"conv_head.weight", {1280, 960, 1, 1}},
          {"conv_head.bias", {1280}},
          {"classifier.weight", {1000, 1280}},
      };
      expect_shapes(timm, known);
    }
    const auto file = dir / (std::string(arch) + ".safetensors");
    weights::save_safetensors(file, timm);
    auto loaded = load_pretrained(arch, file.string());
    loaded.model->eval();
    bool noted = false;
    for (const auto& note : loaded.report.notes)
      noted |= note.find("MobileNetV3") != std::string::npos;
    EXPECT_TRUE(noted) << arch << ": " << loaded.report.summary();
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({2, 3, 64, 64});
    EXPECT_TRUE(torch::equal(loaded.model->forward(x), original->forward(x))) << arch;
  }
}

TEST(TimmNames, TimmVggClassifierConvolutionsBecomeTorchvisionsLinearLayers) {
  // timm's vgg16: features.* as torchvision's, then pre_logits.fc1 (512 -> 4096, 7x7),
  // pre_logits.fc2 (1x1) and head.fc; small widths here, same layout.
  torch::manual_seed(3);
  weights::StateDict timm = {
      {"features.0.weight", torch::randn({4, 3, 3, 3})},
      {"features.0.bias", torch::randn({4})},
      {"pre_logits.fc1.weight", torch::randn({8, 4, 7, 7})},
      {"pre_logits.fc1.bias", torch::randn({8})},
      {"pre_logits.fc2.weight", torch::randn({8, 8, 1, 1})},
      {"pre_logits.fc2.bias", torch::randn({8})},
      {"head.fc.weight", torch::randn({5, 8})},
      {"head.fc.bias", torch::randn({5})},
  };
  auto renamed = timm;
  EXPECT_NE(rename_timm_keys("vgg16_bn", renamed), "");
  ASSERT_EQ(renamed.size(), timm.size());
  EXPECT_TRUE(torch::equal(renamed.at("features.0.weight"), timm.at("features.0.weight")));
  EXPECT_EQ(renamed.at("classifier.0.weight").sizes().vec(), (std::vector<int64_t>{8, 196}));
  EXPECT_EQ(renamed.at("classifier.3.weight").sizes().vec(), (std::vector<int64_t>{8, 8}));
  EXPECT_TRUE(torch::equal(renamed.at("classifier.6.weight"), timm.at("head.fc.weight")));
  // The 7x7 convolution over a 7x7 map is torchvision's Linear over the flattened map.
  const auto map = torch::randn({2, 4, 7, 7});
  const auto by_conv =
      torch::conv2d(map, timm.at("pre_logits.fc1.weight"), timm.at("pre_logits.fc1.bias"))
          .flatten(1);
  const auto by_linear = torch::linear(map.flatten(1), renamed.at("classifier.0.weight"),
                                       renamed.at("classifier.0.bias"));
  EXPECT_TRUE(torch::allclose(by_conv, by_linear, 1e-4, 1e-5));
}

TEST(TimmNames, OtherArchitecturesAndTorchvisionNamesAreLeftAlone) {
  torch::manual_seed(0);
  auto model = create_model("efficientnet_b0");
  auto timm = as_timm(model);
  const size_t keys = timm.size();
  EXPECT_EQ(rename_timm_keys("resnet50", timm), "");
  EXPECT_EQ(timm.size(), keys);
  EXPECT_TRUE(timm.count("conv_stem.weight"));
  weights::StateDict torchvision;
  for (const auto& p : model->named_parameters()) torchvision[p.key()] = p.value();
  EXPECT_EQ(rename_timm_keys("efficientnet_b0", torchvision), "");
  EXPECT_TRUE(torchvision.count("features.0.0.weight"));
  // An unknown key stays as it is, for the strict load to name.
  timm["blocks.0.0.mystery.weight"] = torch::zeros({1});
  EXPECT_NE(rename_timm_keys("efficientnet_b0", timm), "");
  EXPECT_TRUE(timm.count("blocks.0.0.mystery.weight"));
}

}  // namespace
}  // namespace vtl::models

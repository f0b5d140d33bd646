#include <cmath>

#include <gtest/gtest.h>

#include "fixtures.h"
#include "vtl/core/error.h"
#include "vtl/models/registry.h"
#include "vtl/weights/load.h"

namespace vtl::weights {
namespace {

StateDict state_of(torch::nn::Module& module) {
  StateDict sd;
  for (const auto& p : module.named_parameters()) sd[p.key()] = p.value().detach().clone();
  for (const auto& b : module.named_buffers()) sd[b.key()] = b.value().detach().clone();
  return sd;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no vtl::Error";
  return "";
}

TEST(LoadStateDict, CopiesEverythingIncludingBuffers) {
  auto source = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  // Make buffers distinguishable from a fresh model.
  for (auto& b : source->named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().fill_(2.5);
    if (b.key().find("num_batches_tracked") != std::string::npos) b.value().fill_(11);
  }
  StateDict sd = state_of(*source);
  sd["conv1.weight"] = sd["conv1.weight"].to(torch::kHalf);  // converted on load
  auto target = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  const auto report = load_state_dict(*target, sd);
  EXPECT_EQ(report.loaded.size(), sd.size());
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.skipped.empty());
  const auto got = state_of(*target);
  EXPECT_EQ(got.at("conv1.weight").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(got.at("conv1.weight"), sd.at("conv1.weight").to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(got.at("layer2.1.bn2.running_var"), sd.at("layer2.1.bn2.running_var")));
  EXPECT_EQ(got.at("bn1.num_batches_tracked").item<int64_t>(), 11);
  EXPECT_TRUE(torch::equal(got.at("fc.weight"), sd.at("fc.weight")));
  // Parameters still require grad after a load under NoGradGuard.
  EXPECT_TRUE(target->named_parameters()["conv1.weight"].requires_grad());
}

TEST(LoadStateDict, StrictNamesMissingUnexpectedAndMismatched) {
  auto model = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  StateDict sd = state_of(*model);
  sd.erase("layer1.0.conv1.weight");
  sd.erase("bn1.running_mean");
  sd["extra.weight"] = torch::zeros({2});
  sd["layer3.0.conv2.weight"] = torch::zeros({3, 3});
  sd["conv1.weight"] = torch::zeros_like(sd["conv1.weight"]);
  const std::string message =
      error_of([&] { load_state_dict(*model, sd, LoadOptions().source("/x/file.pth")); });
  EXPECT_NE(message.find("/x/file.pth"), std::string::npos) << message;
  EXPECT_NE(message.find("2 missing"), std::string::npos) << message;
  EXPECT_NE(message.find("layer1.0.conv1.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("bn1.running_mean"), std::string::npos) << message;
  EXPECT_NE(message.find("1 unexpected: extra.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("layer3.0.conv2.weight: file [3, 3] vs model [256, 256, 3, 3]"),
            std::string::npos)
      << message;
  // Nothing was copied by the failed load.
  EXPECT_GT(model->named_parameters()["conv1.weight"].abs().sum().item<float>(), 0.0f);
}

TEST(LoadStateDict, ANaNOrInfinityIsNamedAndNothingIsCopied) {
  auto model = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  for (const float bad : {std::nanf(""), INFINITY}) {
    StateDict sd = state_of(*model);
    sd["layer1.0.conv1.weight"][0][0][0][0] = bad;
    sd["conv1.weight"] = torch::zeros_like(sd["conv1.weight"]);
    const std::string message =
        error_of([&] { load_state_dict(*model, sd, LoadOptions().source("/x/nan.pth")); });
    EXPECT_NE(message.find("/x/nan.pth hold a NaN or an infinity in layer1.0.conv1.weight"),
              std::string::npos)
        << message;
    EXPECT_GT(model->named_parameters()["conv1.weight"].abs().sum().item<float>(), 0.0f);
  }
}

TEST(LoadStateDict, ListsAtMostTenNamesWithCount) {
  auto model = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  const std::string message = error_of([&] { load_state_dict(*model, StateDict{}); });
  EXPECT_NE(message.find("more)"), std::string::npos) << message;
  EXPECT_LT(message.size(), 2000u) << message;
}

TEST(LoadStateDict, SkipPrefixLeavesFreshClassifier) {
  auto source = models::create_model("resnet18", models::ModelOptions().num_classes(1000));
  const StateDict sd = state_of(*source);
  auto target = models::create_model("resnet18", models::ModelOptions().num_classes(7));
  const auto fresh_fc = target->named_parameters()["fc.weight"].clone();
  // Without skip_prefix the classifier shapes clash.
  EXPECT_NE(error_of([&] { load_state_dict(*target, sd); }).find("fc.weight: file [1000, 512]"),
            std::string::npos);
  const auto report = load_state_dict(*target, sd, LoadOptions().skip_prefix("fc"));
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_NE(report.summary().find("freshly initialised"), std::string::npos) << report.summary();
  EXPECT_TRUE(torch::equal(target->named_parameters()["fc.weight"], fresh_fc));
  EXPECT_TRUE(torch::equal(target->named_parameters()["conv1.weight"], sd.at("conv1.weight")));
  EXPECT_FALSE(key_has_prefix("fc2.weight", "fc"));
  EXPECT_TRUE(key_has_prefix("fc.weight", "fc"));
}

TEST(LoadStateDict, NonStrictReports) {
  auto model = models::create_model("resnet18", models::ModelOptions().num_classes(10));
  StateDict sd = state_of(*model);
  sd.erase("fc.bias");
  sd["junk"] = torch::zeros({1});
  const auto report = load_state_dict(*model, sd, LoadOptions().strict(false));
  EXPECT_EQ(report.missing, std::vector<std::string>{"fc.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"junk"});
}

}  // namespace
}  // namespace vtl::weights

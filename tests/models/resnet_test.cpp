#include <gtest/gtest.h>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

// torchvision 0.14: sum(p.numel() for p in torchvision.models.<name>().parameters())
TEST(ResNet, ParameterCountsEqualTorchvision) {
  const std::pair<const char*, int64_t> expected[] = {{"resnet18", 11689512},
                                                      {"resnet34", 21797672},
                                                      {"resnet50", 25557032},
                                                      {"resnet101", 44549160},
                                                      {"resnet152", 60192808}};
  for (const auto& [name, count] : expected) {
    auto model = create_model(name);
    EXPECT_EQ(count_parameters(*model), count) << name;
  }
}

TEST(ResNet, HeadlessModelReturnsPooledFeaturesAndTapsHaveStageShapes) {
  auto model = create_model("resnet18", ModelOptions().include_top(false));
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 64});
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 512}));
  auto taps = model->forward_taps(x, {"layer1", "layer4", "avg_pool"});
  EXPECT_EQ(taps.at("layer1").sizes(), (std::vector<int64_t>{2, 64, 16, 16}));
  EXPECT_EQ(taps.at("layer4").sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
  EXPECT_TRUE(torch::allclose(taps.at("avg_pool"), taps.at("layer4").mean({2, 3})));
  EXPECT_THROW(model->forward_taps(x, {"logits"}), Error) << "no logits without a top";
}

TEST(ResNet, ResetClassifierChangesOnlyTheFinalLayer) {
  auto model = create_model("resnet18", ModelOptions().num_classes(7));
  EXPECT_EQ(model->forward(torch::randn({1, 3, 64, 64})).sizes(), (std::vector<int64_t>{1, 7}));
  const auto conv = model->named_parameters()["conv1.weight"].clone();
  model->reset_classifier(3);
  EXPECT_EQ(model->num_classes(), 3);
  EXPECT_TRUE(torch::equal(conv, model->named_parameters()["conv1.weight"]));
  EXPECT_EQ(model->named_parameters()["fc.weight"].sizes(), (std::vector<int64_t>{3, 512}));
}

}  // namespace
}  // namespace vtl::models

#include <gtest/gtest.h>

#include "models/model_checks.h"
#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

struct Reference {
  const char* name;
  int64_t parameters;
  size_t state_dict_keys;
  int64_t num_features;
  int64_t input_size;
};

// Computed once with Debian's torchvision 0.14 (/usr/bin/python3):
//   m = torchvision.models.efficientnet_bN()
//   sum(p.numel() for p in m.parameters()), len(m.state_dict()), m.classifier[1].in_features
// (the parameter counts equal torchvision's published "num_params").
constexpr Reference kReferences[] = {
    {"efficientnet_b0", 5288548, 360, 1280, 224},  {"efficientnet_b1", 7794184, 508, 1280, 240},
    {"efficientnet_b2", 9109994, 508, 1408, 260},  {"efficientnet_b3", 12233232, 574, 1536, 300},
    {"efficientnet_b4", 19341616, 706, 1792, 380}, {"efficientnet_b5", 30389784, 854, 2048, 456},
    {"efficientnet_b6", 43040704, 986, 2304, 528}, {"efficientnet_b7", 66347960, 1200, 2560, 600},
};

size_t state_dict_size(torch::nn::Module& module) {
  return module.named_parameters().size() + module.named_buffers().size();
}

TEST(EfficientNet, AllVariantsRegistered) {
  const auto names = list_models("efficientnet_b*");
  ASSERT_EQ(names.size(), std::size(kReferences));
  for (const auto& reference : kReferences) {
    const auto& info = model_info(reference.name);
    EXPECT_EQ(info.family, "efficientnet");
    EXPECT_EQ(info.num_features, reference.num_features) << reference.name;
    EXPECT_EQ(info.default_input_size, reference.input_size) << reference.name;
  }
}

TEST(EfficientNet, ParameterAndStateDictCountsEqualTorchvision) {
  for (const auto& reference : kReferences) {
    auto model = create_model(reference.name);
    EXPECT_EQ(count_parameters(*model), reference.parameters) << reference.name;
    EXPECT_EQ(state_dict_size(*model), reference.state_dict_keys) << reference.name;
    EXPECT_EQ(model->num_features(), reference.num_features) << reference.name;
  }
}

TEST(EfficientNet, StateDictNamesAreTorchvisions) {
  auto model = create_model("efficientnet_b0");
  const auto params = model->named_parameters();
  const auto buffers = model->named_buffers();
  // Keys of torchvision.models.efficientnet_b0().state_dict(), with their shapes.
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"features.0.0.weight", {32, 3, 3, 3}},
      {"features.0.1.weight", {32}},
      {"features.1.0.block.0.0.weight", {32, 1, 3, 3}},
      {"features.1.0.block.1.fc1.weight", {8, 32, 1, 1}},
      {"features.1.0.block.1.fc2.bias", {32}},
      {"features.1.0.block.2.1.bias", {16}},
      {"features.2.1.block.0.0.weight", {144, 24, 1, 1}},
      {"features.6.3.block.2.fc1.weight", {48, 1152, 1, 1}},
      {"features.7.0.block.3.0.weight", {320, 1152, 1, 1}},
      {"features.8.0.weight", {1280, 320, 1, 1}},
      {"classifier.1.weight", {1000, 1280}},
      {"classifier.1.bias", {1000}},
  };
  for (const auto& [key, shape] : expected) {
    const auto* tensor = params.find(key);
    ASSERT_NE(tensor, nullptr) << key;
    EXPECT_EQ(tensor->sizes().vec(), shape) << key;
  }
  EXPECT_NE(buffers.find("features.8.1.running_var"), nullptr);
  EXPECT_NE(buffers.find("features.3.1.block.3.1.num_batches_tracked"), nullptr);
  EXPECT_EQ(model->classifier_prefix(), "classifier.1");
}

TEST(EfficientNet, BatchNormSettingsFollowTorchvision) {
  // B0-B4: PyTorch defaults; B5-B7: eps 1e-3, momentum 0.01 (weights ported from TF).
  for (const auto& [name, eps, momentum] : std::vector<std::tuple<std::string, double, double>>{
           {"efficientnet_b0", 1e-5, 0.1}, {"efficientnet_b5", 1e-3, 0.01}}) {
    auto model = create_model(name);
    int checked = 0;
    for (const auto& item : model->named_modules()) {
      if (auto* bn = item.value()->as<BatchNorm2d>()) {
        EXPECT_DOUBLE_EQ(bn->eps(), eps) << name << " " << item.key();
        EXPECT_DOUBLE_EQ(bn->momentum(), momentum) << name << " " << item.key();
        ++checked;
      }
    }
    EXPECT_GT(checked, 40) << name;
  }
}

TEST(EfficientNet, InitialisationFollowsTorchvision) {
  auto model = create_model("efficientnet_b0");
  const auto params = model->named_parameters();
  // Linear: uniform(-1/sqrt(1000), 1/sqrt(1000)), bias 0.
  const auto fc = params["classifier.1.weight"];
  EXPECT_LE(fc.abs().max().item<double>(), 1.0 / std::sqrt(1000.0));
  EXPECT_GT(fc.abs().max().item<double>(), 0.9 / std::sqrt(1000.0));
  EXPECT_EQ(params["classifier.1.bias"].abs().sum().item<double>(), 0.0);
  // Conv: kaiming normal, fan_out: std = sqrt(2 / (out * k * k)); head conv 1280x320x1x1.
  const auto head = params["features.8.0.weight"];
  EXPECT_NEAR(head.std().item<double>(), std::sqrt(2.0 / 1280.0), 0.002);
  EXPECT_EQ(params["features.1.0.block.1.fc1.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(params["features.0.1.weight"].min().item<double>(), 1.0);
}

TEST(EfficientNet, ShapesAndOptionsAt64) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  {
    auto model = create_model("efficientnet_b0", ModelOptions().num_classes(10));
    model->eval();
    EXPECT_EQ(model->forward(x).sizes().vec(), (std::vector<int64_t>{2, 10}));
    EXPECT_EQ(model->forward_features(x).sizes().vec(), (std::vector<int64_t>{2, 1280, 2, 2}));
    EXPECT_EQ(model->forward_head(model->forward_features(x), true).sizes().vec(),
              (std::vector<int64_t>{2, 1280}));
    const auto taps = model->forward_taps(
        x, {"stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head"});
    const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"stem", {2, 32, 32, 32}},  {"stage1", {2, 16, 32, 32}}, {"stage2", {2, 24, 16, 16}},
        {"stage3", {2, 40, 8, 8}},  {"stage4", {2, 80, 4, 4}},   {"stage5", {2, 112, 4, 4}},
        {"stage6", {2, 192, 2, 2}}, {"stage7", {2, 320, 2, 2}},  {"head", {2, 1280, 2, 2}},
    };
    for (const auto& [tap, shape] : shapes) EXPECT_EQ(taps.at(tap).sizes().vec(), shape) << tap;
  }
  {
    auto model =
        create_model("efficientnet_b1", ModelOptions().include_top(false).pooling(Pooling::max));
    model->eval();
    EXPECT_EQ(model->num_classes(), 0);
    EXPECT_EQ(model->named_parameters().find("classifier.1.weight"), nullptr);
    const auto pooled = model->forward(x);
    EXPECT_EQ(pooled.sizes().vec(), (std::vector<int64_t>{2, 1280}));
    EXPECT_TRUE(torch::equal(pooled, model->forward_features(x).amax({2, 3})));
    EXPECT_EQ(count_parameters(*model), 7794184 - (1280 * 1000 + 1000));
  }
  {
    auto model =
        create_model("efficientnet_b1", ModelOptions().include_top(false).pooling(Pooling::none));
    model->eval();
    EXPECT_EQ(model->forward(x).sizes().vec(), (std::vector<int64_t>{2, 1280, 2, 2}));
  }
  EXPECT_THROW(create_model("efficientnet_b0", ModelOptions().pooling(Pooling::none)), Error);
}

TEST(EfficientNet, DropoutDefaultAndOverrideAndResetClassifier) {
  auto dropout_of = [](Model& model) {
    auto modules = model->named_modules();
    return modules["classifier.0"]->as<torch::nn::Dropout>()->options.p();
  };
  auto b0 = create_model("efficientnet_b0");
  EXPECT_DOUBLE_EQ(dropout_of(b0), 0.2);
  auto b1 = create_model("efficientnet_b1", ModelOptions().dropout(0.35));
  EXPECT_DOUBLE_EQ(dropout_of(b1), 0.35);
  b1->reset_classifier(5);
  EXPECT_DOUBLE_EQ(dropout_of(b1), 0.35);
  EXPECT_EQ(b1->named_parameters()["classifier.1.weight"].sizes().vec(),
            (std::vector<int64_t>{5, 1280}));
  b1->reset_classifier(0);
  EXPECT_EQ(b1->num_classes(), 0);
  EXPECT_EQ(b1->named_parameters().find("classifier.1.bias"), nullptr);
}

TEST(EfficientNet, StochasticDepthOnlyInTraining) {
  // Without a top there is no dropout, and BatchNorm in training mode is a deterministic
  // function of the batch: any difference between two training passes is stochastic depth.
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  auto model = create_model("efficientnet_b0", ModelOptions().include_top(false));
  const auto x = torch::randn({8, 3, 64, 64});
  model->train();
  const auto a = model->forward(x);
  const auto b = model->forward(x);
  EXPECT_FALSE(torch::allclose(a, b));
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));
}

}  // namespace
}  // namespace vtl::models

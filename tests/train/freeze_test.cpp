#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "vtl/core/error.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/registry.h"
#include "vtl/models/transfer_model.h"
#include "vtl/train/freeze.h"

namespace vtl::train {
namespace {

struct FamilyCase {
  std::string model;
  size_t layers;                    // torchvision: modules with parameters, head excluded
  std::vector<std::string> last10;  // torchvision's named_modules() order
};

// Expected values printed by torchvision 0.14:
//   [n for n, m in model.named_modules() if n and list(m.parameters(recurse=False))
//    and not n.startswith(("fc", "classifier"))]
const std::vector<FamilyCase> kCases = {
    {"resnet50",
     106,
     {"layer4.1.conv2", "layer4.1.bn2", "layer4.1.conv3", "layer4.1.bn3", "layer4.2.conv1",
      "layer4.2.bn1", "layer4.2.conv2", "layer4.2.bn2", "layer4.2.conv3", "layer4.2.bn3"}},
    {"vgg16",
     13,
     {"features.7", "features.10", "features.12", "features.14", "features.17", "features.19",
      "features.21", "features.24", "features.26", "features.28"}},
    {"mobilenet_v3_large",
     108,
     {"features.15.block.0.0", "features.15.block.0.1", "features.15.block.1.0",
      "features.15.block.1.1", "features.15.block.2.fc1", "features.15.block.2.fc2",
      "features.15.block.3.0", "features.15.block.3.1", "features.16.0", "features.16.1"}},
    {"efficientnet_b0",
     130,
     {"features.7.0.block.0.0", "features.7.0.block.0.1", "features.7.0.block.1.0",
      "features.7.0.block.1.1", "features.7.0.block.2.fc1", "features.7.0.block.2.fc2",
      "features.7.0.block.3.0", "features.7.0.block.3.1", "features.8.0", "features.8.1"}},
};

TEST(Freeze, UnfreezeCountsTheDocumentedLayersPerFamily) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.model);
    auto base = models::create_model(c.model, models::ModelOptions().include_top(false));
    models::TransferModel model(base, 3);
    EXPECT_EQ(weighted_layers(model->base).size(), c.layers);
    freeze_base(model);
    EXPECT_TRUE(base_is_frozen(model));
    EXPECT_EQ(trainable_parameters(model).size(), 2u);  // head weight + bias
    auto names = unfreeze_last(model, 10);
    EXPECT_EQ(names, c.last10);
    // Exactly those layers' own parameters (plus the head) now train.
    size_t expected = 2;
    for (const auto& layer : weighted_layers(model->base)) {
      const bool open = std::find(names.begin(), names.end(), layer.name) != names.end();
      for (auto& p : layer.module->parameters(false)) {
        EXPECT_EQ(p.requires_grad(), open) << layer.name;
        expected += open;
      }
    }
    EXPECT_EQ(trainable_parameters(model).size(), expected);
  }
}

TEST(Freeze, UnfreezeFromBlockAndUnknownBlock) {
  auto base = models::create_model("resnet18", models::ModelOptions().include_top(false));
  models::TransferModel model(base, 4);
  freeze_base(model);
  auto names = unfreeze_from(model, "layer4");
  EXPECT_EQ(names.size(), 10u);  // resnet18's layer4: 2 blocks x (2 conv + 2 bn) + downsample
  EXPECT_EQ(names.front(), "layer4.0.conv1");
  EXPECT_EQ(names.back(), "layer4.1.bn2");
  freeze_base(model);
  try {
    unfreeze_from(model, "layer9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer4"), std::string::npos) << e.what();
  }
}

TEST(Freeze, LayerwiseGroupsCoverTheTrainableParametersWithRisingRates) {
  models::TransferModel model(
      models::create_model("mobilenet_v3_small", models::ModelOptions().include_top(false)), 4);
  freeze_base(model);
  const auto names = unfreeze_last(model, 3);
  const auto groups = layerwise_parameter_groups(model, 1000);
  ASSERT_EQ(groups.size(), 4u);  // 3 layers, then the head
  size_t parameters = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    EXPECT_EQ(groups[g].name, g < 3 ? names[g] : "head");
    EXPECT_NEAR(groups[g].lr_scale, std::pow(1000.0, -(3.0 - double(g)) / 3.0), 1e-12);
    parameters += groups[g].parameters.size();
  }
  EXPECT_EQ(parameters, trainable_parameters(model).size());
  EXPECT_EQ(groups.back().parameters.size(), 2u);  // head weight and bias
  EXPECT_DOUBLE_EQ(groups.front().lr_scale, 1e-3);
  EXPECT_THROW(layerwise_parameter_groups(model, 0.5), Error);
  // Ratio 1: every group at the phase's rate.
  for (const auto& group : layerwise_parameter_groups(model, 1)) EXPECT_EQ(group.lr_scale, 1.0);
}

TEST(Freeze, BaseBatchNormStaysInInferenceMode) {
  auto base = models::create_model("resnet18", models::ModelOptions().include_top(false));
  models::TransferModel model(base, 4);
  freeze_base(model);
  auto names = unfreeze_last(model, 4);  // layer4.1.conv1, bn1, conv2, bn2
  set_training_mode(model, /*base_trains=*/false, /*train_bn=*/false);
  EXPECT_TRUE(model->head->is_training());
  for (const auto& layer : weighted_layers(model->base)) EXPECT_FALSE(layer.module->is_training());
  set_training_mode(model, false, /*train_bn=*/true);
  for (const auto& layer : weighted_layers(model->base)) {
    const bool is_bn = layer.module->as<models::BatchNorm2d>() != nullptr;
    const bool open = std::find(names.begin(), names.end(), layer.name) != names.end();
    EXPECT_EQ(layer.module->is_training(), is_bn && open) << layer.name;
  }
  set_training_mode(model, /*base_trains=*/true, false);
  for (const auto& layer : weighted_layers(model->base)) EXPECT_TRUE(layer.module->is_training());
}

// Fine-tuning from layer4: autograd records nothing before it, so backward runs through
// layer4's 5 convolutions (2 blocks x 2 + the downsample) and the head only.
TEST(Freeze, FrozenPrefixRunsNoBackward) {
  torch::manual_seed(0);
  auto base = models::create_model("resnet18", models::ModelOptions().include_top(false));
  models::TransferModel model(base, 3);
  freeze_base(model);
  unfreeze_from(model, "layer4");
  set_training_mode(model, /*base_trains=*/false, /*train_bn=*/false);
  const auto images = torch::randn({2, 3, 64, 64});
  const auto taps = model->base->forward_taps(images, {"layer3", "layer4"});
  EXPECT_FALSE(taps.at("layer3").requires_grad());
  EXPECT_TRUE(taps.at("layer4").requires_grad());

  const auto loss = model->forward(images).logsumexp(1).mean();
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> pending = {loss.grad_fn().get()};
  int convolutions = 0;
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    convolutions += node->name().find("Convolution") != std::string::npos;
    for (const auto& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  EXPECT_EQ(convolutions, 5);

  loss.backward();
  for (const auto& layer : weighted_layers(model->base)) {
    const bool in_layer4 = layer.name.rfind("layer4.", 0) == 0;
    for (auto& p : layer.module->parameters(false))
      EXPECT_EQ(p.grad().defined(), in_layer4) << layer.name;
  }
}

}  // namespace
}  // namespace vtl::train

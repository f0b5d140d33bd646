#include <gtest/gtest.h>

#include "vtl/core/error.h"
#include "vtl/models/grad_cam.h"
#include "vtl/models/registry.h"
#include "vtl/models/transfer_model.h"

namespace vtl::models {
namespace {

TransferModel small_transfer_model() {
  torch::manual_seed(3);
  TransferModel model(create_model("resnet18", ModelOptions().include_top(false)), 4, 0.2);
  model->eval();
  return model;
}

// For a global-average-pooled linear head, Grad-CAM is the class activation map
// relu(W_k . A) of Zhou et al. (2016), scaled to max 1: an independent closed form.
TEST(GradCam, EqualsTheClassActivationMapForAPooledLinearHead) {
  auto model = small_transfer_model();
  const auto images = torch::randn({3, 3, 96, 96});
  const std::vector<int64_t> classes = {0, 3, 1};
  const auto cam =
      grad_cam([&](const torch::Tensor& x) { return model->base->forward_features(x); },
               [&](const torch::Tensor& map) {
                 return model->forward_head(map.mean({2, 3}));
               },
               images, classes);
  ASSERT_EQ(cam.heatmaps.sizes(), (std::vector<int64_t>{3, 3, 3}));  // 96 / 32
  torch::NoGradGuard no_grad;
  const auto map = model->base->forward_features(images);
  for (int64_t i = 0; i < 3; ++i) {
    const auto w = model->head->weight[classes[size_t(i)]].view({-1, 1, 1});
    auto expected = torch::relu((w * map[i]).sum(0));
    expected = expected / expected.max().clamp_min(1e-12);
    EXPECT_LT((cam.heatmaps[i] - expected).abs().max().item<double>(), 1e-5) << "image " << i;
    EXPECT_NEAR(cam.heatmaps[i].max().item<double>(), 1.0, 1e-6);
  }
  EXPECT_TRUE(torch::allclose(cam.logits, model->forward(images), 1e-5, 1e-5));
  for (const auto& parameter : model->parameters()) EXPECT_FALSE(parameter.grad().defined());
}

TEST(GradCam, ExplainsThePredictedClassByDefaultAndRefusesOthers) {
  auto model = small_transfer_model();
  const auto images = torch::randn({2, 3, 64, 64});
  auto features = [&](const torch::Tensor& x) { return model->base->forward_features(x); };
  auto head = [&](const torch::Tensor& map) { return model->forward_head(map.mean({2, 3})); };
  const auto cam = grad_cam(features, head, images);
  const auto predicted = cam.logits.argmax(1);
  EXPECT_EQ(cam.classes,
            (std::vector<int64_t>{predicted[0].item<int64_t>(), predicted[1].item<int64_t>()}));
  EXPECT_THROW(grad_cam(features, head, images, {0, 4}), Error);
  EXPECT_THROW(grad_cam(features, head, images, {0}), Error);
}

}  // namespace
}  // namespace vtl::models

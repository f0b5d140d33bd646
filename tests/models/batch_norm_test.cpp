#include "vtl/models/batch_norm.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "vtl/core/error.h"
#include "vtl/models/layers.h"
#include "vtl/models/registry.h"

namespace vtl::models {
namespace {

/// Gives every BatchNorm below `root` non-trivial statistics and affine parameters, so
/// folding has something to fold (fresh layers are the identity up to eps).
void randomize_batch_norms(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  for (const auto& module : root.modules()) {
    if (auto* bn = module->as<BatchNorm2d>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.5, 0.5);
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 2.0);
    }
  }
}

int64_t count_batch_norms(torch::nn::Module& root) {
  int64_t count = 0;
  for (const auto& module : root.modules()) count += module->as<BatchNorm2d>() != nullptr;
  return count;
}

TEST(BatchNorm, MatchesLibTorchsBatchNorm2dInTrainingAndEval) {
  torch::manual_seed(0);
  BatchNorm2d ours(6, 1e-3, 0.01);
  torch::nn::BatchNorm2d reference(torch::nn::BatchNorm2dOptions(6).eps(1e-3).momentum(0.01));
  for (int step = 0; step < 3; ++step) {
    const auto x = torch::randn({4, 6, 5, 5}) * 3 + 1;
    EXPECT_TRUE(torch::allclose(ours(x), reference(x), 1e-5, 1e-6));
  }
  EXPECT_TRUE(torch::allclose(ours->running_mean, reference->running_mean));
  EXPECT_TRUE(torch::allclose(ours->running_var, reference->running_var));
  EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 3);
  ours->eval();
  reference->eval();
  const auto x = torch::randn({2, 6, 3, 3});
  EXPECT_TRUE(torch::allclose(ours(x), reference(x), 1e-5, 1e-6));
}

TEST(BatchNorm, StateDictNamesAreTorchvisions) {
  BatchNorm2d bn(3);
  std::vector<std::string> names;
  for (const auto& p : bn->named_parameters()) names.push_back(p.key());
  for (const auto& b : bn->named_buffers()) names.push_back(b.key());
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                             "num_batches_tracked"}));
}

TEST(BatchNorm, FoldingIntoAConvWithBiasKeepsTheOutput) {
  torch::manual_seed(1);
  auto block = torch::nn::Sequential(conv2d(4, 8, 3, 1, -1, 1, /*bias=*/true), batch_norm(8));
  randomize_batch_norms(*block);
  block->eval();
  const auto x = torch::randn({2, 4, 9, 9});
  const auto expected = block->forward(x);
  EXPECT_EQ(fold_batch_norms(*block), 1);
  EXPECT_TRUE(torch::allclose(block->forward(x), expected, 1e-4, 1e-5));
  EXPECT_EQ(fold_batch_norms(*block), 0) << "a folded layer is not folded twice";
}

TEST(BatchNorm, FoldedLayerRefusesToTrain) {
  auto block = torch::nn::Sequential(conv2d(2, 2, 1), batch_norm(2));
  block->eval();
  fold_batch_norms(*block);
  block->train();
  EXPECT_THROW(block->forward(torch::randn({2, 2, 3, 3})), vtl::Error);
}

TEST(BatchNorm, FoldingRefusesMismatchedChannels) {
  auto conv = conv2d(2, 3, 1);
  BatchNorm2d bn(4);
  EXPECT_THROW(bn->fold_into(*conv), vtl::Error);
}

// Every family with BatchNorm: all of its layers fold, and the eval-mode network computes
// the same outputs with one pass less per layer.
TEST(BatchNorm, FoldingEveryFamilyKeepsItsOutputs) {
  for (const std::string name : {"resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2",
                                 "mobilenet_v3_large", "efficientnet_b0", "vgg16_bn"}) {
    torch::manual_seed(2);
    auto model = create_model(name, ModelOptions().num_classes(10));
    randomize_batch_norms(*model);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({2, 3, 64, 64});
    const auto expected = model->forward(x);
    const int64_t batch_norms = count_batch_norms(*model);
    ASSERT_GT(batch_norms, 0) << name;
    EXPECT_EQ(fold_batch_norms(*model), batch_norms) << name;
    const auto folded = model->forward(x);
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((folded - expected).abs().max().item<double>(), 1e-4 * scale + 1e-5) << name;
  }
}

// A base whose last stage trains: only the frozen pairs fold, outputs stay, and afterwards
// the network is the unfolded one bit for bit (same tensors, same state-dict keys).
TEST(BatchNorm, FoldedWhileFrozenGivesEveryTensorBack) {
  torch::manual_seed(4);
  auto model = create_model("resnet18", ModelOptions().include_top(false));
  randomize_batch_norms(*model);
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) {
    const bool trains = p.key().rfind("layer4.", 0) == 0;
    p.value().set_requires_grad(trains);
    before[p.key()] = p.value().detach().clone();
  }
  model->eval();
  int64_t frozen_norms = 0;
  for (const auto& item : model->named_modules())
    frozen_norms += item.value()->as<BatchNorm2d>() && item.key().rfind("layer4.", 0) != 0;
  const auto x = torch::randn({2, 3, 64, 64});
  torch::Tensor expected, folded_output;
  {
    torch::NoGradGuard no_grad;
    expected = model->forward(x);
  }
  {
    FoldedBatchNorms folded(*model);
    EXPECT_EQ(folded.count(), frozen_norms);
    EXPECT_LT(folded.count(), count_batch_norms(*model));
    // The trainable layer4 still gets gradients through the folded prefix.
    auto out = model->forward(x);
    out.sum().backward();
    EXPECT_TRUE(model->named_parameters()["layer4.0.conv1.weight"].grad().defined());
    EXPECT_FALSE(model->named_parameters()["conv1.bias"].defined() &&
                 model->named_parameters()["conv1.bias"].requires_grad());
    folded_output = out.detach();
  }
  const double scale = expected.abs().max().item<double>();
  EXPECT_LT((folded_output - expected).abs().max().item<double>(), 1e-4 * scale + 1e-5);
  const auto after = model->named_parameters();
  EXPECT_EQ(after.size(), before.size()) << "no conv bias left behind";
  for (const auto& p : after) {
    ASSERT_TRUE(before.count(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), before[p.key()])) << p.key();
  }
  for (const auto& module : model->modules())
    if (auto* bn = module->as<BatchNorm2d>()) EXPECT_FALSE(bn->folded());
}

TEST(BatchNorm, FoldedWhileFrozenGivesAConvWithBiasItsOwnTensors) {
  auto conv = conv2d(3, 4, 3, 1, -1, 1, /*bias=*/true);
  auto block = torch::nn::Sequential(conv, batch_norm(4));
  randomize_batch_norms(*block);
  for (auto& p : block->parameters()) p.set_requires_grad(false);
  block->eval();
  const auto weight = conv->weight, bias = conv->bias;
  const auto x = torch::randn({1, 3, 8, 8});
  const auto expected = block->forward(x);
  {
    FoldedBatchNorms folded(*block);
    ASSERT_EQ(folded.count(), 1);
    EXPECT_FALSE(conv->weight.is_same(weight));
    EXPECT_TRUE(torch::allclose(block->forward(x), expected, 1e-4, 1e-5));
  }
  EXPECT_TRUE(conv->weight.is_same(weight));
  EXPECT_TRUE(conv->bias.is_same(bias));
  EXPECT_TRUE(conv->named_parameters()["bias"].is_same(bias));
  EXPECT_TRUE(torch::equal(block->forward(x), expected));
}

TEST(BatchNorm, NothingFoldsWhileTrainingOrTrainable) {
  auto model = create_model("mobilenet_v2", ModelOptions().include_top(false));
  {
    model->eval();  // trainable parameters: nothing is frozen
    FoldedBatchNorms folded(*model);
    EXPECT_EQ(folded.count(), 0);
  }
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  model->train();  // frozen, but BatchNorm on batch statistics
  FoldedBatchNorms folded(*model);
  EXPECT_EQ(folded.count(), 0);
  EXPECT_THROW(fold_batch_norms(*model), vtl::Error);
}

}  // namespace
}  // namespace vtl::models

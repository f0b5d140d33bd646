#include <array>
#include <fstream>
#include <functional>
#include <map>

#include <gtest/gtest.h>

#include "data/small_png.h"
#include "train/clipart_fixture.h"
#include "train/small_train_data.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/registry.h"
#include "vtl/train/fit.h"
#include "vtl/train/freeze.h"
#include "vtl/train/run.h"
#include "vtl/train/trainer.h"

namespace vtl::train {
namespace {
namespace fs = std::filesystem;
using vtl::testing::TempDir;

/// Three visually distinct categories, 16 images each, as one tiny real-image set.
struct TinySet {
  TempDir dir{"vtl_tiny_set"};
  explicit TinySet(size_t per_class = 16) {
    vtl::testing::make_clipart_set(dir.path(), {"animals", "geography", "shapes"}, per_class);
  }
};

TrainData tiny_data(const fs::path& root, bool augment, int img_size = 32) {
  return vtl::testing::small_train_data(root, augment, img_size);
}

models::TransferModel tiny_model(int64_t classes = 3) {
  torch::manual_seed(0);
  auto base = models::create_model("resnet18", models::ModelOptions().include_top(false));
  return models::TransferModel(base, classes, 0.2);
}

bool same(const weights::StateDict& a, const weights::StateDict& b, const std::string& key) {
  return torch::equal(a.at(key), b.at(key));
}

// fastai's `ImageDataLoaders.from_name_re`: one folder, the class in each file name.
TEST(LoadImageFolder, TakesLabelsFromFileNames) {
  vtl::testing::TempDir dir("vtl_fit_names");
  for (int i = 0; i < 4; ++i) {
    vtl::testing::write_png(dir.path() / ("cat." + std::to_string(i) + ".png"), 20 + i);
    vtl::testing::write_png(dir.path() / ("dog." + std::to_string(i) + ".png"), 200 + i);
  }
  data::LabelSource labels;
  labels.name_pattern = R"(^(cat|dog)\.)";
  const auto images =
      load_image_folder(dir.path(), preset_for_size(Preprocessing{}, 16), 0.25, 0, 1, labels);
  EXPECT_EQ(images.train.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(images.train.class_counts(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(images.val.class_counts(), (std::vector<int64_t>{1, 1}));
  for (const auto& sample : images.val.samples)
    EXPECT_EQ(sample.path.filename().string().substr(0, 3),
              images.val.classes[size_t(sample.label)]);
  EXPECT_THROW(load_image_folder(dir.path(), preset_for_size(Preprocessing{}, 16)), Error)
      << "no class folders";
}

TEST(Trainer, FeaturesStrategyLeavesTheBaseBitIdentical) {
  VTL_REQUIRE_CLIPART();
  TinySet set;
  TempDir run("vtl_run_features");
  auto model = tiny_model();
  const auto before = model->export_state_dict();
  TrainConfig config;
  config.strategy = Strategy::features;
  config.epochs = 1;
  config.batch_size = 8;
  Trainer trainer(model, config, tiny_data(set.dir.path(), /*augment=*/true), run.path());
  trainer.show_progress = false;
  trainer.fit();
  EXPECT_FALSE(trainer.history().at(0).cached);  // augmentation on: no feature cache
  const auto after = model->export_state_dict();
  size_t base_keys = 0;
  for (const auto& [key, value] : before) {
    if (key.rfind("fc.", 0) == 0) {
      EXPECT_FALSE(same(before, after, key)) << key;
    } else {
      EXPECT_TRUE(same(before, after, key)) << key;  // weights and BN statistics
      ++base_keys;
    }
  }
  EXPECT_GT(base_keys, 100u);
}

TEST(Trainer, FinetuneChangesOnlyTheUnfrozenLayers) {
  VTL_REQUIRE_CLIPART();
  TinySet set;
  TempDir run("vtl_run_finetune");
  auto model = tiny_model();
  const auto before = model->export_state_dict();
  TrainConfig config;
  config.strategy = Strategy::finetune;
  config.epochs = 1;
  config.finetune_epochs = 1;
  config.finetune_lr = 1e-3;
  config.unfreeze = 4;  // layer4.1.conv1, layer4.1.bn1, layer4.1.conv2, layer4.1.bn2
  config.batch_size = 8;
  Trainer trainer(model, config, tiny_data(set.dir.path(), true), run.path());
  trainer.show_progress = false;
  trainer.fit();
  ASSERT_EQ(trainer.history().size(), 2u);
  EXPECT_EQ(trainer.history()[1].phase, 2);
  const auto after = model->export_state_dict();
  for (const auto& [key, value] : before) {
    const bool open_weight =
        key.rfind("layer4.1.", 0) == 0 &&
        (key.find(".weight") != std::string::npos || key.find(".bias") != std::string::npos);
    if (key.rfind("fc.", 0) == 0 || open_weight) {
      EXPECT_FALSE(same(before, after, key)) << key;
    } else {
      // Frozen layers, and the BN running statistics (BN in inference mode).
      EXPECT_TRUE(same(before, after, key)) << key;
    }
  }
}

/// Each parameter's change in one training call `train(model, ratio)` from the same
/// random resnet18 (3 classes), with learning-rate ratio 1 and `ratio`: {one rate, ratio}.
using ParameterChanges = std::map<std::string, torch::Tensor>;
std::array<ParameterChanges, 2> changes_with_ratio(
    double ratio, const std::function<void(models::TransferModel&, double)>& train) {
  std::array<ParameterChanges, 2> change;
  for (int run = 0; run < 2; ++run) {
    torch::manual_seed(0);
    models::TransferModel model(
        models::create_model("resnet18", models::ModelOptions().include_top(false)), 3, 0.0);
    const auto before = model->export_state_dict();
    train(model, run == 0 ? 1.0 : ratio);
    const auto after = model->export_state_dict();
    for (const auto& [key, value] : before) change[run][key] = after.at(key) - value;
  }
  return change;
}

/// Every listed parameter moved `scale` times as far with the ratio as with one rate (1 %).
void expect_scaled_changes(const std::array<ParameterChanges, 2>& change,
                           const std::vector<std::pair<std::string, double>>& expected) {
  for (const auto& [key, scale] : expected) {
    const double one_rate = change[0].at(key).norm().item<double>();
    ASSERT_GT(one_rate, 0) << key;
    EXPECT_NEAR(change[1].at(key).norm().item<double>() / one_rate, scale, 0.01 * scale) << key;
  }
}

TEST(Trainer, FinetuneLrRatioGivesEachUnfrozenLayerItsRate) {
  VTL_REQUIRE_CLIPART();
  TinySet set(8);
  const auto data = tiny_data(set.dir.path(), /*augment=*/false);
  // One plain SGD step of phase 2 from the same weights, with one rate and with ratio 100:
  // every layer's change is the same gradient times its rate.
  const auto change = changes_with_ratio(100, [&](models::TransferModel& model, double ratio) {
    TrainConfig config;
    config.strategy = Strategy::finetune;
    config.epochs = 0;
    config.finetune_epochs = 1;
    config.finetune_lr = 0.5;
    config.finetune_lr_ratio = ratio;
    config.unfreeze = 4;  // layer4.1.conv1, layer4.1.bn1, layer4.1.conv2, layer4.1.bn2
    config.optimizer = "sgd";
    config.momentum = 0;
    config.batch_size = 64;  // all 18 training images: one step
    Trainer trainer(model, config, data);
    trainer.show_progress = false;
    trainer.fit();
  });
  // Scales 100^-(4-g)/4 for the 4 layers, then 1 for the head.
  expect_scaled_changes(change, {{"layer4.1.conv1.weight", 0.01},
                                 {"layer4.1.bn1.weight", 0.0316228},
                                 {"layer4.1.conv2.weight", 0.1},
                                 {"layer4.1.bn2.bias", 0.316228},
                                 {"fc.weight", 1.0},
                                 {"fc.bias", 1.0}});
  EXPECT_EQ(change[1].at("layer4.0.conv2.weight").abs().max().item<double>(), 0);  // frozen
}

// The library's fit() takes the same ratio (FitOptions::lr_ratio) for whatever is trainable.
TEST(Trainer, FitLrRatioGivesEachTrainableLayerItsRate) {
  VTL_REQUIRE_CLIPART();
  TinySet set(8);
  const auto data = tiny_data(set.dir.path(), /*augment=*/false);
  const auto change = changes_with_ratio(100, [&](models::TransferModel& model, double ratio) {
    freeze_base(model);
    unfreeze_last(model, 2);  // layer4.1.conv2, layer4.1.bn2
    // SGD's first step with momentum is the plain gradient step; 18 images, one batch.
    fit(model, data,
        FitOptions().epochs(1).lr(0.5).optimizer("sgd").batch_size(64).lr_ratio(ratio));
  });
  expect_scaled_changes(
      change, {{"layer4.1.conv2.weight", 0.01}, {"layer4.1.bn2.weight", 0.1}, {"fc.weight", 1.0}});
  EXPECT_EQ(change[1].at("layer4.1.conv1.weight").abs().max().item<double>(), 0);  // frozen
}

TEST(Trainer, CachedFeaturesTrainTheSameHeadAsTheUncachedPath) {
  VTL_REQUIRE_CLIPART();
  TinySet set;
  auto data = tiny_data(set.dir.path(), /*augment=*/false);
  std::vector<EpochMetrics> runs[2];
  for (int cached = 0; cached < 2; ++cached) {
    TempDir run("vtl_run_cache");
    auto model = tiny_model();
    TrainConfig config;
    config.epochs = 3;
    config.batch_size = 8;
    config.lr = 3e-3;
    config.cache_features = cached ? "on" : "off";
    Trainer trainer(model, config, data, run.path());
    trainer.show_progress = false;
    trainer.fit();
    runs[cached] = trainer.history();
    EXPECT_EQ(runs[cached].back().cached, bool(cached));
  }
  for (size_t e = 0; e < runs[0].size(); ++e) {
    EXPECT_EQ(runs[0][e].val_acc, runs[1][e].val_acc) << "epoch " << e + 1;
    EXPECT_NEAR(runs[0][e].val_loss, runs[1][e].val_loss, 1e-4) << "epoch " << e + 1;
    EXPECT_NEAR(runs[0][e].train_loss, runs[1][e].train_loss, 1e-4) << "epoch " << e + 1;
  }
}

TEST(Trainer, TinyModelLearnsWellAboveChanceOnRealImages) {
  VTL_REQUIRE_CLIPART();
  TinySet set(32);  // 24 training + 8 validation images per class
  TempDir run("vtl_run_learn");
  auto model = tiny_model();
  TrainConfig config;
  config.strategy = Strategy::full;
  config.epochs = 10;
  config.batch_size = 8;
  config.lr = 1e-3;
  Trainer trainer(model, config, tiny_data(set.dir.path(), /*augment=*/false), run.path());
  trainer.show_progress = false;
  trainer.fit();
  const auto result = trainer.evaluate_validation();
  EXPECT_EQ(result.count, 24);
  // Chance is 1/3; the same settings through `vtl train` measured 0.625 (15 of 24).
  EXPECT_GE(result.top1, 0.55) << "validation accuracy " << result.top1;
  EXPECT_LT(trainer.history().back().train_loss, trainer.history().front().train_loss);
  EXPECT_TRUE(fs::exists(run.path() / "checkpoint" / "last.pt"));
  std::ifstream csv(run.path() / "metrics.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 1 + 10);
}

// Validation and `vtl evaluate --amp bf16` run under autocast: close to float32, not equal.
TEST(Evaluate, Bf16AutocastIsCloseToFloat32) {
  TinySet set(6);
  auto d = tiny_data(set.dir.path(), false, 64);
  auto model = tiny_model();
  data::LoaderOptions options;
  options.batch_size = 8;
  options.preprocessing = d.preprocessing;
  data::Loader loader(d.train, d.store, options);
  const auto f32 = evaluate(model, loader, torch::kCPU, models::Precision::f32);
  const auto bf16 = evaluate(model, loader, torch::kCPU, models::Precision::bf16);
  ASSERT_EQ(f32.count, int64_t(d.train.samples.size()));
  ASSERT_EQ(bf16.count, f32.count);
  EXPECT_NE(bf16.loss, f32.loss) << "bf16 autocast did not change any logit";
  EXPECT_NEAR(bf16.loss, f32.loss, 0.05 * std::abs(f32.loss) + 0.01);
  const auto a = torch::ones({2, 2});
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat32) << "autocast must end with evaluate()";
}

TEST(ModelFolder, SaveAndLoadGiveTheSameOutputs) {
  TempDir dir("vtl_model_folder");
  auto model = tiny_model(4);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->head->parameters()) p.uniform_(-0.5, 0.5);
  }
  models::ModelFolderInfo info;
  info.class_names = {"a", "b", "c", "d"};
  info.preprocessing = preset_for_size(Preprocessing{}, 48);
  info.training = {{"epochs", 3}};
  models::save_model_folder(dir.path(), model, info);
  EXPECT_TRUE(fs::exists(dir.path() / "model.safetensors"));
  auto loaded = models::load_model_folder(dir.path());
  EXPECT_EQ(loaded.architecture, "resnet18");
  EXPECT_EQ(loaded.class_names, info.class_names);
  EXPECT_EQ(loaded.preprocessing.crop, 48);
  EXPECT_EQ(loaded.json["training"]["epochs"], 3);
  EXPECT_FALSE(loaded.model->is_training());
  model->eval();
  auto x = torch::randn({2, 3, 48, 48});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(model->forward(x), loaded.model->forward(x), 1e-5, 1e-6));
  // torchvision names: resnet's head is "fc" so torchvision loads the file strictly.
  auto state = model->export_state_dict();
  EXPECT_TRUE(state.count("fc.weight"));
  EXPECT_TRUE(state.count("layer4.1.bn2.running_var"));
  EXPECT_TRUE(state.count("bn1.num_batches_tracked"));
  // A folder with weights of another class count is refused, naming the file.
  info.class_names = {"a", "b", "c"};
  std::ofstream(dir.path() / "model.json.tmp") << "";
  auto json = loaded.json;
  json["class_names"] = {"a", "b", "c"};
  json["head"]["num_classes"] = 3;
  std::ofstream(dir.path() / "model.json") << json.dump();
  try {
    models::load_model_folder(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  // Folded for inference, the weights are no longer the architecture's: not saved.
  model->eval();
  models::fold_batch_norms(*model);
  info.class_names = {"a", "b", "c", "d"};
  EXPECT_THROW(models::save_model_folder(dir.path() / "folded", model, info), Error);
  EXPECT_FALSE(fs::exists(dir.path() / "folded" / "model.safetensors"));
}

// fit() as a library caller may misuse it: a head of the wrong size is a clear error, and
// a NoGradGuard of the caller's does not stop it from training.
TEST(Fit, AHeadOfAnotherSizeIsRefusedAndACallersNoGradGuardIsOverridden) {
  VTL_REQUIRE_CLIPART();
  TinySet set(4);
  const TrainData data = tiny_data(set.dir.path(), /*augment=*/false);
  auto two = tiny_model(2);
  try {
    fit(two, data, FitOptions().epochs(1));
    FAIL() << "a 2-output head trained on 3 classes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head has 2 outputs and the data has 3 classes"),
              std::string::npos)
        << e.what();
  }
  auto model = tiny_model(3);
  const auto before = model->head->parameters().front().clone();
  torch::NoGradGuard callers_guard;
  const auto history = fit(model, data, FitOptions().epochs(1).batch_size(4));
  EXPECT_EQ(history.size(), 1u);
  EXPECT_FALSE(torch::equal(model->head->parameters().front(), before));
  EXPECT_FALSE(torch::GradMode::is_enabled());  // the caller's mode is given back
}

}  // namespace
}  // namespace vtl::train

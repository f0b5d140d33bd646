#include <gtest/gtest.h>

#include "train/clipart_fixture.h"
#include "train/small_train_data.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/models/registry.h"
#include "vtl/train/mixed_precision.h"
#include "vtl/train/run.h"
#include "vtl/train/trainer.h"

namespace vtl::train {
namespace {
namespace fs = std::filesystem;
using vtl::testing::TempDir;

TEST(MixedPrecision, AutocastScopeLowersMatmulsOnlyInsideAndRestoresOnExit) {
  const auto a = torch::randn({4, 8}), b = torch::randn({8, 2});
  {
    AutocastScope outer(Precision::bf16, torch::kCPU);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope off(Precision::f32, torch::kCPU);  // f32 leaves the outer scope alone
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
}

TEST(MixedPrecision, LossScalerSkipsOverflowsAndGrowsAfterFiniteSteps) {
  LossScaler scaler(true);
  ASSERT_EQ(scaler.scale(), 65536.0);
  auto w = torch::ones({3}, torch::requires_grad());
  scaler.scaled((w * 2).sum()).backward();
  EXPECT_TRUE(scaler.unscale({w}));
  EXPECT_TRUE(torch::allclose(w.grad(), torch::full({3}, 2.0)));  // unscaled gradient
  w.mutable_grad().fill_(std::numeric_limits<float>::infinity());
  EXPECT_FALSE(scaler.unscale({w}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 32768.0);
  for (int i = 0; i < 2000; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 65536.0);
  LossScaler restored(true);
  restored.load_state(scaler.state());
  EXPECT_EQ(restored.scale(), scaler.scale());
  LossScaler off;  // disabled: a pass-through
  EXPECT_EQ(off.scaled(torch::tensor(3.0)).item<double>(), 3.0);
}

TEST(MixedPrecision, PrecisionNamesAndDevices) {
  EXPECT_EQ(parse_precision("off"), Precision::f32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(parse_precision("fp16"), Precision::fp16);
  EXPECT_THROW(parse_precision("fp8"), Error);
  EXPECT_NO_THROW(check_precision_supported(Precision::bf16, torch::kCPU));
  try {
    check_precision_supported(Precision::fp16, torch::kCPU);
    FAIL() << "fp16 on the CPU was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda"), std::string::npos) << e.what();
  }
}

TrainData tiny_data(const fs::path& root) {
  return vtl::testing::small_train_data(root, /*augment=*/false);
}

/// Full training with mixed precision and NHWC on `device`: finite losses that fall,
/// float32 parameters throughout.
void train_mixed(const std::string& device, const std::string& amp) {
  TempDir images("vtl_amp_set"), run("amp_run");
  vtl::testing::make_clipart_set(images.path(), {"animals", "geography", "shapes"}, 12);
  torch::manual_seed(0);
  auto base = models::create_model("resnet18", models::ModelOptions().include_top(false));
  models::TransferModel model(base, 3, 0.0);
  TrainConfig config;
  config.strategy = Strategy::full;
  config.epochs = 3;
  config.batch_size = 9;
  config.device = device;
  config.amp = amp;
  config.channels_last = true;
  Trainer trainer(model, config, tiny_data(images.path()), run.path());
  trainer.show_progress = false;
  trainer.fit();
  for (const auto& m : trainer.history()) {
    EXPECT_TRUE(std::isfinite(m.train_loss)) << "epoch " << m.epoch;
    EXPECT_TRUE(std::isfinite(m.val_loss)) << "epoch " << m.epoch;
  }
  EXPECT_LT(trainer.history().back().train_loss, trainer.history().front().train_loss);
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  // The checkpoint resumes with the same settings.
  EXPECT_TRUE(fs::exists(run.path() / "checkpoint" / "last.pt"));
}

TEST(MixedPrecision, Bf16ChannelsLastTrainingOnTheCpu) {
  VTL_REQUIRE_CLIPART();
  train_mixed("cpu", "bf16");
}

TEST(MixedPrecision, Fp16TrainingOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  VTL_REQUIRE_CLIPART();
  train_mixed("cuda", "fp16");
}

}  // namespace
}  // namespace vtl::train

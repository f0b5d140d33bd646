// The learning-rate range test: its suggestions on curves of known shape, and the test run
// by the trainer on real images (weights given back, the suggested rate trains).

#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "train/clipart_fixture.h"
#include "train/small_train_data.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/models/registry.h"
#include "vtl/train/fit.h"
#include "vtl/train/freeze.h"
#include "vtl/train/lr_finder.h"
#include "vtl/train/run.h"
#include "vtl/train/trainer.h"

namespace vtl::train {
namespace {
namespace fs = std::filesystem;
using vtl::testing::TempDir;

/// `steps` learning rates from 1e-7 to 10, as the range test takes them, and a smoothed loss
/// that is flat at 2.3 up to 1e-5, falls as a half cosine to 0.5 at 1e-2 (steepest at
/// 10^-3.5) and then climbs steeply.
LrRangeResult valley_curve(int steps = 100) {
  LrRangeResult curve;
  for (int i = 0; i < steps; ++i) {
    const double log_lr = -7.0 + 8.0 * i / (steps - 1);
    double loss = 2.3;
    if (log_lr > -5 && log_lr <= -2) loss = 0.5 + 0.9 * (1 + std::cos(M_PI * (log_lr + 5) / 3));
    if (log_lr > -2) loss = 0.5 + 3.0 * (log_lr + 2);
    curve.lrs.push_back(std::pow(10.0, log_lr));
    curve.losses.push_back(loss);
    curve.smoothed.push_back(loss);
  }
  return curve;
}

TEST(LrFinder, SuggestionsOnACurveOfKnownShape) {
  auto curve = valley_curve();
  suggest_learning_rates(curve, 100);
  // Steepest descent at 10^-3.5, within one step (8/99 decades).
  EXPECT_NEAR(std::log10(curve.steep), -3.5, 0.09);
  // The lowest loss is at 1e-2; a tenth of it.
  EXPECT_NEAR(std::log10(curve.minimum), -3.0, 0.09);
  // The valley: inside the falling stretch (1e-5 .. 1e-2), past its first third.
  EXPECT_GT(std::log10(curve.valley), -4.0);
  EXPECT_LT(std::log10(curve.valley), -2.0);
}

TEST(LrFinder, SuggestionsLeaveOutTheWarmUpTheBlowUpAndWhatIsNotFinite) {
  // The loss dips lowest in the first tenth (optimizer warm-up noise): not the minimum.
  auto curve = valley_curve();
  for (int i = 0; i < 10; ++i) curve.smoothed[size_t(i)] = 0.01;
  suggest_learning_rates(curve, 100);
  EXPECT_NEAR(std::log10(curve.minimum), -3.0, 0.09);

  // A NaN at 1e-3 ends what is considered: the minimum is the last finite point before it.
  auto broken = valley_curve();
  for (size_t i = 0; i < broken.lrs.size(); ++i)
    if (broken.lrs[i] > 1e-3) broken.smoothed[i] = std::nan("");
  suggest_learning_rates(broken, 100);
  EXPECT_GT(broken.minimum, 0);
  EXPECT_LE(broken.minimum, 1e-4 * 1.0001);

  // Too few points: no suggestion.
  auto short_curve = valley_curve(12);
  suggest_learning_rates(short_curve, 100);
  EXPECT_EQ(short_curve.valley, 0);
  EXPECT_EQ(short_curve.steep, 0);
  EXPECT_NE(render_lr_curve_text(short_curve).find("too few steps"), std::string::npos);
}

TEST(LrFinder, TextCurveAndFiles) {
  auto curve = valley_curve();
  suggest_learning_rates(curve, 100);
  const auto text = render_lr_curve_text(curve, 9);
  EXPECT_NE(text.find("1.0e-07"), std::string::npos) << text;
  EXPECT_NE(text.find("1.0e+01"), std::string::npos) << text;
  EXPECT_NE(text.find(fmt::format("{:.1e} (fastai's valley)", curve.valley)), std::string::npos)
      << text;
  // Bars: the highest loss (at 10) gets the longest bar.
  EXPECT_NE(text.find(std::string(40, '#')), std::string::npos) << text;

  TempDir dir("vtl_lr_find_files");
  write_lr_range_files(dir.path() / "out", curve, "test <curve>");
  std::ifstream csv(dir.path() / "out" / "lr_find.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 101);
  std::ifstream html_file(dir.path() / "out" / "lr_find.html");
  const std::string html((std::istreambuf_iterator<char>(html_file)), {});
  EXPECT_NE(html.find("test &lt;curve&gt;"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("valley"), std::string::npos);
}

TEST(LrFinder, OptionsAreChecked) {
  LrRangeOptions options;
  options.end_lr = options.start_lr;
  EXPECT_THROW(options.validate(), Error);
  options = {};
  options.steps = 3;
  EXPECT_THROW(options.validate(), Error);
  options = {};
  options.smoothing = 1;
  EXPECT_THROW(options.validate(), Error);
}

/// 3 classes of real images at 32 px: 36 to train, 12 to validate.
TrainData clipart_data(const fs::path& root, bool augment) {
  vtl::testing::make_clipart_set(root, {"animals", "geography", "shapes"}, 16);
  return vtl::testing::small_train_data(root, augment);
}

models::TransferModel clipart_model() {
  torch::manual_seed(0);
  return models::TransferModel(
      models::create_model("resnet18", models::ModelOptions().include_top(false)), 3, 0.0);
}

/// 3 classes a random base tells apart (mostly red, green or blue, with noise), 16 images
/// each, as in clipart_data.
TrainData colour_data(const fs::path& root) {
  cv::RNG rng(7);
  const std::vector<std::string> names = {"blue", "green", "red"};
  for (size_t c = 0; c < names.size(); ++c) {
    fs::create_directories(root / names[c]);
    for (int i = 0; i < 16; ++i) {
      cv::Mat image(40, 40, CV_8UC3);
      rng.fill(image, cv::RNG::UNIFORM, 0, 120);
      std::vector<cv::Mat> channels;
      cv::split(image, channels);
      channels[c] += 100 + 10 * (i % 5);  // BGR order: blue, green, red
      cv::merge(channels, image);
      cv::imwrite((root / names[c] / fmt::format("{:02d}.png", i)).string(), image);
    }
  }
  return vtl::testing::small_train_data(root, /*augment=*/false);
}

TEST(LrFinder, RangeTestGivesTheWeightsBackAndItsSuggestionTrains) {
  TempDir dir("vtl_lr_find_data");
  const auto data = colour_data(dir.path());
  auto model = clipart_model();
  freeze_base(model);
  const auto before = model->export_state_dict();

  LrRangeOptions range;
  range.steps = 60;
  const auto curve = find_lr(model, data, FitOptions().batch_size(8), range);
  for (const auto& [key, value] : before)
    EXPECT_TRUE(torch::equal(value, model->export_state_dict().at(key))) << key;
  ASSERT_GE(curve.lrs.size(), 6u);
  EXPECT_DOUBLE_EQ(curve.lrs.front(), 1e-7);
  const double ratio = std::pow(10.0 / 1e-7, 1.0 / 59);
  for (size_t i = 1; i < curve.lrs.size(); ++i)
    EXPECT_NEAR(curve.lrs[i] / curve.lrs[i - 1], ratio, 1e-9);
  ASSERT_GT(curve.valley, 1e-7);
  ASSERT_LT(curve.valley, 10);

  // Three epochs at the suggested rate end lower than at rates 1000x below and above it
  // (measured: 0.40 against 1.19 and 5.3).
  auto final_loss = [&](double lr) {
    auto trial = clipart_model();
    freeze_base(trial);
    return fit(trial, data, FitOptions().batch_size(8).epochs(3).lr(lr)).back().train_loss;
  };
  const double suggested = final_loss(curve.valley);
  EXPECT_LT(suggested, final_loss(curve.valley / 1000)) << "valley " << curve.valley;
  EXPECT_LT(suggested, final_loss(curve.valley * 1000)) << "valley " << curve.valley;
}

TEST(LrFinder, FineTuningPhaseRunsOnImagesOverSeveralPassesAndChangesNothing) {
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_lr_find_finetune");
  const auto data = clipart_data(dir.path(), /*augment=*/true);
  auto model = clipart_model();
  const auto before = model->export_state_dict();
  TrainConfig config;
  config.strategy = Strategy::finetune;
  config.unfreeze = 4;
  config.batch_size = 8;  // 36 images: 5 batches a pass
  config.train_bn = true;
  Trainer trainer(model, config, data);
  trainer.show_progress = false;
  LrRangeOptions range;
  range.steps = 12;
  range.divergence = 1e9;  // every planned step runs
  const auto curve = trainer.find_lr(range, 2);
  EXPECT_EQ(curve.phase, 2);
  EXPECT_EQ(curve.lrs.size(), 12u);
  EXPECT_FALSE(curve.diverged);
  for (double loss : curve.losses) EXPECT_TRUE(std::isfinite(loss));
  for (const auto& [key, value] : before)
    EXPECT_TRUE(torch::equal(value, model->export_state_dict().at(key))) << key;
  EXPECT_THROW(trainer.find_lr(range, 3), Error);
}

}  // namespace
}  // namespace vtl::train

#include "vtl/train/fit.h"

#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/splits.h"

namespace vtl::train {

TrainData load_image_folder(const std::filesystem::path& root, const Preprocessing& preprocessing,
                            double val_fraction, uint64_t seed, int workers,
                            const data::LabelSource& labels) {
  VTL_CHECK(val_fraction > 0 && val_fraction < 1,
            "the validation fraction must be between 0 and 1 (got {})", val_fraction);
  TrainData out;
  auto split = data::open_training_split(root, {}, val_fraction, seed, labels);
  out.train = std::move(split.train);
  out.val = std::move(split.validation);
  VTL_CHECK(out.train.classes.size() >= 2, "{}: need at least 2 classes, found {}", root.string(),
            out.train.classes.size());
  out.store = std::make_shared<data::ImageStore>(data::DecodeOptions{}, preprocessing.resize);
  out.store->prepare(out.train, workers);
  out.store->prepare(out.val, workers);
  VTL_CHECK(!out.val.samples.empty(),
            "{}: no validation images; each class needs 2 or more readable images", root.string());
  out.preprocessing = preprocessing;
  out.augment = data::AugmentOptions::none();
  out.workers = workers;
  return out;
}

namespace {

/// The trainer configuration of one fit() call.
TrainConfig config_of(const FitOptions& options) {
  TrainConfig config;
  config.strategy = Strategy::trainable;
  config.epochs = options.epochs();
  config.lr = options.lr();
  config.finetune_lr_ratio = options.lr_ratio();
  config.optimizer = options.optimizer();
  config.batch_size = options.batch_size();
  config.train_bn = options.train_bn();
  config.seed = options.seed();
  config.device = options.device();
  return config;
}

}  // namespace

std::vector<EpochMetrics> fit(models::TransferModel& model, const TrainData& data,
                              const FitOptions& options) {
  Trainer trainer(model, config_of(options), data);
  trainer.on_epoch = options.on_epoch();
  trainer.fit();
  model->eval();
  return trainer.history();
}

LrRangeResult find_lr(models::TransferModel& model, const TrainData& data,
                      const FitOptions& options, const LrRangeOptions& range) {
  Trainer trainer(model, config_of(options), data);
  trainer.show_progress = false;
  auto result = trainer.find_lr(range);
  model->eval();
  return result;
}

}  // namespace vtl::train

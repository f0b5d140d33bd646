#pragma once
// Training data for trainer tests: a class tree split and decoded as vtl train would.

#include <filesystem>

#include "vtl/data/dataset.h"
#include "vtl/train/run.h"
#include "vtl/train/trainer.h"

namespace vtl::testing {

/// The class tree at `root`: a quarter of each class validates (stratified, seed 0), the
/// rest trains; decoded for `img_size`-pixel crops; augmentation on (the defaults) or off.
inline train::TrainData small_train_data(const std::filesystem::path& root, bool augment,
                                         int img_size = 32) {
  auto [train_set, val_set] = data::split_stratified(data::scan_class_folders(root), 0.25, 0);
  train::TrainData d;
  d.preprocessing = train::preset_for_size(Preprocessing{}, img_size);
  d.store = std::make_shared<data::ImageStore>(data::DecodeOptions{}, d.preprocessing.resize);
  d.store->prepare(train_set, 2);
  d.store->prepare(val_set, 2);
  d.train = train_set;
  d.val = val_set;
  d.augment = augment ? data::AugmentOptions{} : data::AugmentOptions::none();
  return d;
}

}  // namespace vtl::testing

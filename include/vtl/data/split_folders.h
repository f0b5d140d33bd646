#pragma once
// Datasets laid out as `root/train/<class>/...`, `root/val/<class>/...`,
// `root/test/<class>/...` (Kaggle, Keras' image_dataset_from_directory, fastai): the
// split folders are recognised so that "train" and "val" are not taken for classes.

#include <filesystem>
#include <optional>

namespace vtl::data {

/// The split folders of a root; `validation` and `test` are empty when absent.
struct SplitFolders {
  std::filesystem::path train;
  std::filesystem::path validation;
  std::filesystem::path test;
};

/// The split folders of `root` when every visible subfolder of `root` is named as a split
/// (train|training; val|valid|validation|dev; test|testing; any case) and the training
/// folder holds class folders. A validation or test folder without class folders (e.g.
/// Kaggle's unlabelled test/) is not used. Anything else, a CSV file included, is not a
/// split layout: std::nullopt. Other folders beside train/ and a val/ or test/ class tree
/// throw vtl::Error naming them (read as classes, the test images would be trained on).
std::optional<SplitFolders> find_split_folders(const std::filesystem::path& root);

}  // namespace vtl::data

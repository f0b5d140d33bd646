#pragma once
// Which images of a dataset path train, validate and test, whichever way the path says it:
// split folders (`root/{train,val,test}/<class>/`, split_folders.h), a CSV split column
// (fastai's `is_valid`, or `split`: dataset.h), an explicit validation path, or else a
// stratified fraction of each class.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vtl/data/dataset.h"

namespace vtl::data {

struct TrainingSplit {
  Dataset train, validation;
  /// How the split was made, for the log ("DATA: split folders: training on ..."); empty
  /// for a plain stratified split.
  std::string description;
};

/// The images to train and validate on from `root`:
/// - split folders: train/, and val/ (else `val_fraction` of train/); test/ is left out;
/// - a CSV with a split column: the rows marked train, and those marked valid (else
///   `val_fraction` of the train rows); test rows are left out;
/// - otherwise all of `root`, with `val_fraction` of each class (seeded with `seed`) for
///   validation.
/// A non-empty `validation_path` (a class tree or CSV, read with the training classes)
/// replaces the validation part in every case. `source` says where labels are (see
/// LabelSource), for `root` and `validation_path` alike. Throws vtl::Error as open_dataset
/// does.
TrainingSplit open_training_split(const std::filesystem::path& root,
                                  const std::filesystem::path& validation_path, double val_fraction,
                                  uint64_t seed, const LabelSource& source = {});

struct EvaluationSet {
  Dataset images;
  std::filesystem::path source;  ///< the split folder chosen, or the path given
  std::string description;       ///< as TrainingSplit's; empty when all of the path is used
};

/// The images to evaluate a model on from `path`, labelled with `classes`: split folders'
/// test/ (else val/, else train/), a CSV's test rows (else its valid rows), or all of it;
/// `source` as for open_training_split.
EvaluationSet open_evaluation_set(const std::filesystem::path& path,
                                  const std::vector<std::string>& classes,
                                  const LabelSource& source = {});

}  // namespace vtl::data

#include "vtl/data/splits.h"

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/data/split_folders.h"

namespace vtl::data {
namespace fs = std::filesystem;

namespace {

size_t count_marked(const Dataset& dataset, Split split) {
  size_t count = 0;
  for (const auto& sample : dataset.samples) count += sample.split == split;
  return count;
}

/// What validates when no folder or column says: `val_fraction` of each class, or nothing.
std::string held_out(double val_fraction) {
  return val_fraction > 0 ? fmt::format("{:g} of each class", val_fraction)
                          : std::string("nothing (--val-split 0)");
}

}  // namespace

TrainingSplit open_training_split(const fs::path& root, const fs::path& validation_path,
                                  double val_fraction, uint64_t seed, const LabelSource& source) {
  TrainingSplit out;
  fs::path train_path = root, val_path = validation_path;
  if (const auto folders = source.name_pattern.empty() ? find_split_folders(root) : std::nullopt) {
    train_path = folders->train;
    if (val_path.empty()) val_path = folders->validation;
    out.description = fmt::format(
        "{}: split folders: training on {}, validating on {}{}", root.string(), train_path.string(),
        val_path.empty() ? held_out(val_fraction) : val_path.string(),
        folders->test.empty()
            ? std::string()
            : fmt::format(" ({} is left for `vtl evaluate`)", folders->test.string()));
  }
  Dataset all = open_dataset(train_path, {}, source);
  if (all.marks_splits) {
    const size_t marked_val = count_marked(all, Split::validation);
    const size_t marked_test = count_marked(all, Split::test);
    const bool use_marked_val = val_path.empty() && marked_val > 0;
    out.description = fmt::format(
        "{}: split column: training on the {} rows marked train, validating on {}{}", root.string(),
        count_marked(all, Split::train),
        !val_path.empty() ? val_path.string()
        : use_marked_val  ? fmt::format("the {} rows marked valid", marked_val)
                          : held_out(val_fraction) + " (no row is marked valid)",
        marked_test ? fmt::format(" ({} test rows are left for `vtl evaluate`)", marked_test)
                    : std::string());
    Dataset marked_train = select_split(all, Split::train);
    VTL_CHECK(!marked_train.samples.empty(), "{}: no row is marked train in its split column",
              root.string());
    if (use_marked_val) {
      out.validation = select_split(all, Split::validation);
      out.train = std::move(marked_train);
      return out;
    }
    all = std::move(marked_train);
  }
  if (!val_path.empty()) {
    out.train = std::move(all);
    out.validation = open_dataset(val_path, out.train.classes, source);
  } else {
    std::tie(out.train, out.validation) = split_stratified(all, val_fraction, seed);
  }
  return out;
}

EvaluationSet open_evaluation_set(const fs::path& path, const std::vector<std::string>& classes,
                                  const LabelSource& source) {
  EvaluationSet out;
  if (const auto folders = source.name_pattern.empty() ? find_split_folders(path) : std::nullopt) {
    const fs::path& chosen = !folders->test.empty()         ? folders->test
                             : !folders->validation.empty() ? folders->validation
                                                            : folders->train;
    out.description =
        fmt::format("{}: split folders: evaluating on {}{}", path.string(), chosen.string(),
                    folders->test.empty() && folders->validation.empty()
                        ? " (the training images: there is no val/ or test/)"
                        : "");
    out.images = open_dataset(chosen, classes, source);
    out.source = chosen;
    return out;
  }
  out.images = open_dataset(path, classes, source);
  out.source = path;
  if (out.images.marks_splits) {
    const Split split = count_marked(out.images, Split::test) > 0         ? Split::test
                        : count_marked(out.images, Split::validation) > 0 ? Split::validation
                                                                          : Split::train;
    out.images = select_split(out.images, split);
    out.description = fmt::format("{}: split column: evaluating on the {} rows marked {}{}",
                                  path.string(), out.images.samples.size(),
                                  split == Split::validation ? "valid" : to_string(split),
                                  split == Split::train ? " (no row is marked test or valid)" : "");
  }
  return out;
}

}  // namespace vtl::data

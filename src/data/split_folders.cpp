#include "vtl/data/split_folders.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"
#include "vtl/core/text.h"
#include "vtl/data/dataset.h"

namespace vtl::data {
namespace fs = std::filesystem;

std::optional<SplitFolders> find_split_folders(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return std::nullopt;
  SplitFolders folders;
  bool any_subfolder = false;
  bool ambiguous = false;  // two folders for one split (train/ and Training/)
  std::vector<std::string> others;
  fs::path csv;  // a CSV list beside the folders (Kaggle's labels.csv), if any
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (csv.empty() && entry.is_regular_file(ec) &&
        lowercase(entry.path().extension().string()) == ".csv")
      csv = entry.path();
    if (is_hidden_name(name) || !entry.is_directory(ec) || !vtl_output_marker(entry.path()).empty())
      continue;
    any_subfolder = true;
    const auto split = split_named(name);
    if (!split) {
      others.push_back(name);
      continue;
    }
    fs::path& slot = *split == Split::train        ? folders.train
                     : *split == Split::validation ? folders.validation
                                                   : folders.test;
    if (!slot.empty()) ambiguous = true;
    slot = entry.path();
  }
  // Kaggle's layout: train/ holds the images flat and a CSV beside it their labels
  // (labels.csv: id,breed). Read as a class tree, train/ and test/ would be the classes.
  VTL_CHECK(ambiguous || csv.empty() || folders.train.empty() || has_subfolders(folders.train),
            "{}: {}/ holds images without class folders, and {} beside it may list their "
            "labels: give the CSV as DATA ({}), or sort the images into one folder per class",
            root.string(), folders.train.filename().string(), csv.filename().string(),
            csv.string());
  if (ambiguous || !any_subfolder || folders.train.empty() || !has_subfolders(folders.train))
    return std::nullopt;
  if (!folders.validation.empty() && !has_subfolders(folders.validation))
    folders.validation.clear();
  if (!folders.test.empty() && !has_subfolders(folders.test)) folders.test.clear();
  if (!others.empty()) {
    // A class tree whose classes happen to include "train" is a plain tree; but train/
    // beside val/ or test/ class trees is a split layout with a stray folder, which as a
    // plain tree would train on the test images.
    std::sort(others.begin(), others.end());
    VTL_CHECK(folders.validation.empty() && folders.test.empty(),
              "{}: holds split folders ({}{}{}) and also {}/: move {} out (or into the split "
              "folders), so that the split folders are not read as classes",
              root.string(), folders.train.filename().string(),
              folders.validation.empty() ? "" : ", " + folders.validation.filename().string(),
              folders.test.empty() ? "" : ", " + folders.test.filename().string(),
              fmt::format("{}", fmt::join(others, "/, ")), others.size() == 1 ? "it" : "them");
    return std::nullopt;
  }
  return folders;
}

}  // namespace vtl::data

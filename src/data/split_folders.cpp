#include "vtl/data/split_folders.h"

#include <string>

#include "vtl/data/dataset.h"

namespace vtl::data {
namespace fs = std::filesystem;

std::optional<SplitFolders> find_split_folders(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return std::nullopt;
  SplitFolders folders;
  bool any_subfolder = false;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_hidden_name(name) || !entry.is_directory(ec)) continue;
    any_subfolder = true;
    const auto split = split_named(name);
    if (!split) return std::nullopt;  // a class folder: a plain class tree
    fs::path& slot = *split == Split::train        ? folders.train
                     : *split == Split::validation ? folders.validation
                                                   : folders.test;
    // Two folders for one split (train/ and Training/) is ambiguous: not a split layout.
    if (!slot.empty()) return std::nullopt;
    slot = entry.path();
  }
  if (!any_subfolder || folders.train.empty() || !has_subfolders(folders.train))
    return std::nullopt;
  if (!folders.validation.empty() && !has_subfolders(folders.validation))
    folders.validation.clear();
  if (!folders.test.empty() && !has_subfolders(folders.test)) folders.test.clear();
  return folders;
}

}  // namespace vtl::data

#pragma once
// Small real images for embedding, search and serving tests: 12 clip-art PNGs (RGBA,
// 129-600 px) from Debian's openclipart-png, four in each of three classes.

#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "vtl/embed/extract.h"

namespace vtl::testing {

namespace fs = std::filesystem;

inline const fs::path& clipart_root() {
  static const fs::path root = "/usr/share/openclipart/png";
  return root;
}

inline const std::vector<std::string>& sample_classes() {
  static const std::vector<std::string> classes = {"bugs", "fruit", "homes"};
  return classes;
}

/// Relative paths under clipart_root(), four per class in sample_classes() order.
inline const std::vector<std::vector<std::string>>& sample_files() {
  static const std::vector<std::vector<std::string>> files = {
      {"animals/bugs/spider.png", "animals/bugs/ladybug_01.png",
       "animals/bugs/farfalla_butterfly_fra1.png", "animals/bugs/farfalla_semplice_archit_01.png"},
      {"food/fruit/orange_simple.png", "food/fruit/an_apple_01.png", "food/fruit/peach_simple.png",
       "food/fruit/apple_wedge.png"},
      {"buildings/homes/home13.png", "buildings/homes/pinkhome3.png",
       "buildings/homes/pinkhome-simple.png", "buildings/homes/casa_verde_architetto_fr_01.png"}};
  return files;
}

inline bool have_sample_images() {
  for (const auto& group : sample_files())
    for (const auto& file : group)
      if (!fs::exists(clipart_root() / file)) return false;
  return true;
}

/// Labelled items (absolute paths), `per_class` of each class, grouped by class.
inline std::vector<embed::ImageItem> sample_items(size_t per_class = 4) {
  std::vector<embed::ImageItem> items;
  for (size_t c = 0; c < sample_files().size(); ++c)
    for (size_t i = 0; i < per_class && i < sample_files()[c].size(); ++i)
      items.push_back(
          {clipart_root() / sample_files()[c][i], static_cast<int64_t>(c), sample_classes()[c]});
  return items;
}

/// Copies the samples into `root/<class>/<file>` (a class-folder dataset).
inline void make_class_tree(const fs::path& root, size_t per_class = 4) {
  for (const auto& item : sample_items(per_class)) {
    fs::create_directories(root / item.class_name);
    fs::copy_file(item.path, root / item.class_name / item.path.filename(),
                  fs::copy_options::overwrite_existing);
  }
}

}  // namespace vtl::testing

#pragma once
// Small real images for embedding, search and serving tests: 12 clip-art PNGs (RGBA,
// 129-600 px) from Debian's openclipart-png, four in each of three classes.

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

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

/// A fresh folder under the temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              (name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  fs::path path_;
};

/// Runs a shell command, returns its exit status and fills `output` with stdout+stderr.
inline int run_command(const std::string& command, std::string* output = nullptr) {
  std::string text;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  const int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace vtl::testing

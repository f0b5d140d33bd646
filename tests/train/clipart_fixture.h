#pragma once
// A tiny real-image class-folder set for the data/train/CLI tests: symbolic links to a
// few of Debian's openclipart-png images (RGBA, symlinked duplicates and all), built in a
// temporary folder. Tests skip when the package is not installed.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "temp_dir.h"
#include "vtl/data/image.h"

namespace vtl::testing {

inline const std::filesystem::path kClipart = "/usr/share/openclipart/png";

/// Links the first `per_class` images (sorted, recursive; top-level files first) of each
/// openclipart category into `dir/<category>/`.
inline void make_clipart_set(const std::filesystem::path& dir,
                             const std::vector<std::string>& categories, size_t per_class) {
  namespace fs = std::filesystem;
  for (const auto& category : categories) {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(kClipart / category);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file() && !it->is_symlink() && data::has_image_extension(it->path()) &&
          fs::file_size(it->path()) < 300000)
        files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    files.resize(std::min(files.size(), per_class));
    fs::create_directories(dir / category);
    for (const auto& file : files) fs::create_symlink(file, dir / category / file.filename());
  }
}

#define VTL_REQUIRE_CLIPART()                                                            \
  do {                                                                                   \
    if (!std::filesystem::exists(::vtl::testing::kClipart / "animals"))                  \
      GTEST_SKIP() << "openclipart-png is not installed (scripts/install-deps.sh does)"; \
  } while (false)

}  // namespace vtl::testing

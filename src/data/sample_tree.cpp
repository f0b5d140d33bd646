#include "vtl/data/sample_tree.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/loader.h"

namespace vtl::data {
namespace fs = std::filesystem;

int64_t link_sample_tree(const fs::path& source_root, const std::vector<std::string>& categories,
                         int64_t per_class, uint64_t seed, const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  int64_t total = 0;
  for (const auto& category : categories) {
    const fs::path source = source_root / category;
    VTL_CHECK(fs::is_directory(source, ec), "{}: missing category folder", source.string());
    std::vector<fs::path> files;
    for (const auto& path : list_images(source)) files.push_back(fs::canonical(path, ec));
    std::mt19937_64 rng(mix_seed(seed, std::hash<std::string>()(category)));
    std::shuffle(files.begin(), files.end(), rng);
    if (int64_t(files.size()) > per_class) files.resize(size_t(per_class));
    const fs::path target = dir / category;
    fs::create_directories(target);
    for (size_t i = 0; i < files.size(); ++i) {
      fs::create_symlink(files[i],
                         target / fmt::format("{:04d}_{}", i, files[i].filename().string()), ec);
      VTL_CHECK(!ec, "{}: cannot create a link: {}", target.string(), ec.message());
    }
    total += int64_t(files.size());
  }
  return total;
}

}  // namespace vtl::data

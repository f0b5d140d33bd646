#include "index_selection.h"

#include <algorithm>
#include <filesystem>

#include "vtl/core/error.h"
#include "vtl/core/sha256.h"

namespace fs = std::filesystem;

namespace vtl::cli {

IndexSelection::IndexSelection(const std::vector<std::string>& targets,
                               const std::vector<int64_t>& ids)
    : ids_(ids.begin(), ids.end()) {
  VTL_CHECK(!targets.empty() || !ids.empty(),
            "name the images to take out: files, folders or --id N");
  for (const auto& given : targets) {
    Target target{given, fs::absolute(given).lexically_normal().string(), {}};
    while (target.path.size() > 1 && target.path.back() == '/') target.path.pop_back();
    std::error_code ec;
    if (fs::is_regular_file(given, ec)) target.sha256 = sha256_file(given);
    targets_.push_back(std::move(target));
  }
}

bool IndexSelection::target_selects(const Target& target, const search::CatalogEntry& entry) {
  if (entry.path == target.path) return true;
  if (!target.sha256.empty()) return entry.sha256 == target.sha256;
  // A folder, or a path that no longer exists: everything indexed under it.
  return entry.path.size() > target.path.size() &&
         entry.path.compare(0, target.path.size(), target.path) == 0 &&
         (target.path == "/" || entry.path[target.path.size()] == '/');
}

bool IndexSelection::selects(const search::CatalogEntry& entry) const {
  if (ids_.count(entry.id)) return true;
  for (const auto& target : targets_)
    if (target_selects(target, entry)) return true;
  return false;
}

void IndexSelection::check_each_selects_something(const std::vector<search::CatalogEntry>& entries,
                                                  const std::string& index) const {
  const auto size = static_cast<int64_t>(entries.size());
  for (const int64_t id : ids_)
    VTL_CHECK(id >= 0 && id < size, "--id {}: {} holds ids 0 to {}; nothing was changed", id, index,
              size - 1);
  for (const auto& target : targets_) {
    const bool found = std::any_of(entries.begin(), entries.end(), [&](const auto& entry) {
      return target_selects(target, entry);
    });
    VTL_CHECK(found, "{}: not in {} (no image was indexed {}); nothing was changed", target.given,
              index,
              target.sha256.empty() ? "from this path or under it"
                                    : "from this path or with these bytes");
  }
}

}  // namespace vtl::cli

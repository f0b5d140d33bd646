#pragma once
// Which catalogued images `vtl index remove` takes out: files (by path, or by content when
// the file still exists, so a copy of an indexed image names it too), folders (every image
// indexed under them) and ids.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "vtl/search/catalog.h"

namespace vtl::cli {

class IndexSelection {
 public:
  /// `targets`: paths as the user gave them (relative to the current folder); `ids`: vector
  /// ids. Existing files are hashed here (throws vtl::Error naming an unreadable one).
  IndexSelection(const std::vector<std::string>& targets, const std::vector<int64_t>& ids);

  bool selects(const search::CatalogEntry& entry) const;

  /// Throws vtl::Error naming the first target or id that selects nothing among `entries`
  /// (an index's whole catalogue, ids 0..size-1; `index`: its folder, for the message), so
  /// that a typo changes nothing.
  void check_each_selects_something(const std::vector<search::CatalogEntry>& entries,
                                    const std::string& index) const;

 private:
  struct Target {
    std::string given;
    std::string path;    ///< absolute, lexically normal: how the catalogue stores paths
    std::string sha256;  ///< of the file's bytes; empty unless it is an existing file
  };
  static bool target_selects(const Target& target, const search::CatalogEntry& entry);

  std::vector<Target> targets_;
  std::set<int64_t> ids_;
};

}  // namespace vtl::cli

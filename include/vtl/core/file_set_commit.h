#pragma once
// Several files replaced as one unit (an index's vectors, catalogue and description; a
// features folder's matrix, manifest and description). The new files are written first
// under staging names; then a journal listing the moves is written atomically beside the
// targets (the commit point); then the moves run and the journal is removed.
//   - killed before the journal is in place: every target is the previous version;
//   - killed after: finish_interrupted_commit() (readers and writers call it first) redoes
//     the moves still pending, and every target is the new version.
// The journal is JSON: {"moves": [{"from": "<staged>", "to": "<target>"}, ...]} with paths
// relative to the journal's folder; "from": null removes the target.

#include <filesystem>
#include <optional>
#include <vector>

namespace vtl {

struct FileMove {
  std::optional<std::filesystem::path> staged;  ///< fully written file; nullopt: remove target
  std::filesystem::path target;
};

/// Commits `moves` (all paths inside `journal`'s folder or below it) as described above.
/// Throws vtl::Error naming the file when a move fails; the journal then stays, so the
/// next finish_interrupted_commit() retries.
void commit_file_set(const std::filesystem::path& journal, const std::vector<FileMove>& moves);

/// Completes the commit whose journal is `journal`, if one is there; returns whether one
/// was. Throws vtl::Error naming the folder when the journal is unreadable or a move fails.
bool finish_interrupted_commit(const std::filesystem::path& journal);

}  // namespace vtl

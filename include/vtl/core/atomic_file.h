#pragma once
// Crash-safe file writing: content goes to `<target>.tmp-<pid>` in the same folder and is
// renamed over the target only after it was fully written and flushed, so a reader (or a
// resumed job) sees either the previous version or the new one, never a partial file.

#include <filesystem>
#include <functional>
#include <ostream>
#include <string_view>

namespace vtl {

/// Calls `write(stream)` on a temporary file beside `target`, fsyncs and renames it into
/// place. On any exception the temporary file is removed and the target is untouched.
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(std::ostream&)>& write);

/// Convenience: atomically replaces `target` with `content`.
void write_file_atomically(const std::filesystem::path& target, std::string_view content);

/// A temporary path beside `target` that is unique to this process and call.
std::filesystem::path temporary_sibling(const std::filesystem::path& target);

/// fsyncs `path`, renames it to `target` (same file system) and fsyncs the folder.
void commit_file(const std::filesystem::path& path, const std::filesystem::path& target);

/// Removes the temporary files (`*.tmp-<pid>-<n>`, `*.new-<pid>`) in `dir` whose writing
/// process no longer runs: what a killed job leaves. Files of running processes are kept.
/// Returns how many were removed.
int remove_stale_temporaries(const std::filesystem::path& dir);

/// Reads a whole file; throws vtl::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace vtl

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

/// fsyncs `path` and renames it to `target` (same file system).
void commit_file(const std::filesystem::path& path, const std::filesystem::path& target);

/// Reads a whole file; throws vtl::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace vtl

#pragma once
// Crash-safe file writing: content goes to `<target>.tmp-<pid>` in the same folder and is
// renamed over the target only after it was fully written and flushed, so a reader (or a
// resumed job) sees either the previous version or the new one, never a partial file.
// A target that is a symbolic link is written through: the file it names is replaced and
// the link stays. A target that is a FIFO, a terminal or another device (/dev/stdout) is
// written to directly, as a stream, since it cannot be replaced.

#include <filesystem>
#include <functional>
#include <ostream>
#include <string_view>

namespace vtl {

/// Calls `write(stream)` on a temporary file beside `target` (or the file it links to),
/// fsyncs and renames it into place. On any exception the temporary file is removed and the
/// target is untouched. A stream target (is_stream_target) is written to directly.
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(std::ostream&)>& write);

/// Convenience: atomically replaces `target` with `content`.
void write_file_atomically(const std::filesystem::path& target, std::string_view content);

/// The file that writing `target` replaces: `target` with its symbolic links followed
/// (the links may dangle: the file they name is then created).
std::filesystem::path output_destination(const std::filesystem::path& target);

/// Whether `target` exists and is neither a regular file nor a folder (a FIFO, a device
/// such as /dev/stdout, a socket): written to directly, never through a temporary file.
bool is_stream_target(const std::filesystem::path& target);

/// A temporary path beside output_destination(target), unique to this process and call.
std::filesystem::path temporary_sibling(const std::filesystem::path& target);

/// fsyncs `path`, renames it to output_destination(`target`) (same file system) and fsyncs
/// the folder.
void commit_file(const std::filesystem::path& path, const std::filesystem::path& target);

/// Removes the temporary files (`*.tmp-<pid>-<n>`, `*.new-<pid>`) in `dir` whose writing
/// process no longer runs: what a killed job leaves. Files of running processes are kept.
/// Returns how many were removed.
int remove_stale_temporaries(const std::filesystem::path& dir);

/// Reads a whole file; throws vtl::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace vtl
